// The Board: a project's todos in columns by status, live. Drag a card (or pick its status)
// to change it; the hub refuses an illegal transition and the notice says why.
import { ApiFailure, api, h, listAll, notify, onChange } from "./core.js";

export const STATUSES = ["pending", "in_progress", "blocked", "completed"];
const LABELS = { pending: "Pending", in_progress: "In progress", blocked: "Blocked", completed: "Completed" };
const PRIORITIES = ["low", "medium", "high", "critical"];
// What a card and its editor show (a listing answers only these).
const CARD_FIELDS = "content,status,sessionId,projectId,listedIn,mergedInto,assignees,deadline,metadata";

export async function board(main, [projectId]) {
  const projects = await listAll("/projects");
  if (!projects.length) {
    main.replaceChildren(h("h1", {}, "Board"), newProjectForm());
    return;
  }
  const project = projects.find((p) => p.chittyId === projectId) ?? projects[0];
  const sessions = await listAll("/sessions", {
    projectId: project.chittyId,
    fields: "platform,sessionId",
  });
  const state = new Board(project, sessions);
  main.replaceChildren(...state.render(projects));
  const stop = onChange((frame) => state.changed(frame));
  // One listing of the project's todos (a list per status would scan the catalog once per
  // status); each page is drawn into its columns while the next one is on its way.
  const wanted = { projectId: project.chittyId, includeMerged: "true", fields: CARD_FIELDS };
  await listAll("/todos", wanted, (items) => state.load(items));
  return stop;
}

function newProjectForm() {
  const name = h("input", { id: "project-name", required: true });
  return h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const made = await api("POST", "/projects", { name: name.value });
        location.hash = `#/board/${made.entity.chittyId}`;
      },
    },
    h("p", {}, "No project yet."),
    h("label", { for: "project-name" }, "Project name"),
    name,
    h("button", { type: "submit" }, "Create project"),
  );
}

class Board {
  constructor(project, sessions) {
    this.project = project;
    this.todos = new Map();
    this.seqs = new Map(); // the newest version seen of each todo: an older one never wins
    this.sessions = sessions;
    this.cards = new Map();
    this.lists = {};
    this.filter = { session: "", assignee: "", tag: "" };
  }

