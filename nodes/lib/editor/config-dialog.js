// ---- connection dialog (nodes/lib/editor/config-dialog.js, inlined by scripts/editor-html.js) ----
// What the connection dialogs (intune-config, intune-4me-config, intune-acmp-config) share; the proxy rows
// of their forms are config-proxy.html. Needs the toolkit and `var session` (null, or { id } of the node
// whose dialog is open).

// Value of a property while this node's dialog is open, else the stored one
// (validators of other nodes of this type must not read this dialog).
function current(node, prop) {
    if (session && node && session.id === node.id) {
        var el = $("#node-config-input-" + prop);
        if (el.length) {
            var v = el.val();
            if (v !== undefined && v !== null) { return v; }
        }
    }
    return node ? node[prop] : undefined;
}

// A line of a result box with an icon; the text is always inserted as text, never as HTML.
function statusLine(lineClass, icon, cls, text) {
    var row = $("<div></div>").addClass(lineClass);
    $('<i class="fa" aria-hidden="true"></i>').addClass(icon).addClass(cls || "").appendTo(row);
    $("<span></span>").text(text).appendTo(row);
    return row;
}

// "Use proxy": the http proxy select shows only when ticked; without it the environment (HTTP(S)_PROXY,
// NO_PROXY) applies, as in the core http request node. onChange (optional) runs when the choice changes.
function prepareProxy(node, onChange) {
    var $row = $("#" + TYPE + "-proxy-row");
    $("#node-config-input-useProxy").prop("checked", !!node.proxy).on("change", function () {
        $row.toggle(this.checked);
        if (onChange) { onChange(); }
    });
    $row.toggle(!!node.proxy);
}

// The http proxy node the open dialog uses ("" for none), for a check before Done.
function chosenProxy() {
    var v = $("#node-config-input-proxy").val();
    return ($("#node-config-input-useProxy").is(":checked") && v && v !== "_ADD_") ? v : "";
}

// oneditsave: an unticked "Use proxy" keeps no http proxy node that would still act.
function saveProxy() {
    if (!$("#node-config-input-useProxy").is(":checked")) { $("#node-config-input-proxy").val("_ADD_"); }
}

// The folded "Advanced" section (#<TYPE>-advanced, toggled by #<TYPE>-advanced-toggle). It opens at once
// when one of `props` is tuned away from its default or invalid (limits: { prop: { min, max } }), so
// nothing hides there.
function prepareAdvanced(node, props, limits) {
    var open = false;
    function set(o) {
        open = o;
        $("#" + TYPE + "-advanced").toggle(o);
        $("#" + TYPE + "-advanced-toggle").attr("aria-expanded", o ? "true" : "false")
            .find("i.fa").toggleClass("fa-caret-right", !o).toggleClass("fa-caret-down", o);
    }
    $("#" + TYPE + "-advanced-toggle").on("click", function (e) {
        e.preventDefault();
        set(!open);
    });
    set(props.some(function (p) {
        var v = $("#node-config-input-" + p).val();
        return String(v) !== String(node._def.defaults[p].value) || checkLimit(limits[p])(v) !== true;
    }));
}
// ---- end of connection dialog ----
