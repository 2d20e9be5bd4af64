// Dataset pages: poll the status of snapshots that are queued or building, move their progress
// bars, and reload the page once a build ends (ready or failed). No inline script (strict CSP).
(function () {
  "use strict";
  var INTERVAL_MS = 1500;

  function poll(el) {
    var url = el.getAttribute("data-status-url");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        var status = el.querySelector(".snapshot-status");
        if (status) { status.textContent = state.status; }
        var bar = el.querySelector(".progress > span");
        if (bar) { bar.style.width = Math.round(state.progress * 100) + "%"; }
        if (state.status === "ready" || state.status === "failed") {
          window.location.reload();
          return;
        }
        window.setTimeout(function () { poll(el); }, INTERVAL_MS);
      })
      .catch(function () { window.setTimeout(function () { poll(el); }, INTERVAL_MS * 4); });
  }

  document.querySelectorAll("[data-status-url]").forEach(function (el) {
    window.setTimeout(function () { poll(el); }, INTERVAL_MS);
  });
})();