  render(projects) {
    const picker = h(
      "select",
      {
        id: "board-project",
        onchange: (e) => (location.hash = `#/board/${e.target.value}`),
      },
      projects.map((p) =>
        h("option", { value: p.chittyId, selected: p.chittyId === this.project.chittyId }, p.name),
      ),
    );
    const sessionFilter = h(
      "select",
      { id: "filter-session", onchange: (e) => this.refilter({ session: e.target.value }) },
      h("option", { value: "" }, "All sessions"),
      this.sessions.map((s) => h("option", { value: s.chittyId }, sessionLabel(s))),
    );
    const assigneeFilter = h("input", {
      id: "filter-assignee",
      placeholder: "CHITTY-…",
      oninput: (e) => this.refilter({ assignee: e.target.value.trim() }),
    });
    const tagFilter = h("input", {
      id: "filter-tag",
      placeholder: "tag",
      oninput: (e) => this.refilter({ tag: e.target.value.trim().replace(/^#/, "").toLowerCase() }),
    });
    const tools = h(
      "div",
      { class: "toolbar" },
      h("label", { for: "board-project" }, "Project"),
      picker,
      h("label", { for: "filter-session" }, "Filter by session"),
      sessionFilter,
      h("label", { for: "filter-assignee" }, "Filter by assignee"),
      assigneeFilter,
      h("label", { for: "filter-tag" }, "Filter by tag"),
      tagFilter,
      h("button", { type: "button", onclick: () => this.reconcile() }, "Reconcile"),
      h("a", { href: `#/mesh/${this.project.chittyId}` }, "Mesh"),
      h("a", { href: `#/history/projects/${this.project.chittyId}` }, "History"),
    );
    const columns = h(
      "div",
      { class: "columns" },
      STATUSES.map((status) => this.column(status)),
    );
    this.delegate(columns);
    this.counts();
    return [h("h1", {}, `Board: ${this.project.name}`), tools, this.createForm(), columns];
  }

  /** A page of listed todos: its cards written as one piece of HTML per column, which the
   * browser's parser builds far faster than one DOM call per node (a board of thousands);
   * versions older than one already shown are skipped. */
  load(items) {
    const html = Object.fromEntries(STATUSES.map((s) => [s, []]));
    const ids = Object.fromEntries(STATUSES.map((s) => [s, []]));
    for (const { entity: todo, seq } of items) {
      if (!this.newer(todo.chittyId, seq)) continue;
      this.todos.set(todo.chittyId, todo);
      this.cards.get(todo.chittyId)?.remove();
      const status = STATUSES.includes(todo.status) ? todo.status : "pending";
      html[status].push(this.cardHtml(todo));
      ids[status].push(todo.chittyId);
    }
    for (const status of STATUSES) {
      const list = this.lists[status];
      const before = list.children.length;
      list.insertAdjacentHTML("beforeend", html[status].join(""));
      const added = list.children;
      for (let i = 0; i < ids[status].length; i++) this.cards.set(ids[status][i], added[before + i]);
    }
    this.counts();
  }

  /** Whether `seq` is a newer version of todo `id` than any shown (and note it if so). */
  newer(id, seq) {
    if (seq !== undefined && (this.seqs.get(id) ?? -1) >= seq) return false;
    if (seq !== undefined) this.seqs.set(id, seq);
    return true;
  }

  column(status) {
    const list = h("ul", { class: "cards", "aria-labelledby": `col-${status}` });
    this.lists[status] = list;
    return h(
      "section",
      {
        class: "column",
        "data-status": status,
        ondragover: (e) => e.preventDefault(),
        ondrop: (e) => {
          e.preventDefault();
          this.move(e.dataTransfer.getData("text/plain"), status);
        },
      },
      h("h2", { id: `col-${status}` }, LABELS[status], " ", h("span", { class: "count" })),
      list,
    );
  }

  createForm() {
    const content = h("input", { id: "new-content", required: true, maxlength: "10000" });
    const session = h(
      "select",
      { id: "new-session", required: true },
      this.sessions.map((s) => h("option", { value: s.chittyId }, sessionLabel(s))),
    );
    const priority = h(
      "select",
      { id: "new-priority" },
      PRIORITIES.map((p) => h("option", { value: p, selected: p === "medium" }, p)),
    );
    const deadline = h("input", { id: "new-deadline", type: "datetime-local" });
    const assignee = h("input", { id: "new-assignee", placeholder: "CHITTY-…" });
    const submit = async (event) => {
      event.preventDefault();
      const body = {
        content: content.value,
        sessionId: session.value,
        projectId: this.project.chittyId,
        metadata: { priority: priority.value },
      };
      if (deadline.value) body.deadline = new Date(deadline.value).toISOString();
      if (assignee.value.trim()) body.assignees = [assignee.value.trim()];
      try {
        const made = await api("POST", "/todos", body);
        this.upsert(made.entity, made.seq);
        content.value = "";
        notify(`Added “${made.entity.content}”.`);
      } catch (error) {
        notify(error.message, true);
      }
    };
    if (!this.sessions.length) {
      return h("p", {}, "This project has no session yet: start one (", h("code", {}, "chitty session start"), ") to add todos here.");
    }
    return h(
      "form",
      { class: "new-todo", onsubmit: submit, "aria-label": "Add a todo" },
      h("label", { for: "new-content" }, "New todo"),
      content,
      h("label", { for: "new-session" }, "in session"),
      session,
      h("label", { for: "new-priority" }, "Priority"),
      priority,
      h("label", { for: "new-deadline" }, "Deadline"),
      deadline,
      h("label", { for: "new-assignee" }, "Assignee"),
      assignee,
      h("button", { type: "submit" }, "Add"),
    );
  }

  /** A card as HTML (every value escaped): a button with the todo's text that opens its
   * editor, and its badges. Small on purpose: a board of thousands is thousands of these.
   * Its controls are handled once, on the columns (see `delegate`). */
  cardHtml(todo) {
    const priority = todo.metadata?.priority ?? "medium";
    const badges = [priority];
    if (todo.deadline) badges.push(`due ${todo.deadline.slice(0, 16).replace("T", " ")}`);
    for (const assignee of todo.assignees ?? []) badges.push(`@${assignee}`);
    for (const tag of todo.metadata?.tags ?? []) badges.push(`#${tag}`);
    if (todo.listedIn?.length) badges.push(`listed in ${todo.listedIn.length + 1} sessions`);
    if (todo.mergedInto) badges.push(`merged into ${todo.mergedInto}`);
    return (
      `<li class="card priority-${esc(priority)}${todo.mergedInto ? " merged" : ""}"` +
      ` draggable="${!todo.mergedInto}" data-id="${esc(todo.chittyId)}"` +
      `${this.matches(todo) ? "" : " hidden"}><button type="button" class="open"` +
      ` aria-keyshortcuts="Alt+ArrowLeft Alt+ArrowRight">${esc(todo.content)}</button>` +
      `<p class="meta">${badges.map((b) => `<span class="badge">${esc(b)}</span>`).join("")}` +
      `<span class="origin" title="origin session">from ${esc(todo.sessionId)}</span></p></li>`
    );
  }

  card(todo) {
    const holder = document.createElement("template");
    holder.innerHTML = this.cardHtml(todo);
    return holder.content.firstElementChild;
  }

  /** The cards' controls, handled on their container: drag to a column; click (or Enter)
   * opens a card's editor; Alt+Left/Right moves it to the previous or next column. */
  delegate(columns) {
    const idOf = (event) => event.target.closest(".card")?.dataset.id;
    columns.addEventListener("dragstart", (e) => e.dataTransfer.setData("text/plain", idOf(e)));
    columns.addEventListener("click", (e) => {
      if (e.target.matches("button.open")) this.edit(idOf(e));
    });
    columns.addEventListener("keydown", (e) => {
      const step = { ArrowLeft: -1, ArrowRight: 1 }[e.key];
      if (!e.altKey || !step || !e.target.matches("button.open")) return;
      e.preventDefault();
      const id = idOf(e);
      const next = STATUSES[STATUSES.indexOf(this.todos.get(id)?.status) + step];
      if (next) this.move(id, next, true);
    });
  }

  place(todo) {
    const old = this.cards.get(todo.chittyId);
    const card = this.card(todo);
    this.cards.set(todo.chittyId, card);
    const list = this.lists[todo.status] ?? this.lists.pending;
    if (old && old.parentNode === list) old.replaceWith(card);
    else {
      old?.remove();
      list.prepend(card);
    }
  }

  upsert(todo, seq) {
    if (!this.newer(todo.chittyId, seq)) return;
    this.todos.set(todo.chittyId, todo);
    this.place(todo);
    this.counts();
  }

  remove(id) {
    this.seqs.set(id, Infinity);
    this.todos.delete(id);
    this.cards.get(id)?.remove();
    this.cards.delete(id);
    this.counts();
  }

  counts() {
    for (const status of STATUSES) {
      const shown = [...this.lists[status].children].filter((c) => !c.hidden).length;
      this.lists[status].parentNode.querySelector(".count").textContent = `(${shown})`;
    }
  }

  matches(todo) {
    const { session, assignee, tag } = this.filter;
    if (session && todo.sessionId !== session && !(todo.listedIn ?? []).includes(session)) return false;
    if (tag && !(todo.metadata?.tags ?? []).some((t) => t.toLowerCase() === tag)) return false;
    return !assignee || (todo.assignees ?? []).some((a) => a.includes(assignee));
  }

  refilter(change) {
    Object.assign(this.filter, change);
    for (const [id, card] of this.cards) card.hidden = !this.matches(this.todos.get(id));
    this.counts();
  }

  changed(frame) {
    if (frame.type !== "state_update" || frame.domain !== "todos") return;
    if (frame.operation === "delete") this.remove(frame.entityId);
    else if (frame.entity.projectId === this.project.chittyId) this.upsert(frame.entity, frame.seq);
  }

  /** Change a todo's status; the hub may refuse (an illegal transition), and the notice
   * says why. `refocus`: give the keyboard back to the card in its new column. */
  async move(id, status, refocus = false) {
    const todo = this.todos.get(id);
    if (!todo || todo.status === status) return;
    await this.write(todo, { status }, `“${todo.content}” is now ${LABELS[status].toLowerCase()}.`);
    if (refocus) this.cards.get(id)?.querySelector("button.open").focus();
  }

  /** PATCH a todo; true if the hub took it. A refused change puts the card back where the
   * hub keeps it and says why. */
  async write(todo, body, done) {
    try {
      const written = await api("PATCH", `/todos/${todo.chittyId}`, body);
      this.upsert(written.entity, written.seq);
      notify(done);
      return true;
    } catch (error) {
      this.place(todo);
      const why = error instanceof ApiFailure ? error.message : String(error);
      notify(`Cannot ${body.status ? "move" : "change"} “${todo.content}”: ${why}`, true);
      return false;
    }
  }

  /** A todo's editor: status, text, priority, deadline, assignees, tags, and its history. */
  edit(id) {
    const todo = this.todos.get(id);
    if (!todo) return;
    const field = (name, label, input) => [h("label", { for: `edit-${name}` }, label), input];
    const status = h(
      "select",
      { id: "edit-status" },
      STATUSES.map((s) => h("option", { value: s, selected: s === todo.status }, LABELS[s])),
    );
    const content = h("textarea", { id: "edit-content", required: true }, todo.content);
    const priority = h(
      "select",
      { id: "edit-priority" },
      PRIORITIES.map((p) => h("option", { value: p, selected: p === (todo.metadata?.priority ?? "medium") }, p)),
    );
    const deadline = h("input", {
      id: "edit-deadline",
      type: "datetime-local",
      value: todo.deadline ? toLocalInput(todo.deadline) : "",
    });
    const list = (values) => (values ?? []).join(", ");
    const parse = (input) => input.value.split(",").map((v) => v.trim()).filter(Boolean);
    const assignees = h("input", { id: "edit-assignees", value: list(todo.assignees) });
    const tags = h("input", { id: "edit-tags", value: list(todo.metadata?.tags) });
    const dialog = h(
      "dialog",
      { "aria-labelledby": "edit-title", onclose: () => dialog.remove() },
      h(
        "form",
        {
          onsubmit: async (event) => {
            event.preventDefault();
            const body = {
              content: content.value,
              metadata: { priority: priority.value, tags: parse(tags) },
              deadline: deadline.value ? new Date(deadline.value).toISOString() : null,
              assignees: parse(assignees),
            };
            if (status.value !== todo.status) body.status = status.value;
            if (await this.write(todo, body, `Saved “${content.value}”.`)) dialog.close();
          },
        },
        h("h2", { id: "edit-title" }, "Edit todo"),
        field("status", "Status", status),
        field("content", "Content", content),
        field("priority", "Priority", priority),
        field("deadline", "Deadline", deadline),
        field("assignees", "Assignees (comma-separated ChittyIDs)", assignees),
        field("tags", "Tags (comma-separated)", tags),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "submit" }, "Save"),
          h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
          h("a", { href: `#/history/todos/${id}`, onclick: () => dialog.close() }, "History"),
        ),
      ),
    );
    document.body.append(dialog);
    dialog.showModal();
  }

  async reconcile() {
    try {
      const report = await api("POST", "/todos/reconcile", { projectId: this.project.chittyId });
      const writes = report.writes?.length ?? 0;
      notify(`Reconciled: ${writes} write${writes === 1 ? "" : "s"} across the project's sessions.`);
    } catch (error) {
      notify(error.message, true);
    }
  }
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
function esc(value) {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export function sessionLabel(session) {
  return `${session.platform ?? "?"} · ${session.sessionId ?? session.chittyId}`;
}

function toLocalInput(iso) {
  const date = new Date(iso);
  return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}
