// Vehicles: search the fleet (a filter expression, with the filter editor's completion and lint; VIN
// regex, package, component, attribute) and one vehicle's page.
import { el, append, clear, $, table, pkgText, pkgPath, pkgLink, vinLink, when, ago, toast, badge, statusLabel } from "./ui.js";
import { api, act, showError } from "./api.js";
import { current, reload } from "./nav.js";
import { createFilterEditor } from "./editor.js";

async function vehicles() {
  const view = $("#view");
  const params = new URLSearchParams(location.search);
  const mode = el("select", { id: "vehicle-mode" },
    el("option", { value: "regex" }, "VIN regex"),
    el("option", { value: "package" }, "Package"),
    el("option", { value: "component" }, "Component"),
    el("option", { value: "attribute" }, "Attribute"),
    el("option", { value: "expression" }, "Filter expression"));
  const q1 = el("input", { id: "vehicle-q1", placeholder: "^1HG", size: 24 });
  const q2 = el("input", { id: "vehicle-q2", placeholder: "version", size: 12, hidden: true });
  const result = el("div", { id: "vehicle-results" });
  // The filter expression is written in the filter editor: completion from the fleet, errors underlined.
  const exprHost = el("div", { class: "filter-editor search", hidden: true });
  const exprEd = createFilterEditor(exprHost, {
    id: "vehicle-expr",
    placeholder: 'seen_within "7d" AND has_package "nav" < "2.0.0"',
    complete: (text, offset) => api("POST", "/filters/complete", { expression: text, offset }),
    lint: (text) => (text.trim() ? api("POST", "/filters/lint", { expression: text }) : Promise.resolve({ errors: [], warnings: [] })),
  });
  const page = { offset: 0, limit: 50 };

  const placeholders = { regex: ["VIN regex, e.g. ^1HG", ""], package: ["package name", "version"], component: ["part number", ""], attribute: ["attribute", "value (empty: any)"] };
  mode.addEventListener("change", () => {
    const [a, b] = placeholders[mode.value];
    q1.placeholder = a;
    q2.placeholder = b;
    q2.hidden = !b;
    q1.hidden = mode.value === "expression";
    exprHost.hidden = mode.value !== "expression";
  });
  placeholders.expression = ["", ""];

  async function search() {
    const ok = current();
    const qs = new URLSearchParams({ expand: "true", limit: page.limit, offset: page.offset });
    let attrKey = null, attrVal = "";
    if (mode.value === "expression") {
      if (exprEd.value.trim()) qs.set("expression", exprEd.value);
    } else if (q1.value) {
      if (mode.value === "regex") qs.set("regex", q1.value);
      if (mode.value === "package") { qs.set("packageName", q1.value); qs.set("packageVersion", q2.value); }
      if (mode.value === "component") qs.set("component", q1.value);
      if (mode.value === "attribute") { attrKey = q1.value; attrVal = q2.value; }
    }
    if (mode.value === "package" && q1.value && !q2.value) {
      clear(result, el("p", { class: "error" }, "Give the package's version too."));
      return;
    }
    try {
      let data, total, note = null;
      if (attrKey !== null) {
        // The API has no attribute search: scan the fleet in pages of 10,000 (attributes come without
        // expand) and keep the matches.
        const found = [];
        let scanned = 0, fleet = 0;
        do {
          const r = await api("GET", "/vehicles?limit=10000&offset=" + scanned, undefined, { withTotal: true });
          if (!ok()) return;
          fleet = r.total;
          scanned += r.data.length;
          for (const v of r.data) {
            if (v.attributes && attrKey in v.attributes && (attrVal === "" || String(v.attributes[attrKey]) === attrVal)) found.push(v);
          }
          if (fleet > 10000) clear(result, el("p", { class: "muted" }, "Scanned " + scanned + " of " + fleet + " vehicles…"));
          if (!r.data.length) break;
        } while (scanned < fleet);
        total = found.length;
        data = found.slice(page.offset, page.offset + page.limit);
        note = "attribute " + attrKey + (attrVal ? " = " + attrVal : " set") + ", " + fleet + " vehicles scanned";
      } else {
        ({ data, total } = await api("GET", "/vehicles?" + qs, undefined, { withTotal: true }));
        if (!ok()) return;
      }
      // The page's pending and in-flight updates, in one call.
      const active = data.length
        ? await api("GET", "/stats/active_updates?" + new URLSearchParams(data.map((v) => ["vin", v.vin]))).catch(() => ({}))
        : {};
      if (!ok()) return;
      const wanted = mode.value === "package" && q1.value ? q1.value.toLowerCase() : null;
      const rows = data.map((v) => {
        const pk = v.packages || [];
        const shown = wanted ? pk.filter((x) => x.name.toLowerCase() === wanted) : [];
        return [vinLink(v.vin), ago(v.lastSeen), pendingText(active[v.vin]),
          v.packages ? el("span", { title: pk.map(pkgText).join("\n") }, shown.length ? shown.map(pkgText).join(", ") : pk.length + " installed") : "—",
          v.components ? v.components.join(", ") : "—",
          Object.entries(v.attributes || {}).map(([k, x]) => k + "=" + x).join(", "),
          v.dataPlan || "—"];
      });
      const pager = el("div", { class: "pager" },
        el("span", { id: "vehicle-total" }, total + " vehicle" + (total === 1 ? "" : "s")),
        el("button", { disabled: page.offset === 0, onclick: () => { page.offset = Math.max(0, page.offset - page.limit); search(); } }, "‹ Previous"),
        el("span", {}, total ? (page.offset + 1) + "–" + Math.min(total, page.offset + data.length) : ""),
        el("button", { disabled: page.offset + page.limit >= total, onclick: () => { page.offset += page.limit; search(); } }, "Next ›"),
        note ? el("span", { class: "muted" }, note) : null);
      clear(result, pager, table(["VIN", "Last seen", "Pending updates", "Packages", "Components", "Attributes", "Data plan"], rows, "No vehicle matches."));
    } catch (e) { showError(result, e); }
  }

  const newVin = el("input", { id: "new-vin", placeholder: "17-character VIN", size: 20, maxlength: 17 });
  append(view,
    el("h1", {}, "Vehicles"),
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); page.offset = 0; search(); } },
      mode, q1, q2, exprHost, el("button", { type: "submit", class: "primary", id: "vehicle-search" }, "Search")),
    el("form", { class: "bar", needs: "operator", onsubmit: async (ev) => {
      ev.preventDefault();
      const vin = newVin.value.trim().toUpperCase();
      if (await act(() => api("POST", "/vehicles", { vin }), "Vehicle " + vin + " added")) { newVin.value = ""; search(); }
    } }, el("label", {}, "Add vehicle ", newVin), el("button", { type: "submit" }, "Add")),
    result);
  if (params.get("regex")) q1.value = params.get("regex");
  search();
}

