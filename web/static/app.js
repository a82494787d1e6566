"use strict";
// Admin UI of the SOTA server: a hash-routed single page over the REST API (/api/v1). No build step, no
// framework: el() builds DOM nodes (text is never parsed as HTML), api() calls the server with the
// session cookie and the session's CSRF token on state-changing calls.

const session = { csrf: null, username: null, authNone: false };
let pollTimer = null; // the one periodic refresh of the current screen (campaign progress)
let screenSeq = 0; // bumps on every navigation, so late answers of a left screen are dropped

// ---------- DOM helpers ----------

function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (k === "class") n.className = v;
    else if (k === "value") n.value = v;
    else if (v === true) n.setAttribute(k, "");
    else n.setAttribute(k, String(v));
  }
  append(n, ...children);
  return n;
}

function append(n, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

function clear(n, ...children) {
  n.replaceChildren();
  return append(n, ...children);
}

function $(sel) { return document.querySelector(sel); }

function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "muted empty" }, empty || "Nothing here.");
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

function pkgText(p) { return p ? p.name + " " + p.version : ""; }
function pkgPath(p) { return encodeURIComponent(p.name) + "/" + encodeURIComponent(p.version); }
function pkgLink(p) { return el("a", { href: "#/packages/" + pkgPath(p) }, pkgText(p)); }
function vinLink(v) { return el("a", { href: "#/vehicles/" + encodeURIComponent(v), class: "vin" }, v); }
function when(t) { return t ? new Date(t).toLocaleString() : "—"; }
function bytes(n) {
  if (n === null || n === undefined) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function toast(msg, kind) {
  const t = $("#toast");
  clear(t, msg);
  t.className = "show " + (kind || "ok");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, 4000);
}

function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// ---------- API ----------

class APIError extends Error {
  constructor(status, body) {
    super((body && body.description) || ("HTTP " + status));
    this.status = status;
    this.body = body || {};
  }
}

function toLogin() {
  location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search + location.hash);
}

async function api(method, path, body, opts) {
  opts = opts || {};
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const resp = await fetch("/api/v1" + path, { method, headers, body: payload, credentials: "same-origin" });
  if (resp.status === 401 && !session.authNone) {
    toLogin();
    throw new APIError(401, { description: "Session ended: log in again" });
  }
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = text; }
  }
  if (!resp.ok) throw new APIError(resp.status, typeof data === "object" ? data : { description: String(data) });
  if (opts.withTotal) return { data, total: Number(resp.headers.get("X-Total-Count") || 0) };
  return data;
}

// act runs a state-changing call and reports its outcome; it returns the answer or undefined on error.
async function act(fn, okMsg) {
  try {
    const r = await fn();
    if (okMsg) toast(okMsg, "ok");
    return r === undefined ? true : r;
  } catch (e) {
    toast(e.message, "err");
    return undefined;
  }
}

function showError(container, e) {
  clear(container, el("p", { class: "error", role: "alert" }, e.message));
}

// ---------- router ----------

