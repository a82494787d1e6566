// Components: part numbers, and the vehicles that have one installed.
import { el, append, clear, $, table, vinLink } from "./ui.js";
import { api, act, showError } from "./api.js";
import { current } from "./nav.js";

async function components() {
  const view = $("#view");
  const q = el("input", { id: "component-regex", placeholder: "part number regex", size: 24 });
  const list = el("div", {});
  const side = el("div", { id: "component-vehicles" });
  async function load() {
    const ok = current();
    try {
      const cs = await api("GET", "/components" + (q.value ? "?regex=" + encodeURIComponent(q.value) : ""));
      if (!ok()) return;
      clear(list, table(["Part number", "Description", ""], cs.map((c) => [c.partNumber, c.description,
        el("span", {},
          el("button", { class: "small", onclick: async () => {
            try {
              const vins = await api("GET", "/components/" + encodeURIComponent(c.partNumber) + "/vehicles");
              clear(side, el("h2", {}, "Vehicles with " + c.partNumber + " (" + vins.length + ")"),
                vins.length ? el("div", { class: "scroll" }, el("ul", { class: "vins" }, vins.slice(0, 500).map((v) => el("li", {}, vinLink(v))))) : el("p", { class: "muted" }, "None."),
                vins.length > 500 ? el("p", { class: "muted" }, "… and " + (vins.length - 500) + " more") : null);
            } catch (e) { showError(side, e); }
          } }, "Vehicles"),
          el("button", { class: "small danger", needs: "operator", onclick: async () => { if (await act(() => api("DELETE", "/components/" + encodeURIComponent(c.partNumber)), "Deleted " + c.partNumber)) load(); } }, "Delete"))]), "No components."));
    } catch (e) { showError(list, e); }
  }
  const part = el("input", { id: "new-part", placeholder: "part number", size: 16 });
  const desc = el("input", { id: "new-part-description", placeholder: "description", size: 30 });
  append(view, el("h1", {}, "Components"),
    el("form", { class: "bar", needs: "operator", onsubmit: async (ev) => {
      ev.preventDefault();
      if (await act(() => api("POST", "/components", { partNumber: part.value.trim(), description: desc.value }), "Component " + part.value + " added")) { part.value = ""; desc.value = ""; load(); }
    } }, part, desc, el("button", { type: "submit", id: "component-add" }, "Add component")),
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); load(); } }, q, el("button", { type: "submit" }, "Search")),
    el("div", { class: "cols" }, list, side));
  load();
}

export const routes = [
  [/^#\/components$/, components],
];
