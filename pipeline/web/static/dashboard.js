// The dashboard's only script: a progressive enhancement. Every figure is in the pages' tables and in the
// charts' own <title> tooltips without it. Hovering a mark of a chart shows its line of the chart's JSON
// data block (<script type="application/json" id="data-CHART">) and highlights the table row of the same
// data-key. It writes text only (textContent), never markup.
(function () {
  "use strict";

  function readData(chart) {
    var block = document.getElementById("data-" + chart);
    if (!block) {
      return null;
    }
    try {
      return JSON.parse(block.textContent);
    } catch (error) {
      return null;
    }
  }

  function rowsOf(chart) {
    var rows = [];
    document.querySelectorAll("table[data-chart-table]").forEach(function (table) {
      var charts = table.getAttribute("data-chart-table").split(" ");
      if (charts.indexOf(chart) >= 0) {
        table.querySelectorAll("tr[data-key]").forEach(function (row) {
          rows.push(row);
        });
      }
    });
    return rows;
  }

  function setup(svg) {
    var chart = svg.getAttribute("data-chart");
    var data = readData(chart);
    if (!data) {
      return;
    }
    var readout = null;
    document.querySelectorAll("output[data-readout-for]").forEach(function (output) {
      if (output.getAttribute("data-readout-for") === chart) {
        readout = output;
      }
    });
    var rows = rowsOf(chart);
    function show(key) {
      if (readout) {
        readout.textContent = key !== null && Object.prototype.hasOwnProperty.call(data, key) ? data[key] : "";
      }
      rows.forEach(function (row) {
        row.classList.toggle("highlight", key !== null && row.getAttribute("data-key") === key);
      });
    }
    svg.addEventListener("pointerover", function (event) {
      var mark = event.target instanceof Element ? event.target.closest("[data-key]") : null;
      if (mark && svg.contains(mark)) {
        show(mark.getAttribute("data-key"));
      }
    });
    svg.addEventListener("pointerleave", function () {
      show(null);
    });
  }

  function start() {
    document.querySelectorAll("svg[data-chart]").forEach(setup);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
