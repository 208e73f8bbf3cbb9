// Sessions; topics, projects, repos and services; adapters: lists and details, live.
import { api, h, listAll, onChange } from "./core.js";
import { sessionLabel } from "./board.js";

const TITLES = { projects: "Projects", topics: "Topics", repos: "Repos", services: "Services", contexts: "Contexts" };

function live(domains, redraw) {
  return onChange((frame) => {
    if (frame.type === "state_update" && domains.includes(frame.domain)) redraw();
  });
}

export async function sessions(main, [id]) {
  const draw = async () => {
    if (id) return main.replaceChildren(...(await sessionDetail(id)));
    const rows = await listAll("/sessions");
    rows.sort((a, b) => (b.metadata?.lastActivity ?? "").localeCompare(a.metadata?.lastActivity ?? ""));
    main.replaceChildren(
      h("h1", {}, "Sessions"),
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ["Session", "Platform", "Status", "Project", "Last activity"].map((c) => h("th", { scope: "col" }, c)))),
        h(
          "tbody",
          {},
          rows.map((s) =>
            h(
              "tr",
              {},
              h("td", {}, h("a", { href: `#/sessions/${s.chittyId}` }, s.sessionId ?? s.chittyId)),
              h("td", {}, s.platform),
              h("td", {}, s.status ?? s.metadata?.status ?? ""),
              h("td", {}, s.projectId ? h("a", { href: `#/board/${s.projectId}` }, s.projectId) : ""),
              h("td", {}, s.metadata?.lastActivity ?? s.metadata?.modified ?? ""),
            ),
          ),
        ),
      ),
    );
  };
  await draw();
  return live(["sessions", "todos"], draw);
}

async function sessionDetail(id) {
  const { entity, todos } = { ...(await api("GET", `/sessions/${id}`)) };
  const context = entity.context ?? {};
  const list = todos ?? entity.todos ?? [];
  return [
    h("h1", {}, `Session ${sessionLabel(entity)}`),
    h("p", {}, h("a", { href: `#/history/sessions/${id}` }, "History")),
    h("h2", {}, "Context"),
    h("pre", { id: "session-context" }, JSON.stringify(context, null, 2)),
    h("h2", {}, `Todos (${list.length})`),
    h("ul", {}, list.map((t) => h("li", {}, h("a", { href: `#/history/todos/${t.chittyId}` }, t.content), ` (${t.status})`))),
  ];
}

export async function entities(main, [domain = "projects", id]) {
  const draw = async () => {
    if (id) {
      const found = await api("GET", `/${domain}/${id}`);
      const related = await relatedTo(domain, id);
      main.replaceChildren(
        h("h1", {}, `${TITLES[domain] ?? domain}: ${found.entity.name ?? found.entity.title ?? id}`),
        h("p", {}, h("a", { href: `#/history/${domain}/${id}` }, "History"), domain === "projects" ? [" · ", h("a", { href: `#/board/${id}` }, "Board")] : null),
        h("pre", {}, JSON.stringify(found.entity, null, 2)),
        related,
      );
      return;
    }
    const rows = await listAll(`/${domain}`);
    main.replaceChildren(
      h("h1", {}, TITLES[domain] ?? domain),
      rows.length
        ? h("ul", { class: "rows" }, rows.map((e) => h("li", { class: "row" }, h("a", { href: `#/entities/${domain}/${e.chittyId}` }, e.name ?? e.title ?? e.url ?? e.chittyId))))
        : h("p", {}, `No ${domain} yet.`),
    );
  };
  await draw();
  return live([domain], draw);
}

/** What names the entity: a project's sessions and todos, anything else's referencing ids. */
async function relatedTo(domain, id) {
  if (domain !== "projects") return null;
  const [sessionRows, todoRows] = await Promise.all([
    listAll("/sessions", { projectId: id }),
    listAll("/todos", { projectId: id }),
  ]);
  return [
    h("h2", {}, `Sessions (${sessionRows.length})`),
    h("ul", {}, sessionRows.map((s) => h("li", {}, h("a", { href: `#/sessions/${s.chittyId}` }, sessionLabel(s))))),
    h("h2", {}, `Todos (${todoRows.length})`),
    h("ul", {}, todoRows.map((t) => h("li", {}, h("a", { href: `#/history/todos/${t.chittyId}` }, t.content)))),
  ];
}

export async function adapters(main) {
  const { adapters: rows } = await api("GET", "/adapters");
  main.replaceChildren(
    h("h1", {}, "Adapters"),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["Adapter", "State", "Detail", "Counters"].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        rows.map((a) =>
          h(
            "tr",
            {},
            h("td", {}, a.name),
            h("td", {}, a.state),
            h("td", {}, a.detail ?? ""),
            h("td", {}, JSON.stringify(a.counters ?? a.metrics ?? {})),
          ),
        ),
      ),
    ),
  );
}