const routes = [
  [/^#\/vehicles\/([^/]+)$/, vehicleDetail],
  [/^#\/vehicles$/, vehicles],
  [/^#\/packages\/([^/]+)\/([^/]+)$/, packageDetail],
  [/^#\/packages$/, packages],
  [/^#\/components$/, components],
  [/^#\/filters\/new$/, () => filterEditor(null)],
  [/^#\/filters\/([^/]+)$/, (n) => filterEditor(n)],
  [/^#\/filters$/, filters],
  [/^#\/campaigns\/([^/]+)$/, campaignDetail],
  [/^#\/campaigns$/, campaigns],
  [/^#\/data-plans$/, dataPlans],
  [/^#\/update-requests\/([^/]+)$/, updateRequestDetail],
  [/^#\/settings$/, settings],
];

function route() {
  clearInterval(pollTimer);
  pollTimer = null;
  screenSeq++;
  const h = location.hash || "#/vehicles";
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", h.startsWith("#/" + a.dataset.nav));
  }
  const view = $("#view");
  for (const [re, fn] of routes) {
    const m = h.match(re);
    if (m) {
      clear(view);
      const args = m.slice(1).map(decodeURIComponent);
      Promise.resolve(fn(...args)).catch((e) => showError(view, e));
      return;
    }
  }
  location.hash = "#/vehicles";
}

// current returns a check that is false once the user has moved to another screen.
function current() {
  const seq = screenSeq;
  return () => seq === screenSeq;
}

async function start() {
  try {
    const s = await api("GET", "/session");
    session.csrf = s.csrfToken;
    session.username = s.username;
    session.authNone = s.authNone;
    clear($("#who"), s.username ? "Signed in as " + s.username : (s.authNone ? "authentication off" : ""));
  } catch (e) {
    return; // api() already sent the browser to the login page
  }
  window.addEventListener("hashchange", route);
  route();
}

// ---------- vehicles ----------

async function vehicles() {
  const view = $("#view");
  const params = new URLSearchParams(location.search);
  const mode = el("select", { id: "vehicle-mode" },
    el("option", { value: "regex" }, "VIN regex"),
    el("option", { value: "package" }, "Package"),
    el("option", { value: "component" }, "Component"),
    el("option", { value: "attribute" }, "Attribute"));
  const q1 = el("input", { id: "vehicle-q1", placeholder: "^1HG", size: 24 });
  const q2 = el("input", { id: "vehicle-q2", placeholder: "version", size: 12, hidden: true });
  const result = el("div", { id: "vehicle-results" });
  const page = { offset: 0, limit: 50 };

  const placeholders = { regex: ["VIN regex, e.g. ^1HG", ""], package: ["package name", "version"], component: ["part number", ""], attribute: ["attribute", "value (empty: any)"] };
  mode.addEventListener("change", () => {
    const [a, b] = placeholders[mode.value];
    q1.placeholder = a;
    q2.placeholder = b;
    q2.hidden = !b;
  });

  async function search() {
    const ok = current();
    const qs = new URLSearchParams({ expand: "true", limit: page.limit, offset: page.offset });
    let attrKey = null, attrVal = "";
    if (q1.value) {
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
      const wanted = mode.value === "package" && q1.value ? q1.value.toLowerCase() : null;
      const rows = data.map((v) => {
        const pk = v.packages || [];
        const shown = wanted ? pk.filter((x) => x.name.toLowerCase() === wanted) : [];
        return [vinLink(v.vin),
          v.packages ? el("span", { title: pk.map(pkgText).join("\n") }, shown.length ? shown.map(pkgText).join(", ") : pk.length + " installed") : "—",
          v.components ? v.components.join(", ") : "—",
          Object.entries(v.attributes || {}).map(([k, x]) => k + "=" + x).join(", "),
          v.dataPlan || "—", when(v.lastSeen)];
      });
      const pager = el("div", { class: "pager" },
        el("span", { id: "vehicle-total" }, total + " vehicle" + (total === 1 ? "" : "s")),
        el("button", { disabled: page.offset === 0, onclick: () => { page.offset = Math.max(0, page.offset - page.limit); search(); } }, "‹ Previous"),
        el("span", {}, total ? (page.offset + 1) + "–" + Math.min(total, page.offset + data.length) : ""),
        el("button", { disabled: page.offset + page.limit >= total, onclick: () => { page.offset += page.limit; search(); } }, "Next ›"),
        note ? el("span", { class: "muted" }, note) : null);
      clear(result, pager, table(["VIN", "Packages", "Components", "Attributes", "Data plan", "Last seen"], rows, "No vehicle matches."));
    } catch (e) { showError(result, e); }
  }

  const newVin = el("input", { id: "new-vin", placeholder: "17-character VIN", size: 20, maxlength: 17 });
  append(view,
    el("h1", {}, "Vehicles"),
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); page.offset = 0; search(); } },
      mode, q1, q2, el("button", { type: "submit", class: "primary", id: "vehicle-search" }, "Search")),
    el("form", { class: "bar", onsubmit: async (ev) => {
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
  const reload = () => { if (ok()) route(); };

  const pkgSel = el("select", { id: "install-package" }, allPkgs.map((x) => el("option", { value: JSON.stringify(x.id) }, pkgText(x.id))));
  const compSel = el("select", { id: "install-component" }, allComps.map((c) => el("option", { value: c.partNumber }, c.partNumber)));
  const planSel = el("select", { id: "vehicle-plan" }, el("option", { value: "" }, "—"), plans.map((x) => el("option", { value: x.id, selected: x.id === v.dataPlan }, x.id)));
  const attrs = el("textarea", { id: "vehicle-attributes", rows: Object.keys(v.attributes || {}).length + 2, cols: 40 }, JSON.stringify(v.attributes || {}, null, 1));

  append(view,
    el("p", {}, el("a", { href: "#/vehicles" }, "‹ Vehicles")),
    el("h1", {}, "Vehicle ", el("span", { class: "vin" }, v.vin)),
    el("p", { class: "muted" }, "Last seen ", when(v.lastSeen)),
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
          el("button", { class: "small", onclick: async () => { if (await act(() => api("DELETE", p + "/package/" + pkgPath(x)), "Removed " + pkgText(x))) reload(); } }, "Remove")]), "No packages installed.")),
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          if (!pkgSel.value) return;
          const id = JSON.parse(pkgSel.value);
          if (await act(() => api("PUT", p + "/package/" + pkgPath(id)), "Marked " + pkgText(id) + " installed")) reload();
        } }, pkgSel, el("button", { type: "submit" }, "Mark installed")))),
    el("div", { class: "cols" },
      el("section", { class: "card" },
        el("h2", {}, "Components"),
        table(["Part number", ""], (v.components || []).map((c) => [c,
          el("button", { class: "small", onclick: async () => { if (await act(() => api("DELETE", p + "/component/" + encodeURIComponent(c)), "Removed " + c)) reload(); } }, "Remove")]), "No components installed."),
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          if (compSel.value && await act(() => api("PUT", p + "/component/" + encodeURIComponent(compSel.value)), "Installed " + compSel.value)) reload();
        } }, compSel, el("button", { type: "submit" }, "Install component"))),
      el("section", { class: "card" },
        el("h2", {}, "Attributes"),
        attrs,
        el("div", { class: "bar" }, el("button", { onclick: async () => {
          let a;
          try { a = JSON.parse(attrs.value); } catch (e) { toast("Attributes must be a JSON object: " + e.message, "err"); return; }
          if (await act(() => api("PUT", p + "/attributes", a), "Attributes saved")) reload();
        } }, "Save attributes"))),
      el("section", { class: "card" },
        el("h2", {}, "Data plan"),
        el("div", { class: "bar" }, planSel, el("button", { onclick: async () => {
          if (planSel.value && await act(() => api("PUT", p + "/data_plan", { id: planSel.value }), "Data plan set")) reload();
        } }, "Set plan")),
        el("div", { class: "bar" }, el("button", { onclick: () => act(() => api("POST", p + "/get_all_packages"), "Asked the vehicle for its installed packages") }, "Ask for installed packages"),
          el("button", { class: "danger", onclick: async () => {
            if (confirm("Delete vehicle " + vin + "?") && await act(() => api("DELETE", p), "Deleted " + vin)) location.hash = "#/vehicles";
          } }, "Delete vehicle")))));
}

