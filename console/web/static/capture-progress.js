// 检查评估: polls an unfinished capture's replay and reloads the page when it ends (was inline in
// captures/detail.html; moved here so the Content-Security-Policy needs no inline script).
(function () {
  var panel = document.getElementById("replay");
  if (!panel || panel.dataset.status === "done" || panel.dataset.status === "failed") { return; }
  var bar = document.getElementById("replay-progress"), pct = document.getElementById("replay-percent");
  var status = document.getElementById("replay-status");
  var labels = JSON.parse(panel.dataset.labels || "{}");
  function poll() {
    fetch(panel.dataset.poll, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (c) {
        bar.value = c.progress; pct.textContent = c.progress + "%";
        status.textContent = labels[c.status] || c.status; panel.dataset.status = c.status;
        if (c.status === "done" || c.status === "failed") { window.location.reload(); } else { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
