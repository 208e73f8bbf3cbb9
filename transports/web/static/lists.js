// Sessions; topics, projects, repos and services; adapters: lists and details, live.
import { api, domainOf, h, keepShown, listAll } from "./core.js";
import { sessionLabel } from "./board.js";

const TITLES = { projects: "Projects", topics: "Topics", repos: "Repos", services: "Services", contexts: "Contexts" };
const NAME_FIELDS = ["name", "title", "url"];
const nameOf = (e) => NAME_FIELDS.map((f) => e[f]).find(Boolean) ?? e.chittyId;

/** Show `load()` in `main`, again whenever an entity of `domains` changes. */
function live(main, domains, load) {
  const wanted = (frame) => frame.type === "state_update" && domains.includes(frame.domain);
  return keepShown(wanted, load, (children) => main.replaceChildren(...children));
}

const SESSION_STATES = ["active", "paused", "ended"];

export function sessions(main, [id]) {
  return live(main, ["sessions", "todos", "contexts"], async () => {
    if (id) return sessionDetail(id);
    const rows = await listAll("/sessions");
    const last = (s) => s.timestamps?.lastActive ?? s.timestamps?.started ?? "";
    rows.sort((a, b) => last(b).localeCompare(last(a)));
    return [
      h("h1", {}, "Sessions"),
      ...SESSION_STATES.map((state) => {
        const these = rows.filter((s) => s.status === state);
        return [
          h("h2", { id: `sessions-${state}` }, `${state[0].toUpperCase()}${state.slice(1)} (${these.length})`),
          h(
            "table",
            { "aria-labelledby": `sessions-${state}` },
            h("thead", {}, h("tr", {}, ["Session", "Platform", "Project", "Todos", "Last activity"].map((c) => h("th", { scope: "col" }, c)))),
            h(
              "tbody",
              {},
              these.map((s) =>
                h(
                  "tr",
                  { "data-id": s.chittyId },
                  h("td", {}, h("a", { href: `#/sessions/${s.chittyId}` }, s.sessionId ?? s.chittyId)),
                  h("td", {}, s.platform),
                  h("td", {}, s.projectId ? h("a", { href: `#/board/${s.projectId}` }, s.projectId) : ""),
                  h("td", {}, String((s.todos ?? []).length)),
                  h("td", {}, last(s)),
                ),
              ),
            ),
          ),
        ];
      }).flat(),
    ];
  });
}

async function sessionDetail(id) {
  const [{ entity }, contexts] = await Promise.all([api("GET", `/sessions/${id}`), listAll("/contexts")]);
  const context = entity.context ?? {};
  const about = contexts.filter((c) => (c.sources ?? []).includes(id));
  const todos = entity.todos ?? [];
  return [
    h("h1", {}, `Session ${sessionLabel(entity)}`),
    h(
      "p",
      {},
      `${entity.status} · started ${entity.timestamps?.started ?? "?"} · last activity ${entity.timestamps?.lastActive ?? "?"} · `,
      h("a", { href: `#/history/sessions/${id}` }, "History"),
    ),
    h("h2", {}, "Summary and key points"),
    ...(about.length
      ? about.map((c) =>
          h(
            "section",
            { class: "row", "aria-label": `Context ${c.chittyId}` },
            h("p", { class: "summary" }, c.content?.summary || "(no summary yet)"),
            h("ul", {}, (c.content?.keyPoints ?? []).map((k) => h("li", {}, k))),
          ),
        )
      : [h("p", {}, "No context summarises this session yet.")]),
    h("h2", {}, `Files (${(context.files ?? []).length})`),
    h("ul", { id: "session-files" }, (context.files ?? []).map((f) => h("li", {}, h("code", {}, f.path)))),
    h("h2", {}, `Messages (${(context.messages ?? []).length})`),
    h(
      "ol",
      { id: "session-messages" },
      (context.messages ?? []).map((m) => h("li", {}, h("strong", {}, `${m.role}: `), m.content)),
    ),
    h("h2", {}, `Todos (${todos.length})`),
    h(
      "ul",
      { id: "session-todos" },
      todos.map((t) => h("li", {}, h("a", { href: `#/history/todos/${t.chittyId}` }, t.content), ` (${t.status})`)),
    ),
  ];
}

