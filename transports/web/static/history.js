// Time travel: a slider over an entity's history; the state at the chosen version (from
// `?at=`) and what that version changed, who wrote it and from where (from `/history`).
import { api, h, onChange } from "./core.js";

export async function history(main, [domain, id]) {
  if (!domain || !id) {
    main.replaceChildren(h("h1", {}, "History"), h("p", {}, "Open an entity's history from its card or page."));
    return;
  }
  let events = (await api("GET", `/${domain}/${id}/history`)).events;
  const slider = h("input", { id: "version", type: "range", min: "1", step: "1" });
  const said = h("output", { for: "version", id: "version-said" });
  const state = h("div", { id: "state" });
  const show = async () => {
    const event = events[Number(slider.value) - 1];
    const at = new Date(event.timestampMs).toISOString();
    said.textContent = `version ${event.seq} of ${events.length}: ${at}`;
    const { entity } = await api("GET", `/${domain}/${id}?at=${encodeURIComponent(at)}`);
    if (Number(slider.value) - 1 !== events.indexOf(event)) return; // the slider moved on
    state.replaceChildren(...changes(event), table(entity, new Set(event.changed)));
  };
  const reset = (toLatest) => {
    slider.max = String(events.length);
    if (toLatest) slider.value = String(events.length);
  };
  reset(true);
  slider.addEventListener("input", show);
  main.replaceChildren(
    h("h1", {}, `History of ${id}`),
    h("label", { for: "version" }, "Version"),
    slider,
    said,
    state,
  );
  await show();
  return onChange(async (frame) => {
    if (frame.type !== "state_update" || frame.entityId !== id) return;
    const atLatest = slider.value === slider.max;
    events = (await api("GET", `/${domain}/${id}/history`)).events;
    reset(atLatest);
    if (atLatest) show();
  });
}

function changes(event) {
  const source = event.message.source;
  return [
    h("p", { id: "who" }, `${event.kind} by ${source.chittyId ?? "?"} from ${source.platform} (${event.message.metadata.timestamp})`),
    h("p", { id: "fields" }, `Changed: ${event.changed.join(", ") || "nothing"}`),
  ];
}

function table(entity, changed) {
  const rows = flatten(entity).map(([path, value]) =>
    h("tr", { class: changed.has(path) ? "changed" : null, "data-field": path }, h("th", { scope: "row" }, path), h("td", {}, JSON.stringify(value))),
  );
  return h("table", {}, h("caption", {}, "State at this version (changed fields highlighted)"), h("tbody", {}, rows));
}

function flatten(value, prefix = "") {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([key, inner]) => flatten(inner, prefix ? `${prefix}.${key}` : key));
  }
  return [[prefix, value]];
}
