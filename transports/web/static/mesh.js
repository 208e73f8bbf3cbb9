// The todo mesh explorer: a project's dependency graph (cytoscape with a dagre DAG layout),
// coloured by status; blocked todos and cycles outlined; merged duplicates dashed and joined
// to the todo they were merged into; a click (or Enter on the list below) opens the todo.
import { h, keepShown, listAll, vendor } from "./core.js";

const COLOURS = { pending: "#6c757d", in_progress: "#1f6fb2", blocked: "#a4161a", completed: "#2b6a30" };

export async function mesh(main, [projectId]) {
  const projects = await listAll("/projects");
  const project = projects.find((p) => p.chittyId === projectId) ?? projects[0];
  if (!project) {
    main.replaceChildren(h("h1", {}, "Mesh"), h("p", {}, "No project yet."));
    return;
  }
  await vendor("/static/vendor/cytoscape-3.33.1/cytoscape.min.js");
  await vendor("/static/vendor/dagre-0.8.5/dagre.min.js");
  await vendor("/static/vendor/cytoscape-dagre-2.5.0/cytoscape-dagre.js");
  const graph = h("div", { id: "graph", role: "img", "aria-label": `Dependency graph of ${project.name}` });
  const list = h("ul", { id: "mesh-list", "aria-label": "Todos in the graph" });
  main.replaceChildren(
    h("h1", {}, `Mesh: ${project.name}`),
    h(
      "p",
      { class: "legend" },
      Object.keys(COLOURS).map((status) => h("span", { class: `key ${status}` }, status)),
      h("span", {}, "thick red outline: blocked · orange: in a cycle · dashed: merged duplicate"),
    ),
    graph,
    h("h2", {}, "Todos"),
    list,
  );
  return keepShown(
    (frame) => frame.type === "state_update" && frame.domain === "todos" && frame.entity?.projectId === project.chittyId,
    () => listAll("/todos", { projectId: project.chittyId, includeMerged: "true" }),
    (todos) => render(graph, list, todos),
  );
}

/** Each todo's facts for the graph: blocked (its status, or a dependency not completed) and
 * in a cycle (a strongly connected component of more than one todo, or a self-dependency). */
export function analyse(todos) {
  const byId = new Map(todos.map((t) => [t.chittyId, t]));
  const blocked = new Set(
    todos
      .filter((t) => t.status === "blocked" || (t.dependencies ?? []).some((d) => byId.get(d)?.status !== "completed"))
      .filter((t) => t.status !== "completed")
      .map((t) => t.chittyId),
  );
  return { blocked, cyclic: cycles(todos) };
}

function cycles(todos) {
  // Tarjan's strongly connected components over dependency edges.
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const cyclic = new Set();
  let next = 0;
  const ids = new Set(todos.map((t) => t.chittyId));
  const deps = new Map(todos.map((t) => [t.chittyId, (t.dependencies ?? []).filter((d) => ids.has(d))]));
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of deps.get(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || deps.get(v).includes(v)) component.forEach((c) => cyclic.add(c));
    }
  };
  for (const id of ids) if (!index.has(id)) visit(id);
  return cyclic;
}

function render(container, list, todos) {
  const { blocked, cyclic } = analyse(todos);
  const ids = new Set(todos.map((t) => t.chittyId));
  const elements = [];
  for (const todo of todos) {
    const classes = [todo.status];
    if (blocked.has(todo.chittyId)) classes.push("blocked-todo");
    if (cyclic.has(todo.chittyId)) classes.push("cyclic");
    if (todo.mergedInto) classes.push("merged");
    elements.push({ data: { id: todo.chittyId, label: todo.content.slice(0, 40) }, classes: classes.join(" ") });
    for (const dep of todo.dependencies ?? []) {
      if (ids.has(dep)) elements.push({ data: { id: `${dep}>${todo.chittyId}`, source: dep, target: todo.chittyId } });
    }
    if (todo.mergedInto && ids.has(todo.mergedInto)) {
      elements.push({ data: { id: `${todo.chittyId}=${todo.mergedInto}`, source: todo.chittyId, target: todo.mergedInto }, classes: "merge" });
    }
  }
  const cy = window.cytoscape({
    container,
    elements,
    layout: { name: "dagre", rankDir: "LR" },
    maxZoom: 1.5,
    style: [
      { selector: "node", style: { label: "data(label)", "font-size": 10, "text-wrap": "wrap", "text-max-width": 120, "background-color": "#6c757d" } },
      ...Object.entries(COLOURS).map(([status, colour]) => ({ selector: `node.${status}`, style: { "background-color": colour } })),
      { selector: "node.blocked-todo", style: { "border-width": 4, "border-color": "#a4161a" } },
      { selector: "node.cyclic", style: { "border-width": 4, "border-color": "#f0a202" } },
      { selector: "node.merged", style: { "border-style": "dashed", "border-width": 2, "border-color": "#333", opacity: 0.7 } },
      { selector: "edge", style: { "curve-style": "bezier", "target-arrow-shape": "triangle", width: 2 } },
      { selector: "edge.merge", style: { "line-style": "dashed" } },
    ],
  });
  cy.on("tap", "node", (event) => (location.hash = `#/history/todos/${event.target.id()}`));
  window.chittyMesh = cy; // for tests and the curious: the graph as drawn
  list.replaceChildren(
    ...todos.map((todo) =>
      h(
        "li",
        { "data-id": todo.chittyId, class: blocked.has(todo.chittyId) ? "blocked-todo" : null },
        h("a", { href: `#/history/todos/${todo.chittyId}` }, todo.content),
        ` (${todo.status}${blocked.has(todo.chittyId) && todo.status !== "blocked" ? ", blocked" : ""}${cyclic.has(todo.chittyId) ? ", in a cycle" : ""}${todo.mergedInto ? `, merged into ${todo.mergedInto}` : ""})`,
      ),
    ),
  );
}
