// One execution as a graph: the nodes and edges the server derived from the state machine's
// definition, each state coloured by its status in the execution history. Clicking a state
// (in the graph or in the table) shows its input, output or error. Text goes in with
// textContent only, so nothing from the execution is ever parsed as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("graph-data").textContent);
  var fill = {
    succeeded: "#3fa556", failed: "#d64545", caught: "#e59a2f", running: "#3d7fd9",
    aborted: "#8a6cc2", "not-run": "#cfd6db", marker: "#ffffff"
  };
  var byId = {};
  data.nodes.forEach(function (n) { byId[n.id] = n; });

  function label(n) {
    if (n.id === "__start__") { return "Start"; }
    if (n.id === "__end__") { return "End"; }
    return n.id;
  }

  var elements = data.nodes.map(function (n) {
    var d = { id: n.id, label: label(n), status: n.status, fill: fill[n.status] || "#cfd6db" };
    if (n.parent) { d.parent = n.parent; }
    return { data: d };
  });
  data.edges.forEach(function (e, i) {
    if (byId[e.source] && byId[e.target]) {
      elements.push({ data: { id: "e" + i, source: e.source, target: e.target, kind: e.kind,
                              label: e.kind === "catch" ? "catch" : "" } });
    }
  });

  if (window.cytoscape && window.cytoscapeDagre) { window.cytoscape.use(window.cytoscapeDagre); }
  var cy = window.cytoscape({
    container: document.getElementById("graph"),
    elements: elements,
    layout: { name: "dagre", rankDir: "TB", nodeSep: 24, rankSep: 36, edgeSep: 8 },
    style: [
      { selector: "node", style: {
          "shape": "round-rectangle", "label": "data(label)", "background-color": "data(fill)",
          "border-width": 1, "border-color": "#42505c", "color": "#111", "font-size": 12,
          "text-valign": "center", "text-halign": "center", "width": 150, "height": 30 } },
      { selector: "node[status = 'marker']", style: {
          "shape": "ellipse", "width": 60, "height": 26, "background-color": "#ffffff" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#f2a900" } },
      { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5,
          "line-color": "#7b8794", "target-arrow-color": "#7b8794", "label": "data(label)",
          "font-size": 9, "color": "#5a2a00", "text-background-color": "#fff",
          "text-background-opacity": 1 } },
      { selector: "edge[kind = 'catch']", style: { "line-style": "dashed", "line-color": "#c77700",
          "target-arrow-color": "#c77700" } }
    ]
  });
  window.evpmGraph = cy;

  function add(parent, tag, text, cls) {
    var el = document.createElement(tag);
    el.textContent = text;
    if (cls) { el.className = cls; }
    parent.appendChild(el);
    return el;
  }

  function block(parent, title, text, cls) {
    // A scrollable block must take the keyboard's focus, or its overflow cannot be read.
    add(parent, "h4", title);
    var pre = add(parent, "pre", text, cls);
    pre.tabIndex = 0;
    pre.setAttribute("aria-label", title + " of " + parent.querySelector("h3").textContent);
    return pre;
  }

  function pretty(text) {
    if (text === null || text === undefined) { return null; }
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (err) { return String(text); }
  }

  function show(id) {
    var n = byId[id];
    var box = document.getElementById("state-details");
    if (!n || n.status === "marker") { return; }
    box.textContent = "";
    add(box, "h3", n.id);
    var dl = add(box, "dl", "", "facts");
    [["Type", n.type], ["Status", n.status], ["Visits", String(n.visits)],
     ["Entered", n.entered || "–"],
     ["Duration", n.duration_ms === null ? "–" : Math.round(n.duration_ms) + " ms"]]
      .forEach(function (kv) { add(dl, "dt", kv[0]); add(dl, "dd", kv[1]); });
    if (n.error || n.cause) {
      block(box, "Error", (n.error || "") + (n.cause ? ": " + n.cause : ""), "error-text");
    }
    [["Input", n.input], ["Output", n.output]].forEach(function (kv) {
      if (kv[1] !== null && kv[1] !== undefined) { block(box, kv[0], pretty(kv[1])); }
    });
    if (n.status === "not-run") { add(box, "p", "This state did not run in this execution."); }
    cy.elements().unselect();
    cy.getElementById(id).select();
  }

  cy.on("tap", "node", function (ev) { show(ev.target.id()); });
  document.querySelectorAll("[data-show-state]").forEach(function (button) {
    button.addEventListener("click", function () { show(button.getAttribute("data-show-state")); });
  });
  var failed = data.nodes.filter(function (n) { return n.status === "failed"; });
  if (failed.length) { show(failed[failed.length - 1].id); }
  document.body.setAttribute("data-graph-ready", "true");
})();