function badge(status) { return el("span", { class: "badge " + status }, status); }

// ---------- packages ----------

async function packages() {
  const view = $("#view");
  const q = el("input", { id: "package-regex", placeholder: "regex on name or version", size: 28 });
  const list = el("div", {});
  async function load() {
    const ok = current();
    try {
      const [pkgs, links] = await Promise.all([api("GET", "/packages" + (q.value ? "?regex=" + encodeURIComponent(q.value) : "")), api("GET", "/packages/filter")]);
      if (!ok()) return;
      const filtersOf = {};
      for (const l of links) (filtersOf[(l.packageName + " " + l.packageVersion).toLowerCase()] ||= []).push(l.filterName);
      clear(list, table(["Package", "Description", "Vendor", "Binary", "Filters"], pkgs.map((x) => [pkgLink(x.id), x.description, x.vendor,
        x.size ? bytes(x.size) : el("span", { class: "muted" }, "none"),
        (filtersOf[pkgText(x.id).toLowerCase()] || []).join(", ")]), "No packages."));
    } catch (e) { showError(list, e); }
  }

  const name = el("input", { id: "upload-name", placeholder: "name", required: true, size: 16 });
  const version = el("input", { id: "upload-version", placeholder: "1.0.0", required: true, size: 10 });
  const desc = el("input", { id: "upload-description", placeholder: "description", size: 24 });
  const vendor = el("input", { id: "upload-vendor", placeholder: "vendor", size: 12 });
  const file = el("input", { id: "upload-file", type: "file" });
  const bar = el("progress", { id: "upload-progress", max: 100, value: 0, hidden: true });
  const status = el("span", { id: "upload-status", class: "muted" });
  const form = el("form", { class: "card", onsubmit: (ev) => {
    ev.preventDefault();
    const id = { name: name.value.trim(), version: version.value.trim() };
    if (!file.files.length) {
      act(() => api("POST", "/packages", { id, description: desc.value, vendor: vendor.value }), "Package " + pkgText(id) + " created").then((r) => r && load());
      return;
    }
    upload(id, file.files[0], { description: desc.value, vendor: vendor.value }, bar, status).then((done) => { if (done) { form.reset(); load(); } });
  } },
  el("h2", {}, "New package"),
  el("div", { class: "bar" }, name, version, desc, vendor, file, el("button", { type: "submit", class: "primary", id: "upload-submit" }, "Create / upload")),
  el("div", { class: "bar" }, bar, status),
  el("p", { class: "muted" }, "Without a file only the metadata is stored; a binary can be uploaded later under the same name and version."));

  append(view, el("h1", {}, "Packages"), form,
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); load(); } }, q, el("button", { type: "submit" }, "Filter")),
    list);
  load();
}

// upload sends a binary with XHR so the upload progress can be shown (fetch has no upload progress).
function upload(id, f, meta, bar, status) {
  return new Promise((resolve) => {
    const qs = new URLSearchParams();
    if (meta.description) qs.set("description", meta.description);
    if (meta.vendor) qs.set("vendor", meta.vendor);
    const fd = new FormData();
    fd.append("file", f);
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", "/api/v1/packages/" + pkgPath(id) + (qs.toString() ? "?" + qs : ""));
    if (session.csrf) xhr.setRequestHeader("X-CSRF-Token", session.csrf);
    bar.hidden = false;
    bar.value = 0;
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        bar.value = Math.round((e.loaded / e.total) * 100);
        clear(status, bytes(e.loaded) + " of " + bytes(e.total));
      }
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        clear(status, "Uploaded " + pkgText(id) + " (" + bytes(f.size) + ")");
        toast("Uploaded " + pkgText(id), "ok");
        resolve(true);
      } else {
        if (xhr.status === 401) toLogin();
        let msg = "HTTP " + xhr.status;
        try { msg = JSON.parse(xhr.responseText).description || msg; } catch (e) { /* not JSON */ }
        clear(status, el("span", { class: "error" }, msg));
        resolve(false);
      }
    });
    xhr.addEventListener("error", () => { clear(status, el("span", { class: "error" }, "Upload failed: network error")); resolve(false); });
    xhr.send(fd);
  });
}

