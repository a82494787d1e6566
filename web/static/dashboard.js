// Dashboard: the fleet at a glance. Fleet size and the vehicles seen in the last 24 hours and 30 days
// (GET /stats/fleet), the running campaigns with their progress (GET /campaigns and each launched
// campaign's update request), and the updates that failed in the last day by result code
// (GET /stats/failures). Refreshed every 10 seconds while shown.
import { el, append, clear, $, pkgLink, when, barChart, stackBar, statusLabel } from "./ui.js";
import { api, showError } from "./api.js";
import { current, poll } from "./nav.js";

function pct(n, of) { return of ? Math.round((100 * n) / of) + "%" : "—"; }

function tile(id, label, value, note) {
  return el("section", { class: "card tile" },
    el("div", { class: "tile-label" }, label),
    el("div", { class: "tile-value", id }, String(value)),
    note ? el("div", { class: "muted" }, note) : null);
}

async function dashboard() {
  const view = $("#view");
  const ok = current();
  const tiles = el("div", { class: "tiles", id: "dash-tiles" });
  const seen = el("section", { class: "card", id: "dash-seen" });
  const camps = el("section", { class: "card", id: "dash-campaigns" });
  const fails = el("section", { class: "card", id: "dash-failures" });
  const stamp = el("p", { class: "muted", id: "dash-updated" });
  append(view, el("h1", {}, "Dashboard"), tiles, el("div", { class: "cols" }, seen, fails), camps, stamp);

  async function load() {
    try {
      const [fleet, failures, campaigns] = await Promise.all([
        api("GET", "/stats/fleet"), api("GET", "/stats/failures?hours=24"), api("GET", "/campaigns")]);
      const launched = campaigns.filter((c) => c.updateRequest);
      const reqs = await Promise.all(launched.map((c) => api("GET", "/update_requests/" + encodeURIComponent(c.updateRequest)).catch(() => null)));
      if (!ok()) return;
      const running = launched.map((c, i) => ({ c, r: reqs[i] }))
        .filter(({ r }) => r && r.counts && (r.counts.pending || 0) + (r.counts.inFlight || 0) > 0);

      const n = fleet.vehicles;
      clear(tiles,
        tile("dash-fleet", "Vehicles in the fleet", n),
        tile("dash-seen-day", "Seen in the last 24 hours", fleet.seenLastDay, pct(fleet.seenLastDay, n) + " of the fleet"),
        tile("dash-seen-month", "Seen in the last 30 days", fleet.seenLast30Days, pct(fleet.seenLast30Days, n) + " of the fleet"),
        tile("dash-running", "Campaigns running", running.length, running.length ? null : "none"),
        tile("dash-failed", "Failed updates, last 24 hours", failures.total, failures.total ? null : "none"));

      clear(seen, el("h2", {}, "Vehicles seen"),
        barChart([
          { label: "last 24 hours", value: fleet.seenLastDay, text: fleet.seenLastDay + " (" + pct(fleet.seenLastDay, n) + ")", cls: "finished" },
          { label: "last 30 days", value: fleet.seenLast30Days, text: fleet.seenLast30Days + " (" + pct(fleet.seenLast30Days, n) + ")", cls: "inFlight" },
          { label: "not for 30 days", value: n - fleet.seenLast30Days, text: String(n - fleet.seenLast30Days) + " (" + pct(n - fleet.seenLast30Days, n) + ")", cls: "pending" },
        ], { max: n || 1, attrs: { id: "dash-seen-chart" } }),
        el("p", { class: "muted" }, "A vehicle is seen when it calls the server: polls, downloads, reports."));

      clear(fails, el("h2", {}, "Failures by result code, last 24 hours"),
        failures.failures.length
          ? barChart(failures.failures.map((f) => ({
            label: (f.code !== null && f.code !== undefined ? f.code + " " : "") + f.name, value: f.count, cls: "failed",
            attrs: { "data-code": f.code === null || f.code === undefined ? "" : String(f.code) } })), { attrs: { id: "dash-failure-chart" } })
          : el("p", { class: "muted empty" }, "No update failed in the last 24 hours."));

      clear(camps, el("h2", {}, "Running campaigns"),
        running.length
          ? el("table", { class: "grid", id: "dash-campaign-table" }, el("tbody", {}, running.map(({ c, r }) => {
            const k = r.counts;
            const total = k.pending + k.inFlight + k.finished + k.failed + k.canceled;
            return el("tr", { "data-campaign": c.id },
              el("td", {}, el("a", { href: "#/campaigns/" + encodeURIComponent(c.id) }, c.name || c.id), el("div", { class: "muted" }, pkgLink(c.packageId))),
              el("td", { class: "barcell" }, stackBar(k),
                el("div", { class: "muted" }, ["finished", "failed", "inFlight", "pending", "canceled"].filter((s) => k[s]).map((s) => k[s] + " " + statusLabel(s)).join(" · "))),
              el("td", { class: "num" }, pct(k.finished, total), el("div", { class: "muted" }, "of " + total)));
          })))
          : el("p", { class: "muted empty" }, "No campaign is running. ", el("a", { href: "#/campaigns" }, "Campaigns"), " lists every campaign."));
      clear(stamp, "Updated ", when(fleet.at), "; refreshed every 10 seconds.");
    } catch (e) {
      if (ok()) showError(tiles, e);
    }
  }
  await load();
  poll(load, 10000);
}

export const routes = [
  [/^#\/dashboard$/, dashboard],
];

