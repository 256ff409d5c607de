// Reload the page while a lifecycle run is going (the element says how often), so the table
// and the graph follow the run without a click.
(function () {
  var note = document.getElementById("auto-refresh");
  if (!note) { return; }
  var seconds = Number(note.getAttribute("data-refresh-seconds")) || 5;
  window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
})();