async function packageDetail(name, version) {
  const view = $("#view");
  const ok = current();
  const id = { name, version };
  const p = "/packages/" + pkgPath(id);
  const [pkg, deps, vins, pfilters, allFilters, allPkgs] = await Promise.all([
    api("GET", p), api("GET", p + "/dependencies"), api("GET", p + "/vehicles"), api("GET", p + "/filter"),
    api("GET", "/filters"), api("GET", "/packages")]);
  if (!ok()) return;
  const reload = () => { if (ok()) route(); };

  const fSel = el("select", { id: "associate-filter" }, allFilters.map((f) => el("option", { value: f.name }, f.name)));
  const depSel = el("select", { id: "dependency-package" }, allPkgs.filter((x) => pkgText(x.id) !== pkgText(id)).map((x) => el("option", { value: JSON.stringify(x.id) }, pkgText(x.id))));
  const rangeName = el("input", { placeholder: "package name", size: 14 });
  const range = el("input", { placeholder: ">=1.2.0 <2.0.0", size: 16 });
  const upFile = el("input", { type: "file", id: "reupload-file" });
  const bar = el("progress", { max: 100, value: 0, hidden: true });
  const status = el("span", { class: "muted" });
  const dry = el("div", { id: "package-dry-run" });
  const qPrio = el("input", { type: "number", min: 1, max: 1000, value: 10, size: 4, id: "queue-priority" });
  const qFrom = el("input", { type: "datetime-local", id: "queue-from" });
  const qUntil = el("input", { type: "datetime-local", id: "queue-until" });
  const qDesc = el("input", { placeholder: "description shown to the driver", size: 30, id: "queue-description" });
  const qConfirm = el("input", { type: "checkbox", id: "queue-confirm" });

  append(view,
    el("p", {}, el("a", { href: "#/packages" }, "‹ Packages")),
    el("h1", {}, pkgText(id)),
    el("p", { class: "muted" }, pkg.description || "", pkg.vendor ? " · " + pkg.vendor : ""),
    el("div", { class: "cols" },
      el("section", { class: "card" },
        el("h2", {}, "Binary"),
        pkg.size ? el("p", {}, bytes(pkg.size), " · sha256 ", el("code", {}, pkg.checkSum), " · ",
          el("a", { href: "/api/v1" + p + "/download" }, "download")) : el("p", { class: "muted" }, "No binary uploaded."),
        el("form", { class: "bar", onsubmit: (ev) => {
          ev.preventDefault();
          if (upFile.files.length) upload(id, upFile.files[0], {}, bar, status).then((d) => d && reload());
        } }, upFile, el("button", { type: "submit" }, "Upload binary")),
        el("div", { class: "bar" }, bar, status)),
      el("section", { class: "card" },
        el("h2", {}, "Filters"),
        el("p", { class: "muted" }, "A vehicle gets this package when it passes every filter below."),
        table(["Filter", "Expression", ""], pfilters.map((f) => [el("a", { href: "#/filters/" + encodeURIComponent(f.name) }, f.name), el("code", {}, f.expression),
          el("button", { class: "small", onclick: async () => { if (await act(() => api("DELETE", p + "/filter/" + encodeURIComponent(f.name)), "Unlinked " + f.name)) reload(); } }, "Unlink")]), "No filters: the package cannot be queued."),
        el("div", { class: "bar" }, fSel, el("button", { id: "associate-submit", onclick: async () => {
          if (fSel.value && await act(() => api("PUT", p + "/filter/" + encodeURIComponent(fSel.value)), "Linked " + fSel.value)) reload();
        } }, "Link filter"))),
      el("section", { class: "card" },
        el("h2", {}, "Dependencies"),
        table(["Depends on", ""], deps.map((d) => [pkgLink(d.dependency),
          el("button", { class: "small", onclick: async () => { if (await act(() => api("DELETE", p + "/dependencies/" + pkgPath(d.dependency)), "Removed")) reload(); } }, "Remove")]), "No dependencies."),
        el("div", { class: "bar" }, depSel, el("button", { onclick: async () => {
          if (!depSel.value) return;
          const d = JSON.parse(depSel.value);
          if (await act(() => api("PUT", p + "/dependencies/" + pkgPath(d)), "Depends on " + pkgText(d))) reload();
        } }, "Add exact dependency")),
        el("div", { class: "bar" }, rangeName, range, el("button", { onclick: async () => {
          if (rangeName.value && await act(() => api("PUT", p + "/dependencies/" + encodeURIComponent(rangeName.value), { range: range.value }), "Range dependency added")) reload();
        } }, "Add range dependency"))),
      el("section", { class: "card" },
        el("h2", {}, "Vehicles with it installed (" + vins.length + ")"),
        vins.length ? el("div", { class: "scroll" }, el("ul", { class: "vins" }, vins.slice(0, 200).map((v) => el("li", {}, vinLink(v))))) : el("p", { class: "muted" }, "None."),
        vins.length > 200 ? el("p", { class: "muted" }, "… and " + (vins.length - 200) + " more") : null)),
    el("section", { class: "card" },
      el("h2", {}, "Queue it now"),
      el("p", { class: "muted" }, "Every vehicle its filters select gets an update (a vehicle that has one pending or in flight for this version is skipped). For a named, scheduled rollout create a campaign."),
      el("form", { class: "bar", onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { packageId: id, priority: Number(qPrio.value), description: qDesc.value || undefined, requestConfirmation: qConfirm.checked };
        if (qFrom.value || qUntil.value) {
          if (!qFrom.value || !qUntil.value) { toast("Give both ends of the validity period", "err"); return; }
          body.periodOfValidity = new Date(qFrom.value).toISOString() + "/" + new Date(qUntil.value).toISOString();
        }
        const r = await act(() => api("POST", "/update_requests", body));
        if (r && r.id) {
          toast(r.vehicles + " vehicle" + (r.vehicles === 1 ? "" : "s") + " queued, " + (r.skipped || 0) + " skipped", "ok");
          location.hash = "#/update-requests/" + encodeURIComponent(r.id);
        }
      } },
      el("label", {}, "Priority ", qPrio), el("label", {}, "Valid from ", qFrom), el("label", {}, "until ", qUntil), qDesc,
      el("label", {}, qConfirm, " ask the driver"), el("button", { type: "submit", class: "primary", id: "queue-submit" }, "Queue"))),
    el("section", { class: "card" },
      el("h2", {}, "Who would get it"),
      el("div", { class: "bar" },
        el("button", { onclick: () => dryRun(dry, { package: id, sample: 20 }) }, "Dry run with its filters"),
        el("button", { class: "danger", onclick: async () => {
          if (confirm("Delete " + pkgText(id) + "?") && await act(() => api("DELETE", p), "Deleted")) location.hash = "#/packages";
        } }, "Delete package")),
      dry));
}

