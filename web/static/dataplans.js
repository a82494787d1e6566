// Data plans and their billing cycles.
import { el, append, clear, $, table, when, bytes } from "./ui.js";
import { api, act, showError } from "./api.js";
import { current, reload } from "./nav.js";

async function dataPlans() {
  const view = $("#view");
  const ok = current();
  const plans = await api("GET", "/data_plans");
  if (!ok()) return;
  const id = el("input", { id: "new-plan", placeholder: "plan id", size: 20 });
  const detail = el("div", { id: "plan-detail" });

  async function showPlan(pid) {
    try {
      const cycles = await api("GET", "/data_plans/" + encodeURIComponent(pid) + "/billing_cycles");
      const start = el("input", { type: "datetime-local", id: "cycle-start" });
      const pool = el("input", { type: "number", min: 0, id: "cycle-pool", placeholder: "pool bytes" });
      clear(detail, el("h2", {}, "Billing cycles of " + pid),
        table(["Start", "Pool", "Used", ""], cycles.map((cy) => {
          const bar = el("div", { class: "fill inFlight" });
          bar.style.width = (cy.poolBytes ? Math.min(100, (100 * cy.usedBytes) / cy.poolBytes) : 0) + "%";
          return [when(cy.start), bytes(cy.poolBytes), bytes(cy.usedBytes), el("div", { class: "meter" }, bar)];
        }), "No billing cycles: updates are not limited."),
        el("form", { class: "bar", needs: "operator", onsubmit: async (ev) => {
          ev.preventDefault();
          if (!start.value) return;
          if (await act(() => api("POST", "/data_plans/" + encodeURIComponent(pid) + "/billing_cycles", { start: new Date(start.value).toISOString(), poolBytes: Number(pool.value) }), "Billing cycle added")) showPlan(pid);
        } }, el("label", {}, "Start ", start), pool, el("button", { type: "submit", id: "cycle-add" }, "Add cycle")));
    } catch (e) { showError(detail, e); }
  }

  append(view, el("h1", {}, "Data plans"),
    el("form", { class: "bar", needs: "operator", onsubmit: async (ev) => {
      ev.preventDefault();
      if (await act(() => api("POST", "/data_plans", { id: id.value.trim() }), "Data plan created")) reload();
    } }, id, el("button", { type: "submit", id: "plan-create" }, "Create plan")),
    el("div", { class: "cols" },
      el("section", { class: "card" }, table(["Plan", "Created", ""], plans.map((p) => [p.id, when(p.createdAt),
        el("button", { class: "small", "data-plan": p.id, onclick: () => showPlan(p.id) }, "Billing cycles")]), "No data plans.")),
      el("section", { class: "card" }, detail)));
  if (plans.length) showPlan(plans[0].id);
  else clear(detail, el("p", { class: "muted" }, "Create a data plan, add billing cycles, then put vehicles on it from their page."));
}

export const routes = [
  [/^#\/data-plans$/, dataPlans],
];
