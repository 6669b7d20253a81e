// 监测预警: with "live" switched on (remembered in this browser), prepend new alerts to the list as the
// server sends them. Off by default: an open stream keeps a page from ever going idle, which headless
// renderers (and battery-powered laptops) wait for. The page works without this script.
(function () {
  "use strict";
  var body = document.querySelector("tbody[data-stream]");
  var toggle = document.getElementById("live-toggle");
  if (!body || !body.dataset.stream || !toggle || !window.EventSource) { return; }
  var KEY = "qinling.alerts.live";
  var source = null;
  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    return td;
  }
  function onAlert(e) {
    var a = JSON.parse(e.data);
    if (document.getElementById("live-" + a.id)) { return; }
    var tr = document.createElement("tr");
    tr.className = "alert-row live";
    tr.id = "live-" + a.id;
    tr.appendChild(cell(a.time, "nowrap"));
    var sev = cell(""); var span = document.createElement("span");
    span.className = "sev sev-" + a.level; span.textContent = a.severity; sev.appendChild(span); tr.appendChild(sev);
    var rule = cell(""); var link = document.createElement("a"); link.href = a.url; link.textContent = a.rule;
    rule.appendChild(link); tr.appendChild(rule);
    tr.appendChild(cell(a.message, "message"));
    tr.appendChild(cell(a.source, "mono nowrap"));
    tr.appendChild(cell(a.destination, "mono nowrap"));
    tr.appendChild(cell(a.protocol));
    tr.appendChild(cell(a.techniques.join(" "), "nowrap"));
    tr.appendChild(cell(""));
    var empty = body.querySelector("td.empty");
    if (empty) { empty.parentNode.remove(); }
    body.insertBefore(tr, body.firstChild);
  }
  function set(on) {
    if (on && !source) {
      source = new EventSource(body.dataset.stream);
      source.addEventListener("alert", onAlert);
    } else if (!on && source) {
      source.close();
      source = null;
    }
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    toggle.textContent = on ? toggle.dataset.on : toggle.dataset.off;
    try { window.localStorage.setItem(KEY, on ? "1" : ""); } catch (err) { /* private mode */ }
  }
  toggle.hidden = false;
  toggle.addEventListener("click", function () { set(!source); });
  var remembered = "";
  try { remembered = window.localStorage.getItem(KEY) || ""; } catch (err) { /* private mode */ }
  set(remembered === "1");
}());
