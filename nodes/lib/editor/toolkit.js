// ---- editor toolkit (nodes/lib/editor/toolkit.js, inlined by scripts/editor-html.js) ----
// Needs `var TYPE = "<node type>";` before it. Plain browser JavaScript (ES5), like the rest of the editor.

// A whole value Node-RED replaces with an environment variable before the runtime reads it:
// ${NAME}, and the older $(NAME) (Node-RED's util.js, EnvVarPropertyRE and EnvVarPropertyRE_old).
var ENV_RE = /^\$(\([a-zA-Z_][a-zA-Z0-9_]*\)|\{[a-zA-Z_][a-zA-Z0-9_]*\})$/;

// A text of this node type's catalog (locales/<lang>/<type>.json).
function t(key, params) {
    var def = RED.nodes.getType(TYPE);
    return (def && def._) ? def._(key, params) : RED._(key, params);
}

// A property value as trimmed text ("" for none).
function str(v) {
    return (v === undefined || v === null) ? "" : String(v).trim();
}

// Validator of a number property from min to max, a whole number unless `decimals`: the runtime's rule
// (Number() of the text, nodes/lib/shared/validation.ts). Empty takes the runtime's default, and ${ENV}
// is resolved by Node-RED before the runtime reads the property: both pass here.
// The message is <TYPE>.validation.<key> with {min, max} (key "integer" unless given).
function checkNumber(min, max, key, decimals) {
    return function (v, opt) {
        var s = str(v);
        if (s === "" || ENV_RE.test(s)) { return true; }
        var n = Number(s);
        if (!isFinite(n) || n < min || n > max || (!decimals && Math.floor(n) !== n)) {
            return t(TYPE + ".validation." + (key || "integer"), { min: min, max: max });
        }
        return true;
    };
}

// The same for a range given as { min, max } (a table of limits).
function checkLimit(lim, key) {
    return checkNumber(lim.min, lim.max, key);
}

// Validator of a run interval in minutes or hours: 0 (off), or from 1 minute to a year (366 days), the
// runtime's rule (nodes/lib/run/run-schedule.ts, intervalMs). The message is <TYPE>.validation.<key> with {min, max}.
function checkInterval(unit, key) {
    var max = unit === "hours" ? 366 * 24 : 366 * 24 * 60;
    var minute = unit === "hours" ? 1 / 60 : 1;
    return function (v, opt) {
        var s = str(v);
        if (s === "" || ENV_RE.test(s)) { return true; }
        var n = Number(s);
        if (!isFinite(n) || n < 0 || n > max || (n > 0 && n < minute)) {
            return t(TYPE + ".validation." + key, { min: 0, max: max });
        }
        return true;
    };
}

// Adds the dialog's style sheet once per page (id "<TYPE>-style").
function injectStyle(rules) {
    var id = TYPE + "-style";
    if (document.getElementById(id)) { return; }
    $("<style>", { id: id, type: "text/css" }).text(rules.join("\n")).appendTo("head");
}

// Fills a <select> with the context stores of the runtime (settings.js contextStorage), "" for its default,
// and selects `value` (kept, marked <TYPE>.label.unknownStore, when the runtime does not know it).
function fillStoreSelect($store, value) {
    var ctx = (RED.settings && RED.settings.context) || { default: "memory", stores: ["memory"] };
    $store.empty();
    $("<option>").val("").text(t(TYPE + ".label.defaultStore", { store: ctx["default"] || "memory" })).appendTo($store);
    (ctx.stores || []).forEach(function (s) {
        if (s !== ctx["default"]) { $("<option>").val(s).text(s).appendTo($store); }
    });
    if (value && $store.find("option[value='" + String(value).replace(/'/g, "") + "']").length === 0) {
        $("<option>").val(value).text(value + " " + t(TYPE + ".label.unknownStore")).appendTo($store);
    }
    $store.val(value || "");
}

// Asks the editor to validate the node again (another field's validity depends on this one).
function revalidate(node) {
    if (RED.editor && RED.editor.validateNode) { RED.editor.validateNode(node); }
}
// ---- end of editor toolkit ----