// dryRun shows the answer of POST /resolve/dry-run in box.
async function dryRun(box, req) {
  try {
    const r = await api("POST", "/resolve/dry-run", req);
    clear(box, renderDryRun(r));
  } catch (e) { showError(box, e); }
}

function renderDryRun(r) {
  return [
    el("p", { class: "counts" },
      el("strong", { id: "match-count" }, String(r.matched)), " vehicle" + (r.matched === 1 ? "" : "s") + " would install it",
      " · ", el("span", { id: "already-count" }, String(r.alreadyInstalled)), " already have it",
      " · ", String(r.unresolvedCount ?? (r.unresolved || []).length), " unresolved",
      " · of ", String(r.totalVehicles), " vehicles (", String(r.elapsedMs), " ms)"),
    table(["VIN", "Would install, in order"], (r.sample || []).map((s) => [vinLink(s.vin), s.install.map(pkgText).join(" → ")]), "No resolvable vehicle matches."),
    (r.unresolved || []).length ? el("details", {}, el("summary", {}, "Unresolved vehicles"),
      table(["VIN", "Why"], r.unresolved.map((u) => [vinLink(u.vin), u.reason]))) : null,
  ];
}

// ---------- components ----------

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
          el("button", { class: "small danger", onclick: async () => { if (await act(() => api("DELETE", "/components/" + encodeURIComponent(c.partNumber)), "Deleted " + c.partNumber)) load(); } }, "Delete"))]), "No components."));
    } catch (e) { showError(list, e); }
  }
  const part = el("input", { id: "new-part", placeholder: "part number", size: 16 });
  const desc = el("input", { id: "new-part-description", placeholder: "description", size: 30 });
  append(view, el("h1", {}, "Components"),
    el("form", { class: "bar", onsubmit: async (ev) => {
      ev.preventDefault();
      if (await act(() => api("POST", "/components", { partNumber: part.value.trim(), description: desc.value }), "Component " + part.value + " added")) { part.value = ""; desc.value = ""; load(); }
    } }, part, desc, el("button", { type: "submit", id: "component-add" }, "Add component")),
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); load(); } }, q, el("button", { type: "submit" }, "Search")),
    el("div", { class: "cols" }, list, side));
  load();
}

// ---------- filters ----------

async function filters() {
  const view = $("#view");
  const q = el("input", { id: "filter-regex", placeholder: "name regex", size: 24 });
  const list = el("div", {});
  async function load() {
    const ok = current();
    try {
      const fs = await api("GET", "/filters" + (q.value ? "?regex=" + encodeURIComponent(q.value) : ""));
      if (!ok()) return;
      clear(list, table(["Name", "Expression", ""], fs.map((f) => [el("a", { href: "#/filters/" + encodeURIComponent(f.name) }, f.name), el("code", { class: "expr" }, f.expression),
        el("button", { class: "small danger", onclick: async () => { if (confirm("Delete filter " + f.name + "?") && await act(() => api("DELETE", "/filters/" + encodeURIComponent(f.name)), "Deleted " + f.name)) load(); } }, "Delete")]), "No filters."));
    } catch (e) { showError(list, e); }
  }
  append(view, el("h1", {}, "Filters"),
    el("div", { class: "bar" }, el("a", { href: "#/filters/new", class: "button primary", id: "filter-new" }, "New filter")),
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); load(); } }, q, el("button", { type: "submit" }, "Search")),
    list);
  load();
}

// caretView shows the line of the expression an error points at, with a caret under its column.
function caretView(expr, e, onJump) {
  const lines = expr.split("\n");
  const line = lines[e.line - 1] ?? "";
  const col = Math.max(1, e.column || 1);
  const pad = Array.from(line).slice(0, col - 1).map((ch) => (ch === "\t" ? "\t" : " ")).join("");
  return el("div", { class: "caret-error", title: "Click to put the cursor there", onclick: onJump },
    el("div", { class: "caret-msg" }, e.line + ":" + e.column + ": " + e.message),
    el("pre", {}, line + "\n" + pad + "^"));
}

