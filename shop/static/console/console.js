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

  // uPlot's own axis font, for measuring labels as they will be drawn.
  var FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif';
  var LONGEST = 160; // px: a longer label (a product's name) is cut, with an ellipsis
  var measure = document.createElement("canvas").getContext("2d");
  measure.font = FONT;

  function textWidth(text) {
    return measure.measureText(text).width;
  }

  function cut(label) {
    if (textWidth(label) <= LONGEST) { return label; }
    while (label.length > 1 && textWidth(label + "…") > LONGEST) { label = label.slice(0, -1); }
    return label + "…";
  }

  // Labels read whole: level when each fits its bar's slot, else turned 45 degrees, with the
  // axis as tall as the longest needs. data-cut says how many were shortened (only past LONGEST).
  function bars(el, data) {
    var labels = data.labels.map(function (l) { return String(l); });
    var shown = labels.map(cut);
    var xs = labels.map(function (_, i) { return i; });
    var widest = Math.max.apply(null, shown.map(textWidth).concat([0]));
    var slot = (width(el) - 60) / Math.max(labels.length, 1);
    var turned = widest + 8 > slot;
    el.setAttribute("data-cut", String(shown.filter(function (l, i) { return l !== labels[i]; }).length));
    el.setAttribute("data-turned", String(turned));
    return new uPlot({
      width: width(el),
      height: 220 + (turned ? Math.ceil(widest * Math.SQRT1_2) : 0),
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
        {
          font: FONT,
          splits: function () { return xs; },
          values: function (u, splits) { return splits.map(function (i) { return shown[i] || ""; }); },
          rotate: turned ? -45 : 0,
          size: turned ? Math.ceil(widest * Math.SQRT1_2) + 24 : 40
        },
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
