// 监测预警: prepend new alerts to the list as the server sends them (the page works without this).
(function () {
  "use strict";
  var body = document.querySelector("tbody[data-stream]");
  if (!body || !body.dataset.stream || !window.EventSource) { return; }
  var source = new EventSource(body.dataset.stream);
  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    return td;
  }
  source.addEventListener("alert", function (e) {
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
  });
}());
