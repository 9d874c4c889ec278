// Live overview: server-sent events replace the figures and redraw the last hour's line.
"use strict";
(function () {
  const root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) { return; }
  const source = new EventSource(root.getAttribute("data-live"));
  source.addEventListener("snapshot", function (event) {
    const shot = JSON.parse(event.data);
    for (const [key, value] of Object.entries(shot.figures)) {
      const cell = document.querySelector('[data-figure="' + key + '"]');
      if (cell) { cell.textContent = value; }
    }
    const line = document.querySelector("#series polyline");
    if (line && shot.points) { line.setAttribute("points", shot.points); }
    const stamp = document.querySelector("[data-updated]");
    if (stamp) { stamp.textContent = shot.at; }
  });
})();
// Select-all box on the dead-letter list.
(function () {
  const all = document.querySelector("[data-select-all]");
  if (!all) { return; }
  all.addEventListener("change", function () {
    document.querySelectorAll("input[name=id]").forEach(function (box) { box.checked = all.checked; });
  });
})();