async function vehicleDetail(vin) {
  const view = $("#view");
  const ok = current();
  const p = "/vehicles/" + encodeURIComponent(vin);
  const [v, queue, history, allPkgs, allComps, plans] = await Promise.all([
    api("GET", p), api("GET", p + "/queue").catch(() => []), api("GET", p + "/history").catch(() => []),
    api("GET", "/packages").catch(() => []), api("GET", "/components").catch(() => []), api("GET", "/data_plans").catch(() => [])]);
  if (!ok()) return;
  const again = () => { if (ok()) reload(); };

  const pkgSel = el("select", { id: "install-package" }, allPkgs.map((x) => el("option", { value: JSON.stringify(x.id) }, pkgText(x.id))));
  const compSel = el("select", { id: "install-component" }, allComps.map((c) => el("option", { value: c.partNumber }, c.partNumber)));
  const planSel = el("select", { id: "vehicle-plan" }, el("option", { value: "" }, "—"), plans.map((x) => el("option", { value: x.id, selected: x.id === v.dataPlan }, x.id)));
  const attrs = el("textarea", { id: "vehicle-attributes", rows: Object.keys(v.attributes || {}).length + 2, cols: 40 }, JSON.stringify(v.attributes || {}, null, 1));

  append(view,
    el("p", {}, el("a", { href: "#/vehicles" }, "‹ Vehicles")),
    el("h1", {}, "Vehicle ", el("span", { class: "vin" }, v.vin)),
    el("p", { class: "muted", id: "vehicle-last-seen" }, "Last seen ", v.lastSeen ? [when(v.lastSeen), " (", ago(v.lastSeen), ")"] : "never"),
    el("div", { class: "cols2" },
      el("div", { class: "stackcol" },
        el("section", { class: "card" },
        el("h2", {}, "Update history"),
        table(["Update", "Package", "Status", "Result", "Updated"], history.map((u) => [
          el("code", { title: u.updateId }, u.updateId.slice(0, 8)), pkgText(u.packageId), badge(u.status),
          u.resultCode !== undefined && u.resultCode !== null ? u.resultCode + " " + (u.resultText || "") : (u.resultText || ""), when(u.updatedAt)]), "No updates yet.")),
      el("section", { class: "card" },
        el("h2", {}, "Queue"),
        table(["Update", "Package", "Installs", "Status", "Priority", "Created"], queue.map((u) => [
          el("code", { title: u.updateId }, u.updateId.slice(0, 8)), pkgText(u.packageId), (u.install || []).map(pkgText).join(" → "), badge(u.status), u.priority, when(u.createdAt)]), "Nothing queued."))),
      el("section", { class: "card" },
        el("h2", {}, "Installed packages (" + (v.packages || []).length + ")"),
        el("div", { class: "scroll" }, table(["Package", ""], (v.packages || []).map((x) => [pkgLink(x),
          el("button", { class: "small", needs: "operator", onclick: async () => { if (await act(() => api("DELETE", p + "/package/" + pkgPath(x)), "Removed " + pkgText(x))) again(); } }, "Remove")]), "No packages installed.")),
        el("form", { class: "bar", needs: "operator", onsubmit: async (ev) => {
          ev.preventDefault();
          if (!pkgSel.value) return;
          const id = JSON.parse(pkgSel.value);
          if (await act(() => api("PUT", p + "/package/" + pkgPath(id)), "Marked " + pkgText(id) + " installed")) again();
        } }, pkgSel, el("button", { type: "submit" }, "Mark installed")))),
    el("div", { class: "cols" },
      el("section", { class: "card" },
        el("h2", {}, "Components"),
        table(["Part number", ""], (v.components || []).map((c) => [c,
          el("button", { class: "small", needs: "operator", onclick: async () => { if (await act(() => api("DELETE", p + "/component/" + encodeURIComponent(c)), "Removed " + c)) again(); } }, "Remove")]), "No components installed."),
        el("form", { class: "bar", needs: "operator", onsubmit: async (ev) => {
          ev.preventDefault();
          if (compSel.value && await act(() => api("PUT", p + "/component/" + encodeURIComponent(compSel.value)), "Installed " + compSel.value)) again();
        } }, compSel, el("button", { type: "submit" }, "Install component"))),
      el("section", { class: "card" },
        el("h2", {}, "Attributes"),
        attrs,
        el("div", { class: "bar", needs: "operator" }, el("button", { id: "vehicle-attributes-save", onclick: async () => {
          let a;
          try { a = JSON.parse(attrs.value); } catch (e) { toast("Attributes must be a JSON object: " + e.message, "err"); return; }
          if (await act(() => api("PUT", p + "/attributes", a), "Attributes saved")) again();
        } }, "Save attributes"))),
      el("section", { class: "card" },
        el("h2", {}, "Data plan"),
        el("div", { class: "bar", needs: "operator" }, planSel, el("button", { onclick: async () => {
          if (planSel.value && await act(() => api("PUT", p + "/data_plan", { id: planSel.value }), "Data plan set")) again();
        } }, "Set plan")),
        el("div", { class: "bar", needs: "operator" }, el("button", { onclick: () => act(() => api("POST", p + "/get_all_packages"), "Asked the vehicle for its installed packages") }, "Ask for installed packages"),
          el("button", { class: "danger", onclick: async () => {
            if (confirm("Delete vehicle " + vin + "?") && await act(() => api("DELETE", p), "Deleted " + vin)) location.hash = "#/vehicles";
          } }, "Delete vehicle")))));
}

// pendingText is a vehicle's waiting updates as a list cell: "2 pending, 1 in flight", or "none".
function pendingText(c) {
  if (!c || (!c.pending && !c.inFlight)) return el("span", { class: "muted" }, "none");
  return el("span", { class: "pending-updates" }, [c.pending ? c.pending + " pending" : null, c.inFlight ? c.inFlight + " " + statusLabel("inFlight") : null].filter(Boolean).join(", "));
}

export const routes = [
  [/^#\/vehicles\/([^/]+)$/, vehicleDetail],
  [/^#\/vehicles$/, vehicles],
];
