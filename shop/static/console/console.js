/* The staff console's charts: every element with data-chart gets a uPlot chart drawn from
   its data-series (JSON put there by the server; no inline script, so CSP script-src 'self'
   holds). "sales": revenue (left axis) and orders (right axis) per day; "bars": labelled
   values. */
(function () {
  "use strict";

  var REVENUE = "#2563eb";
  var ORDERS = "#f59e0b";
  var BAR = "#0f766e";

  function width(el) {
    return Math.max(el.clientWidth || 0, 280);
  }

  function sales(el, data) {
    var xs = data.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
    return new uPlot({
      width: width(el),
      height: 260,
      scales: { x: { time: true }, n: { range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
      series: [
        {},
        { label: "Revenue", stroke: REVENUE, fill: "rgba(37,99,235,0.12)", width: 2 },
        { label: "Orders", stroke: ORDERS, width: 2, scale: "n" }
      ],
      axes: [{}, { label: "revenue" }, { side: 1, scale: "n", label: "orders", grid: { show: false } }]
    }, [xs, data.revenue, data.orders], el);
  }

  function bars(el, data) {
    var labels = data.labels;
    var xs = labels.map(function (_, i) { return i; });
    return new uPlot({
      width: width(el),
      height: 220,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: false, range: function () { return [-0.5, Math.max(labels.length, 1) - 0.5]; } },
        y: { range: function (u, min, max) { return [0, Math.max(max, 1)]; } }
      },
      series: [
        {},
        { label: "value", stroke: BAR, fill: "rgba(15,118,110,0.6)", paths: uPlot.paths.bars({ size: [0.6, 60] }), points: { show: false } }
      ],
      axes: [
        { splits: function () { return xs; }, values: function (u, splits) {
            // as many characters as a bar's slot holds (about 7 px each)
            var room = Math.max(3, Math.floor(u.bbox.width / devicePixelRatio / Math.max(labels.length, 1) / 7));
            return splits.map(function (i) { var l = labels[i] || ""; return l.length > room ? l.slice(0, room - 1) + "…" : l; });
          }, size: 40 },
        {}
      ]
    }, [xs, data.values], el);
  }

  function draw() {
    var charts = document.querySelectorAll("[data-chart]");
    for (var i = 0; i < charts.length; i++) {
      var el = charts[i];
      var data = JSON.parse(el.getAttribute("data-series"));
      var kind = el.getAttribute("data-chart");
      (kind === "sales" ? sales : bars)(el, data);
      el.setAttribute("data-drawn", "true");
    }
    document.documentElement.setAttribute("data-charts-drawn", String(charts.length));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
