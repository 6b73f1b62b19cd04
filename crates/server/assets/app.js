// Inkingi web pages: progressive enhancement only; every page works without this file.
// Loaded as an external file because the Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";

  // Draws every <canvas data-chart='{"labels":[…],"values":[…],"label":"…","locale":"…"}'>.
  function drawCharts(root) {
    if (typeof window.Chart !== "function" || !root.querySelectorAll) {
      return;
    }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn === "1") {
        return;
      }
      var data;
      try {
        data = JSON.parse(canvas.dataset.chart);
      } catch (e) {
        return;
      }
      var css = getComputedStyle(document.documentElement);
      var bar = css.getPropertyValue("--chart-bar").trim() || "#0a5c86";
      var grid = css.getPropertyValue("--border").trim() || "#e2e8f0";
      var text = css.getPropertyValue("--muted").trim() || "#475569";
      window.Chart.defaults.font.family = css.getPropertyValue("--font").trim() || "sans-serif";
      window.Chart.defaults.color = text;
      new window.Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [{
            label: data.label,
            data: data.values,
            backgroundColor: bar,
            borderRadius: 3,
            maxBarThickness: 18
          }]
        },
        options: {
          // Horizontal bars keep thirty district names readable on any screen.
          indexAxis: "y",
          locale: data.locale,
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { display: false } },
          scales: {
            x: { beginAtZero: true, grid: { color: grid } },
            y: { grid: { display: false }, ticks: { autoSkip: false } }
          }
        }
      });
      canvas.dataset.drawn = "1";
    });
  }

  // After htmx changes the URL (boosted links), point the language links at the new page.
  function updateLanguageLinks() {
    document.querySelectorAll("a[data-lang-switch]").forEach(function (a) {
      var url = new URL(window.location.href);
      url.searchParams.set("lang", a.dataset.langSwitch);
      a.setAttribute("href", url.pathname + url.search);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
  });
  document.addEventListener("htmx:load", function (e) {
    drawCharts(e.target);
  });
  document.addEventListener("htmx:pushedIntoHistory", updateLanguageLinks);
  document.addEventListener("htmx:historyRestore", updateLanguageLinks);
  window.addEventListener("popstate", updateLanguageLinks);
})();
