// Conflicts: each open conflict with its versions side by side; resolve by picking a
// version or by writing a value of one's own.
import { api, domainOf, h, keepShown, notify, writerOf } from "./core.js";

export function conflicts(main) {
  const load = async () => {
    const { conflicts: open } = await api("GET", "/sync/conflicts");
    return [open.length, await Promise.all(open.map(withWriters))];
  };
  const show = ([count, cards]) =>
    main.replaceChildren(
      h("h1", {}, "Conflicts"),
      count ? h("ul", { class: "conflicts" }, cards) : h("p", {}, "No open conflicts."),
    );
  return keepShown((frame) => frame.type === "conflict", load, show);
}

/** A conflict's card, each version with who wrote it, when and from where (its history). */
async function withWriters(conflict) {
  const domain = await domainOf(conflict.entityId);
  const { events } = await api("GET", `/${domain}/${conflict.entityId}/history`);
  return conflictCard(conflict, domain, events);
}

function conflictCard(conflict, domain, events) {
  const id = conflict.conflictId;
  const resolve = async (value) => {
    try {
      await api("POST", `/sync/conflicts/${encodeURIComponent(id)}/resolve`, { value });
      notify(`Resolved ${conflict.field} of ${conflict.entityId}.`);
    } catch (error) {
      notify(error.message, true);
    }
  };
  const own = h("input", { id: `own-${id}`, placeholder: "another value (JSON or text)" });
  return h(
    "li",
    { class: "conflict", "data-id": id },
    h(
      "h2",
      {},
      `${conflict.field} of `,
      h("a", { href: `#/history/${domain}/${conflict.entityId}` }, conflict.entityId),
    ),
    h(
      "div",
      { class: "versions" },
      conflict.versions.map((version, index) => {
        const writer = writerOf(events, version.vectorClock)?.message;
        return h(
          "section",
          { class: "version", "aria-label": `Version ${index + 1}` },
          h("pre", {}, JSON.stringify(version.value, null, 2)),
          writer
            ? h(
                "p",
                { class: "meta" },
                `by ${writer.source.chittyId} from ${writer.source.platform} at ${writer.metadata.timestamp}`,
              )
            : h("p", { class: "meta" }, "writer not in the history"),
          h("button", { type: "button", onclick: () => resolve(version.value) }, `Keep ${JSON.stringify(version.value)}`),
        );
      }),
    ),
    h(
      "form",
      {
        class: "own",
        onsubmit: (event) => {
          event.preventDefault();
          let value = own.value;
          try {
            value = JSON.parse(own.value);
          } catch {
            // plain text: sent as a string
          }
          resolve(value);
        },
      },
      h("label", { for: `own-${id}` }, "Or resolve with"),
      own,
      h("button", { type: "submit" }, "Resolve"),
    ),
  );
}
