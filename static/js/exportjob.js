/* The export progress page: polls the job's status (data-status-url) every 2 s and moves the
   progress bar; once the export is finished the page reloads to show the download link or the
   error. No inline script (the CSP forbids it); without JavaScript the page refreshes itself
   (a meta refresh inside <noscript>) and has a refresh link. */
(function () {
  var box = document.getElementById("export-job");
  if (!box || !window.fetch) return;
  var state = box.getAttribute("data-status");
  if (state !== "queued" && state !== "running") return;
  var bar = document.getElementById("export-progress");
  var rows = document.getElementById("export-rows");
  function poll() {
    fetch(box.getAttribute("data-status-url"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (job) {
        if (!job) { setTimeout(poll, 5000); return; }
        if (job.status !== "queued" && job.status !== "running") { window.location.reload(); return; }
        if (bar) { bar.max = job.rows_total || 1; bar.value = job.rows_done; }
        if (rows) rows.textContent = job.rows_done.toLocaleString();
        var words = document.getElementById("export-status");
        if (words && job.status === "running") words.textContent = box.getAttribute("data-running-text");
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