async function filterEditor(name) {
  const view = $("#view");
  const ok = current();
  const existing = name ? await api("GET", "/filters/" + encodeURIComponent(name)) : null;
  const allPkgs = await api("GET", "/packages");
  const linked = name ? await api("GET", "/filters/" + encodeURIComponent(name) + "/package") : [];
  if (!ok()) return;

  const nameIn = el("input", { id: "filter-name", placeholder: "letters and digits", size: 30, value: existing ? existing.name : "", disabled: !!existing });
  const expr = el("textarea", { id: "filter-expr", rows: 6, cols: 80, spellcheck: "false", placeholder: 'vin_matches "^1HG" AND has_package "nav" < "2.0.0"' }, existing ? existing.expression : "");
  const status = el("div", { id: "filter-status", class: "muted" }, "Type an expression.");
  const errBox = el("div", { id: "filter-error" });
  const pkgSel = el("select", { id: "dry-package" }, allPkgs.map((x) => el("option", { value: JSON.stringify(x.id) }, pkgText(x.id))));
  if (linked.length) pkgSel.value = JSON.stringify(linked[0].id);
  const matches = el("div", { id: "filter-matches" }, allPkgs.length ? el("p", { class: "muted" }, "The match count appears once the expression is valid.") : el("p", { class: "muted" }, "Add a package to see who would get it."));
  const explainVin = el("input", { id: "explain-vin", placeholder: "VIN", size: 20, maxlength: 17 });
  const explainOut = el("div", { id: "explain-result" });
  let valid = false;
  let seq = 0;

  async function check() {
    const mine = ++seq;
    const text = expr.value;
    if (!text.trim()) {
      valid = false;
      clear(status, "Type an expression.");
      status.className = "muted";
      clear(errBox);
      return;
    }
    try {
      await api("POST", "/validate/filter", { expression: text, name: nameIn.value || undefined });
      if (mine !== seq) return;
      valid = true;
      clear(status, "✓ valid");
      status.className = "ok";
      clear(errBox);
      count(mine);
    } catch (e) {
      if (mine !== seq) return;
      valid = false;
      status.className = "error";
      if (e.status === 406 && e.body.errors) {
        clear(status, "✗ " + e.body.errors.length + " error" + (e.body.errors.length === 1 ? "" : "s"));
        clear(errBox, e.body.errors.map((x) => caretView(text, x, () => jumpTo(text, x))));
      } else {
        clear(status, "✗ " + e.message);
        clear(errBox);
      }
    }
  }

  async function count(mine) {
    if (!pkgSel.value) return;
    try {
      const r = await api("POST", "/resolve/dry-run", { package: JSON.parse(pkgSel.value), expression: expr.value, sample: 10 });
      if (mine !== seq) return;
      clear(matches, renderDryRun(r));
    } catch (e) {
      if (mine === seq) showError(matches, e);
    }
  }

  // jumpTo puts the textarea's cursor where an error points.
  function jumpTo(text, x) {
    const lines = text.split("\n");
    let at = 0;
    for (let i = 0; i < x.line - 1 && i < lines.length; i++) at += lines[i].length + 1;
    at += Array.from(lines[x.line - 1] || "").slice(0, Math.max(0, x.column - 1)).join("").length;
    expr.focus();
    expr.setSelectionRange(at, at);
  }

  const recheck = debounce(check, 250);
  expr.addEventListener("input", recheck);
  pkgSel.addEventListener("change", () => { if (valid) count(seq); });

  append(view,
    el("p", {}, el("a", { href: "#/filters" }, "‹ Filters")),
    el("h1", {}, existing ? "Filter " + existing.name : "New filter"),
    el("section", { class: "card editor" },
      el("label", {}, "Name ", nameIn),
      el("label", { class: "block" }, "Expression", expr),
      el("div", { class: "bar" }, status),
      errBox,
      el("div", { class: "bar" },
        el("button", { id: "filter-format", onclick: async () => {
          try {
            const r = await api("POST", "/filters/format", { expression: expr.value, name: nameIn.value || undefined });
            expr.value = r.expression;
            check();
          } catch (e) { check(); }
        } }, "Format"),
        el("button", { id: "filter-save", class: "primary", onclick: async () => {
          const body = { name: nameIn.value.trim(), expression: expr.value };
          const saved = existing
            ? await act(() => api("PUT", "/filters/" + encodeURIComponent(existing.name), { expression: expr.value }), "Filter saved")
            : await act(() => api("POST", "/filters", body), "Filter " + body.name + " created");
          if (saved && !existing) location.hash = "#/filters/" + encodeURIComponent(body.name);
        } }, existing ? "Save" : "Create"),
        existing && linked.length ? el("span", { class: "muted" }, "Used by ", linked.map((x) => pkgText(x.id)).join(", ")) : null)),
    el("section", { class: "card" },
      el("h2", {}, "Live match"),
      el("div", { class: "bar" }, el("label", {}, "Package ", pkgSel)),
      matches),
    el("section", { class: "card" },
      el("h2", {}, "Why not this VIN?"),
      el("form", { class: "bar", onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const r = await api("POST", "/filters/explain", { expression: expr.value, vin: explainVin.value.trim().toUpperCase() });
          clear(explainOut, el("p", {}, el("strong", { id: "explain-verdict" }, r.result ? "Matches" : "Does not match")), explainTree(r.tree));
        } catch (e) { showError(explainOut, e); }
      } }, explainVin, el("button", { type: "submit", id: "explain-submit" }, "Explain")),
      explainOut));
  if (existing) check();
}

