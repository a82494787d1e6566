// The audit log (admin): who changed what and when, newest first, filtered by actor, target and time.
import { el, append, clear, $, table, when } from "./ui.js";
import { api, showError } from "./api.js";
import { current } from "./nav.js";

const PAGE = 50;

async function audit() {
  const view = $("#view");
  const ok = current();
  const actor = el("input", { id: "audit-actor", placeholder: "actor (name or token:NAME)", size: 24 });
  const target = el("input", { id: "audit-target", placeholder: "target (VIN, filter, name/version)", size: 28 });
  const from = el("input", { id: "audit-from", type: "datetime-local" });
  const list = el("div", { id: "audit-list" });
  let offset = 0;

  async function show() {
    const q = new URLSearchParams({ limit: PAGE, offset });
    if (actor.value.trim()) q.set("actor", actor.value.trim());
    if (target.value.trim()) q.set("target", target.value.trim());
    if (from.value) q.set("from", new Date(from.value).toISOString());
    try {
      const { data, total } = await api("GET", "/audit?" + q, undefined, { withTotal: true });
      if (!ok()) return;
      const more = [];
      if (offset > 0) more.push(el("button", { class: "small", id: "audit-newer", onclick: () => { offset = Math.max(0, offset - PAGE); show(); } }, "Newer"));
      if (offset + data.length < total) more.push(el("button", { class: "small", id: "audit-older", onclick: () => { offset += PAGE; show(); } }, "Older"));
      clear(list,
        el("p", { class: "muted", id: "audit-total" }, total ? `Entries ${offset + 1}–${offset + data.length} of ${total}` : "No entry matches."),
        table(["When", "Actor", "Role", "Call", "Target", "Status"], data.map((e) => [
          when(e.at), e.actor, e.role, el("code", {}, e.method + " " + e.route), e.target || "—", String(e.status),
        ]), "No entry matches."),
        el("div", { class: "bar" }, ...more));
    } catch (e) { showError(list, e); }
  }

  append(view, el("h1", {}, "Audit log"),
    el("p", { class: "muted" }, "Every successful change made through the admin API, written with the change itself."),
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); offset = 0; show(); } },
      actor, target, el("label", {}, "From ", from), el("button", { type: "submit", id: "audit-search" }, "Search")),
    list);
  await show();
}

export const routes = [
  [/^#\/audit$/, audit],
];
