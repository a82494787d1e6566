// Staged rollouts: the campaign editor's groups and thresholds, the preview's group sizes and
// problems, and a campaign's groups with their progress, the pause reason and the pause, resume,
// release and abort buttons (API.md "Rollouts: staged campaigns").
import { el, append, clear, table, badge, stackBar, vinLink, toast } from "./ui.js";
import { api, act } from "./api.js";

// groupEditor edits the groups (in release order) and the thresholds of a new campaign; fields()
// returns what goes into POST /campaigns.
export function groupEditor() {
  const rows = el("tbody", { id: "group-rows" });
  function addRow(name, percent, filter) {
    const tr = el("tr", { class: "group-row" },
      el("td", {}, el("input", { class: "group-name", placeholder: "name", size: 10, value: name || "" })),
      el("td", {}, el("input", { class: "group-percent", type: "number", min: 1, max: 100, size: 4, placeholder: "all", value: percent || "" }), " %"),
      el("td", {}, el("input", { class: "group-filter", placeholder: "filter expression (optional)", size: 36, value: filter || "" })),
      el("td", {}, el("button", { type: "button", class: "small", onclick: () => tr.remove() }, "Remove")));
    rows.append(tr);
  }
  const success = el("input", { id: "campaign-success", type: "number", min: 1, max: 100, value: 90, size: 4 });
  const error = el("input", { id: "campaign-error", type: "number", min: 0, max: 100, size: 4, placeholder: "never" });
  const continuous = el("input", { id: "campaign-continuous", type: "checkbox" });
  const retries = el("input", { id: "campaign-retries", type: "number", min: 0, max: 10, value: 0, size: 3 });
  const retryDelay = el("input", { id: "campaign-retry-delay", type: "number", min: 0, value: 300, size: 5 });
  const node = el("div", { class: "group-editor" },
    el("h3", {}, "Groups, released in order"),
    el("p", { class: "muted" }, "A percent takes that share of the whole target (the same vehicles in every preview); a filter the vehicles matching it; " +
      "the vehicles no group takes form a last group \"rest\". No group: one group with every vehicle."),
    el("table", { class: "grid" }, el("thead", {}, el("tr", {}, el("th", {}, "Group"), el("th", {}, "Percent"), el("th", {}, "Filter"), el("th", {}))), rows),
    el("div", { class: "bar" },
      el("button", { type: "button", id: "group-add", onclick: () => addRow() }, "Add group"),
      el("button", { type: "button", id: "group-staged", onclick: () => { rows.replaceChildren(); addRow("canary", 1); addRow("early", 10); } }, "Canary 1%, 10%, rest")),
    el("div", { class: "bar" },
      el("label", {}, "Next group at ", success, " % finished"),
      el("label", {}, "Pause past ", error, " % failed"),
      el("label", {}, continuous, " Continuous (vehicles that match later join the last group)"),
      el("label", {}, "Retries ", retries, " after ", retryDelay, " s")));
  function fields() {
    const groups = [...rows.querySelectorAll(".group-row")].map((tr) => {
      const g = { name: tr.querySelector(".group-name").value.trim() };
      const p = tr.querySelector(".group-percent").value;
      const f = tr.querySelector(".group-filter").value.trim();
      if (p !== "") g.percent = Number(p);
      if (f !== "") g.filter = f;
      return g;
    });
    const out = { successThreshold: Number(success.value), continuous: continuous.checked };
    if (groups.length) out.groups = groups;
    if (error.value !== "") out.errorThreshold = Number(error.value);
    if (Number(retries.value) > 0) out.retry = { attempts: Number(retries.value), delaySeconds: Number(retryDelay.value) };
    return out;
  }
  return { node, fields };
}

// renderPreview shows the groups a launch would make and the problems it would meet.
export function renderPreview(pv) {
  return [
    el("h3", {}, "Groups"),
    table(["Group", "Vehicles"], (pv.groups || []).map((g) => [g.name, el("span", { class: "group-size", "data-group": g.name }, String(g.vehicles))]), "No groups."),
    el("h3", {}, "Problems"),
    (pv.problems || []).length
      ? table(["Problem", "Vehicles", "Details", "For example"], pv.problems.map((p) => [
        el("span", { class: "badge failed", "data-problem": p.code }, p.code), String(p.vehicles), p.description,
        el("span", {}, ...(p.sample || []).slice(0, 3).flatMap((v, i) => (i ? [" ", vinLink(v)] : [vinLink(v)])))]), "")
      : el("p", { id: "preview-no-problems", class: "muted" }, "None: every vehicle can be delivered to."),
  ];
}

