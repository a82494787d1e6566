// Update requests: the progress panel (counts per status, refreshed every second, the vehicles of a
// status) shared with the campaign page, and an update request's page.
import { el, append, clear, $, table, pkgText, vinLink, when, toast, badge, statusLabel, stackBar, STATUSES } from "./ui.js";
import { api, act, showError } from "./api.js";
import { current, poll } from "./nav.js";

// progressPanel shows an update request's counts per status as bars, refreshed every second, with the
// vehicles of a status on a click. It returns {box, list, refresh, start}.
export function progressPanel(requestID, ok) {
  const box = el("div", { id: "campaign-progress" });
  const list = el("div", { id: "campaign-vehicles" });
  let shown = null;

  async function showList(st) {
    shown = st;
    try {
      const { data: vs, total } = await api("GET", "/update_requests/" + encodeURIComponent(requestID) + "/vehicles?status=" + st + "&limit=200", undefined, { withTotal: true });
      if (!ok() || shown !== st) return;
      clear(list, el("h2", {}, "Vehicles " + statusLabel(st) + " (" + (total || vs.length) + ")"),
        table(["VIN", "Status", "Updated", "Result"], vs.map((v) => [vinLink(v.vin), badge(v.status), when(v.updatedAt),
          v.resultCode !== undefined && v.resultCode !== null ? v.resultCode + " " + (v.resultText || "") : (v.resultText || "")]), "None."),
        total > vs.length ? el("p", { class: "muted" }, "The first " + vs.length + " of " + total + ".") : null);
    } catch (e) { showError(list, e); }
  }

  async function refresh() {
    try {
      const r = await api("GET", "/update_requests/" + encodeURIComponent(requestID));
      if (!ok()) return null;
      const counts = r.counts || {};
      const total = STATUSES.reduce((n, k) => n + (counts[k] || 0), 0);
      const pct = (k) => (total ? (100 * (counts[k] || 0)) / total : 0) + "%";
      clear(box,
        el("p", {}, "Update request ", el("a", { href: "#/update-requests/" + encodeURIComponent(r.id) }, el("code", {}, r.id)), " · ",
          el("span", { id: "campaign-total" }, String(total)), " vehicles · ", String(r.skipped || 0), " skipped (already queued) · ", r.state || ""),
        stackBar(counts),
        el("table", { class: "grid counts-table" }, el("tbody", {}, STATUSES.map((k) => {
          const fill = el("div", { class: "fill " + k });
          fill.style.width = pct(k);
          return el("tr", {},
            el("td", {}, el("a", { href: "#", "data-status": k, onclick: (ev) => { ev.preventDefault(); showList(k); } }, statusLabel(k))),
            el("td", { class: "num", id: "count-" + k }, String(counts[k] || 0)),
            el("td", { class: "barcell" }, el("div", { class: "meter" }, fill)));
        }))));
      if (shown) showList(shown);
      return r;
    } catch (e) { showError(box, e); return null; }
  }

  function start() {
    poll(refresh, 1000);
  }

  async function cancel() {
    if (!confirm("Cancel every pending update of this request?")) return;
    const r = await act(() => api("PUT", "/update_requests/" + encodeURIComponent(requestID) + "/cancel"));
    if (r) toast(r.canceled + " pending update" + (r.canceled === 1 ? "" : "s") + " canceled", "ok");
    refresh();
  }

  return { box, list, refresh, start, cancel };
}

async function updateRequestDetail(id) {
  const view = $("#view");
  const ok = current();
  const r = await api("GET", "/update_requests/" + encodeURIComponent(id));
  if (!ok()) return;
  const panel = progressPanel(id, ok);
  append(view,
    el("p", {}, el("a", { href: "#/campaigns" }, "‹ Campaigns and update requests")),
    el("h1", {}, "Update request ", r.packageId ? pkgText(r.packageId) : r.kind),
    el("p", { class: "muted" }, "Priority ", r.priority, " · created ", when(r.createdAt),
      r.periodOfValidity ? " · valid " + r.periodOfValidity : "", r.campaignId ? " · campaign " : "",
      r.campaignId ? el("a", { href: "#/campaigns/" + encodeURIComponent(r.campaignId) }, r.campaignId) : null,
      r.description ? " · " + r.description : ""),
    el("div", { class: "bar" }, el("button", { id: "campaign-cancel", class: "danger", needs: "operator", onclick: () => panel.cancel() }, "Cancel pending updates")),
    el("section", { class: "card" }, el("h2", {}, "Progress"), panel.box),
    panel.list);
  await panel.refresh();
  panel.start();
}

export const routes = [
  [/^#\/update-requests\/([^/]+)$/, updateRequestDetail],
];