function explainTree(t) {
  if (!t) return null;
  return el("ul", { class: "tree" }, el("li", {},
    el("span", { class: t.value ? "t" : "f" }, t.value ? "✓ " : "✗ "), el("code", {}, t.expression),
    (t.children || []).map(explainTree)));
}

// ---------- campaigns ----------

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
  append(view, el("h1", {}, "Campaigns"),
    el("form", { class: "card", onsubmit: async (ev) => {
      ev.preventDefault();
      if (!pkgSel.value) { toast("Create a package first", "err"); return; }
      const body = { name: name.value.trim(), packageId: JSON.parse(pkgSel.value), priority: Number(prio.value), startTime: iso(startT.value), endTime: iso(endT.value) };
      const c = await act(() => api("POST", "/campaigns", body), "Campaign created");
      if (c && c.id) location.hash = "#/campaigns/" + encodeURIComponent(c.id);
    } },
    el("h2", {}, "New campaign"),
    el("div", { class: "bar" }, name, pkgSel, el("label", {}, "Priority ", prio), el("label", {}, "Start ", startT), el("label", {}, "End ", endT),
      el("button", { type: "submit", class: "primary", id: "campaign-create" }, "Create"))),
    el("section", { class: "card" }, el("h2", {}, "Campaigns"),
      table(["Name", "Package", "Priority", "Window", "Status", "Created"], cs.map((c) => [
        el("a", { href: "#/campaigns/" + encodeURIComponent(c.id) }, c.name || c.id), pkgText(c.packageId), c.priority,
        (c.startTime ? when(c.startTime) : "now") + " – " + (c.endTime ? when(c.endTime) : "open"), badge(c.status), when(c.createdAt)]), "No campaigns yet.")),
    el("section", { class: "card" }, el("h2", {}, "Update requests"),
      table(["Request", "Package", "Priority", "Vehicles", "State", "Created", ""], reqs.map((r) => [
        el("a", { href: "#/update-requests/" + encodeURIComponent(r.id) }, el("code", {}, r.id.slice(0, 8))), r.packageId ? pkgText(r.packageId) : r.kind, r.priority, r.vehicles, r.state, when(r.createdAt),
        el("button", { class: "small", onclick: async () => { if (await act(() => api("PUT", "/update_requests/" + encodeURIComponent(r.id) + "/cancel"), "Pending updates canceled")) route(); } }, "Cancel pending")]), "No update requests.")));
}

const STATUSES = ["pending", "inFlight", "finished", "failed", "canceled"];

// progressPanel shows an update request's counts per status as bars, refreshed every second, with the
// vehicles of a status on a click. It returns {box, list, refresh, start}.
function progressPanel(requestID, ok) {
  const box = el("div", { id: "campaign-progress" });
  const list = el("div", { id: "campaign-vehicles" });
  let shown = null;

  async function showList(st) {
    shown = st;
    try {
      const { data: vs, total } = await api("GET", "/update_requests/" + encodeURIComponent(requestID) + "/vehicles?status=" + st + "&limit=200", undefined, { withTotal: true });
      if (!ok() || shown !== st) return;
      clear(list, el("h2", {}, "Vehicles " + st + " (" + (total || vs.length) + ")"),
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
        el("div", { class: "stack", title: STATUSES.map((k) => k + " " + (counts[k] || 0)).join(", ") }, STATUSES.map((k) => {
          const seg = el("div", { class: "seg " + k });
          seg.style.width = pct(k);
          return seg;
        })),
        el("table", { class: "grid counts-table" }, el("tbody", {}, STATUSES.map((k) => {
          const fill = el("div", { class: "fill " + k });
          fill.style.width = pct(k);
          return el("tr", {},
            el("td", {}, el("a", { href: "#", "data-status": k, onclick: (ev) => { ev.preventDefault(); showList(k); } }, k)),
            el("td", { class: "num", id: "count-" + k }, String(counts[k] || 0)),
            el("td", { class: "barcell" }, el("div", { class: "meter" }, fill)));
        }))));
      if (shown) showList(shown);
      return r;
    } catch (e) { showError(box, e); return null; }
  }

  function start() {
    clearInterval(pollTimer);
    pollTimer = setInterval(() => { if (ok()) refresh(); else clearInterval(pollTimer); }, 1000);
  }

  async function cancel() {
    if (!confirm("Cancel every pending update of this request?")) return;
    const r = await act(() => api("PUT", "/update_requests/" + encodeURIComponent(requestID) + "/cancel"));
    if (r) toast(r.canceled + " pending update" + (r.canceled === 1 ? "" : "s") + " canceled", "ok");
    refresh();
  }

  return { box, list, refresh, start, cancel };
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
  const launchBtn = el("button", { id: "campaign-launch", class: "primary" }, "Launch");
  const cancelBtn = el("button", { id: "campaign-cancel", class: "danger" }, "Cancel pending updates");
  let panel = null;

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
    c = await api("GET", "/campaigns/" + encodeURIComponent(id));
    if (!c.updateRequest && r.updateRequest) c.updateRequest = r.updateRequest;
    paint();
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
        try { clear(preview, renderDryRun(await api("GET", "/campaigns/" + encodeURIComponent(id) + "/preview"))); } catch (e) { showError(preview, e); }
      } }, "Preview"),
      launchBtn, cancelBtn),
    preview, progressCard, listSlot);
  paint();
  if (c.updateRequest) await attach();
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
    el("div", { class: "bar" }, el("button", { id: "campaign-cancel", class: "danger", onclick: () => panel.cancel() }, "Cancel pending updates")),
    el("section", { class: "card" }, el("h2", {}, "Progress"), panel.box),
    panel.list);
  await panel.refresh();
  panel.start();
}

