// Tether dashboard: the throughput/lag chart (uPlot; lines whose name ends " s" go on the
// seconds axis) and a guard that keeps htmx from replacing the dead-letter rows (or the
// consumers' dead letters) while some are selected or their headers are open. No inline
// scripts (the pages send a Content-Security-Policy without 'unsafe-inline').
"use strict";

document.addEventListener("htmx:beforeRequest", function (evt) {
  var target = evt.detail && evt.detail.elt;
  var held = target && (target.id === "rows" || target.id === "consumers-live");
  if (held && target.querySelector("input:checked, details[open]")) {
    evt.preventDefault();
  }
});

(function () {
  function start() {
    var box = document.getElementById("chart");
    if (!box || typeof uPlot === "undefined") return;
    var url = box.dataset.series;
    var every = Math.max(1, Number(box.dataset.refresh || 5)) * 1000;
    var plot = null;
    var names = [];
    var palette = ["#3d63dd", "#1b7f3b", "#c62828", "#a15c00", "#7a3fc4", "#00838f", "#5d4037", "#ad1457", "#546e7a"];

    function draw(data) {
      var keys = Object.keys(data.series);
      var columns = [data.x].concat(keys.map(function (k) { return data.series[k]; }));
      if (plot && keys.join() === names.join()) { plot.setData(columns); return; }
      if (plot) plot.destroy();
      names = keys;
      var series = [{}].concat(keys.map(function (k, i) {
        return { label: k, stroke: palette[i % palette.length], width: 1.5, scale: / s$/.test(k) ? "s" : "rate", spanGaps: false };
      }));
      plot = new uPlot({
        width: Math.max(400, box.clientWidth - 20), height: 300, series: series,
        axes: [{}, { scale: "rate", label: "per second" }, { scale: "s", side: 1, label: "seconds", grid: { show: false } }],
        scales: { rate: {}, s: {} },
      }, columns, box);
    }

    // How many buckets have a figure (the tests read it: a drawn line, not an empty range).
    function reported(data) {
      var lines = Object.keys(data.series).map(function (k) { return data.series[k]; });
      return data.x.filter(function (_, i) {
        return lines.some(function (line) { return line[i] !== null; });
      }).length;
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) { box.dataset.points = String(reported(data)); draw(data); } })
        .catch(function () {})
        .finally(function () { setTimeout(poll, every); });
    }
    poll();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