// rolloutPanel shows a campaign's groups with their progress and the campaign's controls, refreshed
// every second. onChange(c) is called with the campaign after each refresh.
export function rolloutPanel(id, ok, onChange) {
  const box = el("section", { class: "card", id: "campaign-rollout" });
  let timer = null;
  const path = "/campaigns/" + encodeURIComponent(id);
  async function action(name, label) {
    const r = await act(() => api("POST", path + "/" + name), label);
    if (r) await refresh();
  }
  async function refresh() {
    let c;
    try { c = await api("GET", path); } catch (e) { return null; }
    if (!ok()) { stop(); return null; }
    const counts = c.counts || {};
    const total = ["pending", "inFlight", "finished", "failed", "canceled"].reduce((n, k) => n + (counts[k] || 0), 0);
    const btn = (name, label, enabled, cls) => el("button", { id: "campaign-" + name, class: cls || "", needs: "operator", disabled: !enabled, onclick: () => action(name, label) },
      name[0].toUpperCase() + name.slice(1));
    clear(box,
      el("h2", {}, "Rollout ", el("span", { id: "campaign-rollout-status" }, badge(c.status))),
      c.pauseReason ? el("p", { id: "campaign-pause-reason", class: "error" }, "Paused: ", c.pauseReason) : null,
      el("p", { class: "muted" }, "Next group at ", String(c.successThreshold), "% finished · pauses itself past ",
        c.errorThreshold === null || c.errorThreshold === undefined ? "— (never)" : c.errorThreshold + "% failed",
        c.continuous ? " · continuous" : "", c.retry ? " · " + c.retry.attempts + " retries after " + c.retry.delaySeconds + " s" : "",
        " · ", String(counts.finished || 0), " of ", String(total), " finished"),
      el("div", { class: "bar" },
        btn("pause", "Campaign paused", c.status === "running"),
        btn("resume", "Campaign resumed", c.status === "paused", "primary"),
        btn("release", "Next group released", c.status === "running" && (c.groups || []).some((g) => g.status === "scheduled")),
        btn("abort", "Campaign aborted", c.status === "running" || c.status === "paused", "danger")),
      el("table", { class: "grid", id: "campaign-groups" },
        el("thead", {}, el("tr", {}, ["Group", "Status", "Vehicles", "Progress", "Finished", "Failed", "Pending", "In flight"].map((h) => el("th", {}, h)))),
        el("tbody", {}, (c.groups || []).map((g) => {
          const gc = g.counts || {};
          const n = ["pending", "inFlight", "finished", "failed", "canceled"].reduce((s, k) => s + (gc[k] || 0), 0);
          return el("tr", { class: "group", "data-group": g.name, "data-status": g.status },
            el("td", {}, g.name, g.percent ? " (" + g.percent + "%)" : "", g.filter ? el("code", { class: "muted" }, " " + g.filter) : null),
            el("td", {}, badge(g.status)),
            el("td", {}, String(g.vehicles)),
            el("td", { class: "group-bar" }, stackBar(gc), n ? " " + Math.round((100 * (gc.finished || 0)) / n) + "%" : ""),
            el("td", {}, String(gc.finished || 0)), el("td", {}, String(gc.failed || 0)),
            el("td", {}, String(gc.pending || 0)), el("td", {}, String(gc.inFlight || 0)));
        }))));
    if (onChange) onChange(c);
    return c;
  }
  function start() { stop(); timer = setInterval(refresh, 1000); }
  function stop() { if (timer) clearInterval(timer); timer = null; }
  return { box, refresh, start, stop };
}

export function noteLaunch(r) {
  if (r && r.groups) toast("Launched: " + r.groups.map((g) => g.name + " " + g.vehicles).join(", "));
}

export { append };
