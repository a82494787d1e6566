// Campaigns: the list (with the update requests), creating one, and a campaign's page (preview,
// launch, progress, cancel).
import { el, append, clear, $, table, pkgText, pkgLink, when, toast, badge } from "./ui.js";
import { api, act, showError } from "./api.js";
import { current, reload } from "./nav.js";
import { renderDryRun } from "./dryrun.js";
import { progressPanel } from "./requests.js";
import { groupEditor, renderPreview, rolloutPanel, noteLaunch } from "./rollout.js";

async function campaigns() {
  const view = $("#view");
  const ok = current();
  const [cs, pkgs, reqs] = await Promise.all([api("GET", "/campaigns"), api("GET", "/packages"), api("GET", "/update_requests").catch(() => [])]);
  if (!ok()) return;
  const name = el("input", { id: "campaign-name", placeholder: "name", size: 20, required: true });
  const pkgSel = el("select", { id: "campaign-package" }, pkgs.map((x) => el("option", { value: JSON.stringify(x.id) }, pkgText(x.id))));
  const prio = el("input", { id: "campaign-priority", type: "number", min: 1, max: 1000, value: 10, size: 4 });
  const startT = el("input", { id: "campaign-start", type: "datetime-local" });
  const endT = el("input", { id: "campaign-end", type: "datetime-local" });
  const iso = (v) => (v ? new Date(v).toISOString() : undefined);
  const groups = groupEditor();
  append(view, el("h1", {}, "Campaigns"),
    el("form", { class: "card", needs: "operator", onsubmit: async (ev) => {
      ev.preventDefault();
      if (!pkgSel.value) { toast("Create a package first", "err"); return; }
      const body = Object.assign({ name: name.value.trim(), packageId: JSON.parse(pkgSel.value), priority: Number(prio.value), startTime: iso(startT.value), endTime: iso(endT.value) }, groups.fields());
      const c = await act(() => api("POST", "/campaigns", body), "Campaign created");
      if (c && c.id) location.hash = "#/campaigns/" + encodeURIComponent(c.id);
    } },
    el("h2", {}, "New campaign"),
    el("div", { class: "bar" }, name, pkgSel, el("label", {}, "Priority ", prio), el("label", {}, "Start ", startT), el("label", {}, "End ", endT),
      el("button", { type: "submit", class: "primary", id: "campaign-create" }, "Create")),
    groups.node),
    el("section", { class: "card" }, el("h2", {}, "Campaigns"),
      table(["Name", "Package", "Priority", "Window", "Status", "Created"], cs.map((c) => [
        el("a", { href: "#/campaigns/" + encodeURIComponent(c.id) }, c.name || c.id), pkgText(c.packageId), c.priority,
        (c.startTime ? when(c.startTime) : "now") + " – " + (c.endTime ? when(c.endTime) : "open"), badge(c.status), when(c.createdAt)]), "No campaigns yet.")),
    el("section", { class: "card" }, el("h2", {}, "Update requests"),
      table(["Request", "Package", "Priority", "Vehicles", "State", "Created", ""], reqs.map((r) => [
        el("a", { href: "#/update-requests/" + encodeURIComponent(r.id) }, el("code", {}, r.id.slice(0, 8))), r.packageId ? pkgText(r.packageId) : r.kind, r.priority, r.vehicles, r.state, when(r.createdAt),
        el("button", { class: "small", needs: "operator", onclick: async () => { if (await act(() => api("PUT", "/update_requests/" + encodeURIComponent(r.id) + "/cancel"), "Pending updates canceled")) reload(); } }, "Cancel pending")]), "No update requests.")));
}

async function campaignDetail(id) {
  const view = $("#view");
  const ok = current();
  let c = await api("GET", "/campaigns/" + encodeURIComponent(id));
  if (!ok()) return;
  const preview = el("div", { id: "campaign-preview-result" });
  const progressCard = el("section", { class: "card" }, el("h2", {}, "Progress"), el("p", { class: "muted" }, "Not launched yet."));
  const listSlot = el("div", {});
  const statusBadge = el("span", { id: "campaign-status" });
  const launchBtn = el("button", { id: "campaign-launch", class: "primary", needs: "operator" }, "Launch");
  const cancelBtn = el("button", { id: "campaign-cancel", class: "danger", needs: "operator" }, "Cancel pending updates");
  let panel = null;
  const rollout = rolloutPanel(id, ok, (cur) => { c = cur; paint(); });

  async function attach() {
    panel = progressPanel(c.updateRequest, ok);
    clear(progressCard, el("h2", {}, "Progress"), panel.box);
    clear(listSlot, panel.list);
    await panel.refresh();
    panel.start();
  }
  function paint() {
    clear(statusBadge, badge(c.status));
    launchBtn.disabled = !!c.updateRequest;
    cancelBtn.disabled = !c.updateRequest;
  }

  launchBtn.addEventListener("click", async () => {
    const r = await act(() => api("POST", "/campaigns/" + encodeURIComponent(id) + "/launch"), "Campaign launched");
    if (!r) return;
    noteLaunch(r);
    clear(preview); // what the preview said is queued now
    c = await api("GET", "/campaigns/" + encodeURIComponent(id));
    if (!c.updateRequest && r.updateRequest) c.updateRequest = r.updateRequest;
    paint();
    await rollout.refresh();
    await attach();
  });
  cancelBtn.addEventListener("click", () => { if (panel) panel.cancel(); });

  append(view,
    el("p", {}, el("a", { href: "#/campaigns" }, "‹ Campaigns")),
    el("h1", {}, "Campaign ", c.name || c.id, " ", statusBadge),
    el("p", { class: "muted" }, "Package ", pkgLink(c.packageId), " · priority ", c.priority, " · window ",
      (c.startTime ? when(c.startTime) : "now") + " – " + (c.endTime ? when(c.endTime) : "open")),
    el("div", { class: "bar" },
      el("button", { id: "campaign-preview", onclick: async () => {
        try {
          const pv = await api("GET", "/campaigns/" + encodeURIComponent(id) + "/preview");
          clear(preview, ...renderPreview(pv), ...renderDryRun(pv));
        } catch (e) { showError(preview, e); }
      } }, "Preview"),
      launchBtn, cancelBtn),
    rollout.box, preview, progressCard, listSlot);
  paint();
  await rollout.refresh();
  rollout.start();
  if (c.updateRequest) await attach();
}

export const routes = [
  [/^#\/campaigns\/([^/]+)$/, campaignDetail],
  [/^#\/campaigns$/, campaigns],
];
