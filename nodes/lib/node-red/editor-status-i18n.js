/*
 * Editor side of nodes/lib/node-red/status-text.ts: status texts in the editor's
 * language. scripts/build.js inlines this file, followed by
 * installIntuneStatusI18n("<type>"), into the HTML of every node that marks
 * the place with the HTML comment "intune:status-i18n" (after its
 * registerType), so it runs right after that node's registerType.
 *
 * Node-RED's editor translates a status text that starts with a letter with
 * node._(text, { defaultValue: text }) (red.js, comms "status/#"). node._ is
 * the node type's definition._ (copied to each node when it is added), so
 * wrapping definition._ lets the editor read the form our runtime sends:
 *
 *   <key>                  a key of this package's catalogs
 *   <key> {"p": 1, ...}    the key and its parameters; a parameter may be a
 *                          nested message {"$t": key, ...}; "$+" lists parts
 *                          appended after the text (messages or literal text)
 *
 * Every key is looked up in the catalog of the node type its first segment
 * names (intune-config.status.… in intune-config's), which this package
 * loads for every editor language. Anything else goes to Node-RED's own
 * translation unchanged.
 */
function installIntuneStatusI18n(TYPE) {
    "use strict";
    var def = RED.nodes.getType(TYPE);
    if (!def || typeof def._ !== "function" || def._.intuneStatusI18n) { return; }
    var module = def.set && def.set.module;
    var original = def._;
    var ENCODED = /^([a-z][a-z0-9-]*)((?:\.[A-Za-z0-9_-]+)+)(?: (\{[\s\S]*\}))?$/;

    function ownerOf(key) {
        var owner = RED.nodes.getType(key.split(".")[0]);
        return (owner && owner.set && owner.set.module === module && typeof owner._ === "function") ? owner : null;
    }

    function translate(key, params) {
        var owner = ownerOf(key);
        if (!owner) { return key; }
        var fn = owner._.intuneOriginal || owner._;
        var out = fn(key, params);
        return typeof out === "string" ? out : key;
    }

    function value(v) {
        if (v === null || v === undefined) { return ""; }
        if (typeof v === "object" && typeof v.$t === "string") { return message(v.$t, v); }
        return String(v);
    }

    function message(key, obj) {
        var params = {};
        Object.keys(obj).forEach(function (k) {
            if (k !== "$t" && k !== "$+") { params[k] = value(obj[k]); }
        });
        var text = translate(key, params);
        (Array.isArray(obj["$+"]) ? obj["$+"] : []).forEach(function (p) { text += value(p); });
        return text;
    }

    /** The editor-language text of an encoded status text, or null when it is not one. */
    function decode(text) {
        var m = ENCODED.exec(text);
        if (!m || !ownerOf(m[1] + m[2])) { return null; }
        var obj = {};
        if (m[3]) {
            try { obj = JSON.parse(m[3]); } catch (e) { return null; }
            if (!obj || typeof obj !== "object" || Array.isArray(obj)) { return null; }
        }
        return message(m[1] + m[2], obj);
    }

    var wrapped = function (key, opts) {
        // Only the status path passes the text itself as its default value.
        if (typeof key === "string" && opts && opts.defaultValue === key) {
            var shown = decode(key);
            if (shown !== null) { return shown; }
        }
        return original.apply(this, arguments);
    };
    wrapped.intuneStatusI18n = true;
    wrapped.intuneOriginal = original;
    def._ = wrapped;
}