export function entities(main, [domain = "projects", id]) {
  return live(main, [domain], async () => {
    if (id) {
      const found = await api("GET", `/${domain}/${id}`);
      const related = await relatedTo(domain, found.entity);
      return [
        h("h1", {}, `${TITLES[domain] ?? domain}: ${nameOf(found.entity)}`),
        h("p", {}, h("a", { href: `#/history/${domain}/${id}` }, "History"), domain === "projects" ? [" · ", h("a", { href: `#/board/${id}` }, "Board")] : null),
        h("pre", {}, JSON.stringify(found.entity, null, 2)),
        ...related,
      ];
    }
    const rows = await listAll(`/${domain}`);
    return [
      h("h1", {}, TITLES[domain] ?? domain),
      rows.length
        ? h("ul", { class: "rows" }, rows.map((e) => h("li", { class: "row" }, h("a", { href: `#/entities/${domain}/${e.chittyId}` }, nameOf(e)))))
        : h("p", {}, `No ${domain} yet.`),
    ];
  });
}

/** The entities this one names (links), and for a project its sessions and todos. */
async function relatedTo(domain, entity) {
  const id = entity.chittyId;
  const named = [...new Set(JSON.stringify(entity).match(/CHITTY-(PROJ|SESSION|TODO|CONTEXT|REPO|SERVICE)-[0-9A-Z]+/g) ?? [])];
  const links = named.filter((n) => n !== id);
  const parts = [
    h("h2", {}, `Related (${links.length})`),
    h("ul", { id: "related" }, links.map((n) => h("li", {}, h("a", { href: `#/open/${n}` }, n)))),
  ];
  if (domain !== "projects") return parts;
  const [sessionRows, todoRows] = await Promise.all([
    listAll("/sessions", { projectId: id }),
    listAll("/todos", { projectId: id }),
  ]);
  return [
    ...parts,
    h("h2", {}, `Sessions (${sessionRows.length})`),
    h("ul", {}, sessionRows.map((s) => h("li", {}, h("a", { href: `#/sessions/${s.chittyId}` }, sessionLabel(s))))),
    h("h2", {}, `Todos (${todoRows.length})`),
    h("ul", {}, todoRows.map((t) => h("li", {}, h("a", { href: `#/history/todos/${t.chittyId}` }, t.content)))),
  ];
}

/** Any entity by id: its own view (a todo's is its history, a session's its detail). */
export async function open(main, [id]) {
  const domain = await domainOf(id);
  const target = { todos: `#/history/todos/${id}`, sessions: `#/sessions/${id}` }[domain];
  location.replace(target ?? `#/entities/${domain}/${id}`);
}

const COUNTERS = ["sent", "received", "retried", "failed", "pending", "lag", "ignored"];

export async function adapters(main) {
  const draw = async () => {
    const { adapters: rows } = await api("GET", "/adapters");
    main.replaceChildren(
      h("h1", {}, "Adapters"),
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ["Adapter", "Kind", "State", "Detail", ...COUNTERS].map((c) => h("th", { scope: "col" }, c)))),
        h(
          "tbody",
          {},
          rows.map((a) =>
            h(
              "tr",
              { "data-name": a.name },
              h("td", {}, a.name),
              h("td", {}, a.kind),
              h("td", { class: `state ${a.state}` }, a.state),
              h("td", {}, a.detail ?? ""),
              COUNTERS.map((c) => h("td", {}, String(a[c] ?? 0))),
            ),
          ),
        ),
      ),
    );
  };
  await draw();
  const timer = setInterval(draw, 1000); // adapter counters are not entities: no stream of theirs
  return () => clearInterval(timer);
}
