// ---- preview progress (nodes/lib/editor/preview-progress.js, inlined by scripts/editor-html.js) ----
// The device source's Preview (POST intune-devices/preview) reads the whole tenant before it answers: seconds on a
// 100,000-device tenant. While that POST is pending, this asks the runtime about once a second what it has counted so
// far (GET intune-devices/preview/progress/<id>, the id sent with the POST) and hands each answer to the caller, who
// words and shows it. Shared by the intune-devices dialog and the "New instance…" plugin; needs jQuery only (no TYPE,
// no catalog). Plain browser JavaScript (ES5), like the rest of the editor.
var PREVIEW_POLL_MS = 1000;

// A random progress id (32 hex digits): only the editor that sent the Preview knows it.
function previewProgressId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    var s = "";
    for (var i = 0; i < bytes.length; i++) { s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return s;
}

// Starts watching a Preview: returns { id, stop }. Send `id` as the POST's progressId, and call stop() when the POST
// answers, fails or is given up (dialog closed). onProgress(p) gets each answer of a running Preview: { stage, total,
// imported, skipped, platforms, pages, requests, elapsedMs, userLookupsPending }, all provisional. Unknown ids (the
// POST not begun yet, or just answered) are skipped silently. One request at a time: the next look is due a second
// after the last answer, so a slow runtime is not piled up on.
function watchPreviewProgress(onProgress) {
    var id = previewProgressId();
    var stopped = false;
    var timer = null;
    var xhr = null;
    function look() {
        timer = null;
        xhr = $.ajax({ url: "intune-devices/preview/progress/" + id, type: "GET", dataType: "json", timeout: 10000 })
            .done(function (p) {
                if (!stopped && p && p.ok && p.running) { onProgress(p); }
            })
            .always(function () {
                xhr = null;
                if (!stopped) { timer = setTimeout(look, PREVIEW_POLL_MS); }
            });
    }
    timer = setTimeout(look, PREVIEW_POLL_MS);
    return {
        id: id,
        stop: function () {
            stopped = true;
            if (timer) { clearTimeout(timer); timer = null; }
            if (xhr) { xhr.abort(); xhr = null; }
        }
    };
}

// The numbers of the "so far" line of a progress answer, as text parameters: devices read, pages, whole seconds.
function previewSoFarParams(p, fmt) {
    var f = fmt || String;
    return { devices: f(p.total || 0), imported: f(p.imported || 0), pages: f(p.pages || 0), seconds: String(Math.floor((p.elapsedMs || 0) / 1000)) };
}
// ---- end of preview progress ----