// ---------- settings: API tokens and accounts ----------

async function settings() {
  const view = $("#view");
  const ok = current();
  const [tokens, accounts] = await Promise.all([api("GET", "/tokens"), api("GET", "/accounts")]);
  if (!ok()) return;
  const tokName = el("input", { id: "token-name", placeholder: "what the token is for", size: 28 });
  const secret = el("div", { id: "token-secret" });
  const user = el("input", { id: "account-name", placeholder: "username", size: 16, autocomplete: "off" });
  const pw = el("input", { id: "account-password", type: "password", placeholder: "password (8 or more)", size: 20, autocomplete: "new-password" });
  const who = el("select", { id: "password-account" }, accounts.map((a) => el("option", { value: a.username, selected: a.username === session.username }, a.username)));
  const newPw = el("input", { type: "password", placeholder: "new password", size: 20, autocomplete: "new-password" });

  append(view, el("h1", {}, "Settings"),
    el("div", { class: "cols" },
      el("section", { class: "card" },
        el("h2", {}, "API tokens"),
        el("p", { class: "muted" }, "Scripts send a token as ", el("code", {}, "Authorization: Bearer <token>"), "; it needs no CSRF header. The secret is shown once."),
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          const t = await act(() => api("POST", "/tokens", { name: tokName.value }), "Token created");
          if (!t) return;
          tokName.value = "";
          clear(secret, el("p", {}, "Copy it now, it is not shown again: ", el("code", { class: "secret" }, t.token)));
          const again = await api("GET", "/tokens");
          clear(tokList, tokenTable(again));
        } }, tokName, el("button", { type: "submit", class: "primary", id: "token-create" }, "Create token")),
        secret),
      el("section", { class: "card" },
        el("h2", {}, "Accounts"),
        table(["Username", "Created", ""], accounts.map((a) => [a.username, when(a.createdAt),
          el("button", { class: "small danger", onclick: async () => {
            if (confirm("Delete account " + a.username + "?") && await act(() => api("DELETE", "/accounts/" + encodeURIComponent(a.username)), "Deleted " + a.username)) route();
          } }, "Delete")])),
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          if (await act(() => api("POST", "/accounts", { username: user.value.trim(), password: pw.value }), "Account created")) route();
        } }, user, pw, el("button", { type: "submit" }, "Add account")),
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          if (await act(() => api("PUT", "/accounts/" + encodeURIComponent(who.value) + "/password", { password: newPw.value }), "Password changed; the account's sessions ended")) {
            newPw.value = "";
            if (who.value.toLowerCase() === String(session.username).toLowerCase()) toLogin();
          }
        } }, who, newPw, el("button", { type: "submit" }, "Change password")))));
  const tokList = el("div", { id: "token-list" }, tokenTable(tokens));
  view.querySelector(".card").append(tokList);

  function tokenTable(ts) {
    return table(["Name", "Owner", "Created", ""], ts.map((t) => [t.name, t.username, when(t.createdAt),
      el("button", { class: "small danger", onclick: async () => {
        if (confirm("Revoke token " + t.name + "?") && await act(() => api("DELETE", "/tokens/" + encodeURIComponent(t.id)), "Token revoked")) {
          clear(tokList, tokenTable(await api("GET", "/tokens")));
        }
      } }, "Revoke")]), "No API tokens.");
  }
}

// ---------- data plans ----------

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
        el("form", { class: "bar", onsubmit: async (ev) => {
          ev.preventDefault();
          if (!start.value) return;
          if (await act(() => api("POST", "/data_plans/" + encodeURIComponent(pid) + "/billing_cycles", { start: new Date(start.value).toISOString(), poolBytes: Number(pool.value) }), "Billing cycle added")) showPlan(pid);
        } }, el("label", {}, "Start ", start), pool, el("button", { type: "submit", id: "cycle-add" }, "Add cycle")));
    } catch (e) { showError(detail, e); }
  }

  append(view, el("h1", {}, "Data plans"),
    el("form", { class: "bar", onsubmit: async (ev) => {
      ev.preventDefault();
      if (await act(() => api("POST", "/data_plans", { id: id.value.trim() }), "Data plan created")) route();
    } }, id, el("button", { type: "submit", id: "plan-create" }, "Create plan")),
    el("div", { class: "cols" },
      el("section", { class: "card" }, table(["Plan", "Created", ""], plans.map((p) => [p.id, when(p.createdAt),
        el("button", { class: "small", "data-plan": p.id, onclick: () => showPlan(p.id) }, "Billing cycles")]), "No data plans.")),
      el("section", { class: "card" }, detail)));
  if (plans.length) showPlan(plans[0].id);
  else clear(detail, el("p", { class: "muted" }, "Create a data plan, add billing cycles, then put vehicles on it from their page."));
}

document.addEventListener("DOMContentLoaded", start);
