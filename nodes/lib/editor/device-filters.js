// ---- device filters (nodes/lib/editor/device-filters.js, inlined by scripts/editor-html.js) ----
// The editor half of the device filters of a source node (intune-devices, intune-compliance); the form is
// device-filters.html (and source-header.html, the rows above them). Needs the toolkit, and `var session`
// (null, or { id, xhr } of the node whose dialog is open and its request under way).
//
// The filter defaults and the management states offered come from the runtime
// (nodes/lib/devices/device-source-settings.ts, handed over as the node setting <type in camelCase>FilterDefaults):
// the dialog, its Preview and a run use the same values.
var FILTERS = RED.settings[TYPE.replace(/-([a-z])/g, function (m, c) { return c.toUpperCase(); }) + "FilterDefaults"] ||
    { defaults: {}, managementStates: [] };
var DEVICE_PLATFORMS = [
    { prop: "platformWindows", key: "windows" },
    { prop: "platformMacos", key: "macos" },
    { prop: "platformIos", key: "ios" },
    { prop: "platformAndroid", key: "android" },
    { prop: "platformLinux", key: "linux" },
    { prop: "platformOther", key: "other" }
];

// The style rules of a source dialog (the form, its sections, hints and filter checkboxes), for injectStyle.
var SOURCE_STYLE = [
    "." + TYPE + "-form .form-row > label { width: 150px; }",
    "." + TYPE + "-section { margin: 16px 0 8px; padding-bottom: 3px; border-bottom: 1px solid var(--red-ui-secondary-border-color, #ddd); font-weight: bold; }",
    "." + TYPE + "-hint { margin: 2px 0 8px 154px; font-size: 0.85em; line-height: 1.35; color: var(--red-ui-secondary-text-color, #888); }",
    "." + TYPE + "-checks { display: inline-grid; grid-template-columns: repeat(2, minmax(140px, auto)); gap: 4px 16px; vertical-align: top; }",
    // Node-RED's ".red-ui-editor .form-row input { width: 70% }" would stretch the checkboxes:
    // these selectors must be more specific than that one.
    "." + TYPE + "-form .form-row ." + TYPE + "-checks label { display: flex; align-items: center; width: auto !important; margin: 0; font-weight: normal; }",
    "." + TYPE + "-form .form-row ." + TYPE + "-checks input[type=checkbox] { flex: 0 0 auto; width: auto; margin: 0 6px 0 0; }",
    "." + TYPE + "-form .form-row." + TYPE + "-check { margin-left: 154px; }",
    "." + TYPE + "-form .form-row." + TYPE + "-check input[type=checkbox] { width: auto; margin: 0 6px 0 0; vertical-align: middle; }",
    "." + TYPE + "-form .form-row." + TYPE + "-check label { width: auto !important; margin: 0; font-weight: normal; vertical-align: middle; }",
    "." + TYPE + "-form textarea { width: 70%; font-family: monospace; font-size: 0.9em; }"
];

// A copy of the runtime's default of a filter property.
function filterDefault(prop) {
    var v = FILTERS.defaults[prop];
    return (v === undefined) ? undefined : JSON.parse(JSON.stringify(v));
}

// Does the node lack this filter property (so the runtime uses its default)? Same rule as the runtime's
// parser: no value, or an empty one where the default is not a text (an empty text box is a value).
function lacks(node, prop) {
    var v = node[prop];
    return v === undefined || v === null || (v === "" && typeof FILTERS.defaults[prop] !== "string");
}

// The node's value of a filter property, or the runtime's default when it has none.
function filterValue(node, prop) {
    return lacks(node, prop) ? filterDefault(prop) : node[prop];
}

// Is the dialog of this node open?
function dialogOpen(node) {
    return !!(session && node && session.id === node.id);
}

// Is a device platform chosen: in the open dialog, else in the stored node (or by default)?
function anyDevicePlatform(node) {
    if (!node) { return false; }
    for (var i = 0; i < DEVICE_PLATFORMS.length; i++) {
        var prop = DEVICE_PLATFORMS[i].prop;
        var $in = dialogOpen(node) ? $("#node-input-" + prop) : null;
        var v = filterValue(node, prop);
        if ($in && $in.length ? $in.prop("checked") : (v === true || v === "true")) { return true; }
    }
    return false;
}

// The dialog closes (Done or Cancel): a request still running is not wanted any more.
function closeSession() {
    if (session && session.xhr) { session.xhr.abort(); }
    session = null;
}

// The management states ticked in the open dialog.
function chosenStates() {
    return $("." + TYPE + "-state:checked").map(function () { return $(this).val(); }).get();
}

// oneditprepare of the filter form.
function prepareDeviceFilters(node) {
    // A node imported without some filter property (a template, an older flow) runs with the runtime's
    // default: show that default, so that Preview and Done use what the deployed node uses.
    Object.keys(FILTERS.defaults).forEach(function (prop) {
        if (!lacks(node, prop)) { return; }
        var $in = $("#node-input-" + prop);
        if ($in.attr("type") === "checkbox") { $in.prop("checked", filterDefault(prop) === true); }
        else if ($in.length) { $in.val(filterDefault(prop)); }
    });

    // management states: one checkbox each
    var $states = $("#" + TYPE + "-states");
    var skip = filterValue(node, "skipStates");
    var chosen = Array.isArray(skip) ? skip : String(skip).split(/[\s,;]+/);
    FILTERS.managementStates.forEach(function (s) {
        var id = TYPE + "-state-" + s;
        var $l = $("<label>").attr("for", id);
        $("<input type='checkbox'>").addClass(TYPE + "-state").attr("id", id).val(s).prop("checked", chosen.indexOf(s) !== -1).appendTo($l);
        $l.append(document.createTextNode(t(TYPE + ".state." + s)));
        $l.appendTo($states);
    });

    // "only with a primary user" makes "include deleted users" moot
    function onUsers() {
        var only = $("#node-input-onlyWithPrimaryUser").prop("checked");
        $("#node-input-includeDeletedUser").prop("disabled", only);
        $("#" + TYPE + "-deleted-hint").toggle(only);
    }
    $("#node-input-onlyWithPrimaryUser").on("change", onUsers);
    onUsers();

    // the platform validator sits on platformWindows but reads all six
    DEVICE_PLATFORMS.forEach(function (p) {
        $("#node-input-" + p.prop).on("change", function () {
            $("#node-input-platformWindows").trigger("change.validate");
            revalidate(node);
        });
    });
}
// ---- end of device filters ----
