// The web UI's shell: the hash router that mounts one view at a time over the live stream.
import { board } from "./board.js";
import { conflicts } from "./conflicts.js";
import { connect, h, notify } from "./core.js";
import { history } from "./history.js";
import { adapters, entities, sessions } from "./lists.js";
import { mesh } from "./mesh.js";


const VIEWS = { board, mesh, conflicts, sessions, entities, adapters, history };
let unmount = () => {};

async function route() {
  const [name, ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const view = VIEWS[name] ?? board;
  const main = document.getElementById("view");
  unmount();
  unmount = () => {};
  notify("");
  main.replaceChildren(h("p", {}, "Loading…"));
  for (const link of document.querySelectorAll("nav a")) {
    const current = link.getAttribute("href") === `#/${[name, ...args].slice(0, 2).join("/")}`
      || link.getAttribute("href") === `#/${name}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    unmount = (await view(main, args)) ?? (() => {});
  } catch (error) {
    main.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
  }
}

window.addEventListener("hashchange", route);
connect();
route();
