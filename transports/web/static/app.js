// The web UI's shell: the hash router that mounts one view at a time over the live stream.
import { board } from "./board.js";
import { conflicts } from "./conflicts.js";
import { connect, h, notify } from "./core.js";
import { history } from "./history.js";
import { adapters, entities, open, sessions } from "./lists.js";
import { mesh } from "./mesh.js";


const VIEWS = { board, mesh, conflicts, sessions, entities, adapters, history, open };
let unmount = () => {};
let routed = 0; // which route() call is current: a slower earlier view must not win

async function route() {
  const [name, ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const view = VIEWS[name] ?? board;
  const current = ++routed;
  // Each view renders into a box of its own: one that a later route replaced is detached.
  const box = h("div", {}, h("p", {}, "Loading…"));
  document.getElementById("view").replaceChildren(box);
  unmount();
  unmount = () => {};
  notify("");
  for (const link of document.querySelectorAll("nav a")) {
    const current = link.getAttribute("href") === `#/${[name, ...args].slice(0, 2).join("/")}`
      || link.getAttribute("href") === `#/${name}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    const stop = (await view(box, args)) ?? (() => {});
    if (current === routed) unmount = stop;
    else stop();
  } catch (error) {
    box.replaceChildren(h("p", { class: "error", role: "alert" }, error.message));
  }
}

window.addEventListener("hashchange", route);
connect();
route();
