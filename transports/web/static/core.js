// What every view uses: the API client (the session cookie plus the CSRF header), the live
// stream over /ws, a notice line, and a small element builder.

const csrf = document.querySelector('meta[name="csrf-token"]').content;

/** A failed API call: `detail` and `field` as the API answered them. */
export class ApiFailure extends Error {
  constructor(status, body) {
    const detail = body?.detail ?? `HTTP ${status}`;
    super(body?.field ? `${body.field}: ${detail}` : detail);
    this.status = status;
    this.body = body;
  }
}

/** Call the REST API as the signed-in principal; the answer's JSON, or throw ApiFailure. */
export async function api(method, path, body) {
  const headers = { "X-CSRF-Token": csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 401) location.reload(); // the session ended: back to sign-in
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiFailure(response.status, parsed);
  return parsed;
}

/** Every row of a list route, following its cursor; `onPage(items)` sees each page's items
 * (entity and seq) as it arrives. */
export async function listAll(path, params = {}, onPage = () => {}) {
  const rows = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ ...params, limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `${path}?${query}`);
    onPage(page.items);
    rows.push(...page.items.map((item) => item.entity ?? item));
    cursor = page.cursor;
  } while (cursor);
  return rows;
}

/** Say something to the user (and to screen readers); errors stay until the next notice. */
export function notify(text, isError = false) {
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.className = isError ? "error" : "info";
}

/** An element: h("button", {type: "button", onclick}, "Save"). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** A vendored script, loaded once, checked against its pinned hash by the browser. */
const loaded = new Map();
export function vendor(path) {
  if (!loaded.has(path)) {
    const hashes = JSON.parse(document.getElementById("vendor").textContent);
    loaded.set(
      path,
      new Promise((resolve, reject) => {
        const script = h("script", { src: path, integrity: hashes[path] });
        script.onload = resolve;
        script.onerror = () => reject(new Error(`cannot load ${path}`));
        document.head.append(script);
      }),
    );
  }
  return loaded.get(path);
}

// -- live ------------------------------------------------------------------------------------

const listeners = new Set();

/** Call `handler(frame)` for every change, until the returned function is called. */
export function onChange(handler) {
  listeners.add(handler);
  return () => listeners.delete(handler);
}

/** Keep a view current: `show(await load())` now, and again on every frame `wanted(frame)`.
 * It listens before the first load, so a change made while that load is on its way is not
 * missed; and a load that ends after a later one began is dropped, so an older state never
 * replaces a newer one. Returns the function that stops it. */
export async function keepShown(wanted, load, show) {
  let latest = 0;
  const draw = async () => {
    const mine = ++latest;
    const loaded = await load();
    if (mine === latest) show(loaded);
  };
  const stop = onChange((frame) => {
    if (wanted(frame)) draw().catch((error) => notify(error.message, true));
  });
  try {
    await draw();
  } catch (error) {
    stop();
    throw error;
  }
  return stop;
}

/** Open /ws (the session cookie authenticates it), subscribe, reconnect when it drops. */
export function connect(delay = 500) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?platform=web`);
  const live = document.getElementById("live");
  socket.onopen = () => {
    delay = 500;
    socket.send(JSON.stringify({ type: "subscribe" }));
  };
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "subscribed") {
      live.textContent = "live";
      live.className = "on";
    }
    const frames = frame.type === "batch" ? frame.events : [frame];
    for (const one of frames) {
      if (one.type === "state_update" || one.type === "conflict") {
        for (const handler of listeners) handler(one);
      }
    }
  };
  socket.onclose = (event) => {
    live.textContent = "offline, reconnecting…";
    live.className = "off";
    if (event.code === 1008) location.reload(); // the credential was revoked
    else setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
  };
}

const DOMAIN_OF_KIND = { TODO: "todos", SESSION: "sessions", PROJ: "projects", REPO: "repos", SERVICE: "services" };

/** The domain an entity id belongs to; topics and contexts share CHITTY-CONTEXT ids, so
 * those are looked up. */
export async function domainOf(id) {
  const kind = id.split("-")[1];
  if (DOMAIN_OF_KIND[kind]) return DOMAIN_OF_KIND[kind];
  try {
    await api("GET", `/topics/${id}`);
    return "topics";
  } catch {
    return "contexts";
  }
}

/** The history event that wrote `clock` (a conflict version's), if any: who, where, when. */
export function writerOf(events, clock) {
  const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
  return events.find((e) => same(e.message?.metadata?.vectorClock ?? {}, clock));
}

function sorted(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => a.localeCompare(b)));
}
