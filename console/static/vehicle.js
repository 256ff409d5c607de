// A vehicle's predictions as Chart.js charts (RUL with its interval, anomaly score, failure
// probabilities), then the explanation of its latest prediction, fetched after the charts are
// drawn so the page does not wait for the API to explain.
(function () {
  "use strict";
  var s = JSON.parse(document.getElementById("series-data").textContent);
  var palette = ["#0b57a4", "#c0392b", "#1e8449", "#8e44ad", "#b9770e", "#117a65", "#5d6d7e"];

  function points(values) {
    var out = new Array(values.length);
    for (var i = 0; i < values.length; i++) { out[i] = { x: s.t[i], y: values[i] }; }
    return out;
  }
  function when(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " "); }

  function options(yTitle) {
    return {
      animation: false, parsing: false, normalized: true, responsive: true,
      maintainAspectRatio: false, spanGaps: true,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      elements: { point: { radius: 0 }, line: { borderWidth: 1.5 } },
      scales: {
        x: { type: "linear", ticks: { maxTicksLimit: 6, callback: function (v) { return when(v); } } },
        y: { title: { display: true, text: yTitle } }
      },
      plugins: {
        decimation: { enabled: true, algorithm: "lttb", samples: 600 },
        tooltip: { callbacks: { title: function (items) { return items.length ? when(items[0].parsed.x) : ""; } } }
      }
    };
  }

  function chart(id, datasets, yTitle) {
    var canvas = document.getElementById(id);
    return new window.Chart(canvas, { type: "line", data: { datasets: datasets }, options: options(yTitle) });
  }

  window.evpmCharts = [
    chart("chart-rul", [
      { label: "RUL low", data: points(s.rul_low), borderColor: "#9db9d6", pointRadius: 0 },
      { label: "RUL high", data: points(s.rul_high), borderColor: "#9db9d6",
        backgroundColor: "rgba(11, 87, 164, 0.15)", fill: "-1", pointRadius: 0 },
      { label: "RUL", data: points(s.rul), borderColor: "#0b57a4" }
    ], "hours"),
    chart("chart-anomaly", [
      { label: "anomaly score", data: points(s.anomaly), borderColor: "#c0392b" }
    ], "score"),
    chart("chart-proba", Object.keys(s.probabilities).map(function (c, i) {
      return { label: c, data: points(s.probabilities[c]), borderColor: palette[i % palette.length] };
    }), "probability")
  ];
  window.evpmChartsDrawn = window.performance.now();
  document.body.setAttribute("data-charts-ready", "true");

  var box = document.getElementById("explanation");
  window.fetch(box.getAttribute("data-src"), { credentials: "same-origin" })
    .then(function (r) { return r.text().then(function (t) { return { ok: r.ok, text: t }; }); })
    .then(function (r) {
      // The server renders the fragment with every value escaped.
      box.innerHTML = r.text;
      if (!r.ok) { return; }
      box.querySelectorAll("figure.explain").forEach(function (fig) {
        var rows = JSON.parse(fig.querySelector(".explain-data").textContent);
        new window.Chart(fig.querySelector("canvas"), {
          type: "bar",
          data: { labels: rows.map(function (r) { return r[0]; }),
                  datasets: [{ label: "contribution", data: rows.map(function (r) { return r[1]; }),
                               backgroundColor: rows.map(function (r) { return r[1] >= 0 ? "#c0392b" : "#0b57a4"; }) }] },
          options: { indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
                     plugins: { legend: { display: false } } }
        });
      });
      document.body.setAttribute("data-explanation-ready", "true");
    })
    .catch(function (err) {
      box.textContent = "The explanation could not be loaded: " + err;
      document.body.setAttribute("data-explanation-ready", "error");
    });
})();
