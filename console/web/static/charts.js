/* ECharts in place of the server-rendered SVG charts (which stay when echarts.min.js is absent).
 * <div class="echart" data-chart="KIND" data-source="ID">SVG fallback</div>
 * reads its data from <script type="application/json" id="ID">. KIND: severity-bars | categories. */
(function () {
  "use strict";
  if (!window.echarts) return;
  var COLORS = { critical: "#b71c1c", high: "#e65100", medium: "#f9a825", low: "#90a4ae" };

  function severityBars(d) {
    return {
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { bottom: 0 },
      grid: { left: 40, right: 16, top: 16, bottom: 48 },
      xAxis: { type: "category", data: d.labels },
      yAxis: { type: "value", minInterval: 1 },
      series: d.levels.map(function (lv) {
        return { name: d.names[lv], type: "bar", stack: "alerts", data: d.series[lv], itemStyle: { color: COLORS[lv] } };
      })
    };
  }

  function categories(d) {
    return {
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      grid: { left: 90, right: 24, top: 8, bottom: 24 },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: d.items.map(function (it) { return it[0]; }) },
      series: [{ name: d.title, type: "bar", data: d.items.map(function (it) { return it[1]; }), itemStyle: { color: "#1565c0" } }]
    };
  }

  var KINDS = { "severity-bars": severityBars, "categories": categories };

  document.querySelectorAll(".echart[data-chart]").forEach(function (el) {
    var build = KINDS[el.getAttribute("data-chart")];
    var source = document.getElementById(el.getAttribute("data-source") || "");
    if (!build || !source) return;
    var data;
    try { data = JSON.parse(source.textContent); } catch (e) { return; }
    var spec = data[el.getAttribute("data-key")] || data;
    var fallback = el.innerHTML;
    el.hidden = false;
    el.innerHTML = "";
    el.style.height = el.getAttribute("data-height") || "240px";
    try {
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(build(spec));
      el.classList.add("echart-ready");
      window.addEventListener("resize", function () { chart.resize(); });
    } catch (e) {
      el.innerHTML = fallback;  // keep the SVG if ECharts could not draw
    }
  });
})();
