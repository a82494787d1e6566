// Shared DOM helpers of the admin UI: el() builds DOM nodes (text is never parsed as HTML), tables,
// links, formatting of times (with their time zone) and sizes, status labels and badges, progress bars
// and bar charts, and the toast that reports an action's outcome.

// A control that changes state names the least role that may use it: el("form", { needs: "operator" })
// or { needs: "admin" } marks it data-needs; one rule in app.css hides it from the roles below (the
// body carries role-viewer, role-operator or role-admin, app.js), so that nobody is offered a form or
// button the server would answer with 403. Reading controls (search, preview, dry run) need nothing.
export function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "needs") n.dataset.needs = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (k === "class") n.className = v;
    else if (k === "value") n.value = v;
    else if (v === true) n.setAttribute(k, "");
    else n.setAttribute(k, String(v));
  }
  append(n, ...children);
  return n;
}

export function append(n, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

export function clear(n, ...children) {
  n.replaceChildren();
  return append(n, ...children);
}

export function $(sel) { return document.querySelector(sel); }

export function table(headers, rows, empty) {
  if (!rows.length) return el("p", { class: "muted empty" }, empty || "Nothing here.");
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

export function pkgText(p) { return p ? p.name + " " + p.version : ""; }
export function pkgPath(p) { return encodeURIComponent(p.name) + "/" + encodeURIComponent(p.version); }
export function pkgLink(p) { return el("a", { href: "#/packages/" + pkgPath(p) }, pkgText(p)); }
export function vinLink(v) { return el("a", { href: "#/vehicles/" + encodeURIComponent(v), class: "vin" }, v); }
// when is a time as people read it, with its time zone ("Dec 6, 2026, 07:02:15 UTC"); "—" for none.
export function when(t) {
  if (!t) return "—";
  return new Date(t).toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
}

// ago is how long ago a time was ("3 min ago"), with the full time as its tooltip; "never" for none.
export function ago(t) {
  if (!t) return el("span", { class: "muted" }, "never");
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  const text = s < 60 ? "just now" : s < 3600 ? Math.floor(s / 60) + " min ago" : s < 86400 ? Math.floor(s / 3600) + " h ago" : Math.floor(s / 86400) + " days ago";
  return el("span", { title: when(t) }, text);
}
export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

export function toast(msg, kind) {
  const t = $("#toast");
  clear(t, msg);
  t.className = "show " + (kind || "ok");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, 4000);
}

export function debounce(fn, ms) {
  let t = null;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// statusLabel is a status as people write it: "in flight", not inFlight.
export function statusLabel(status) {
  return { inFlight: "in flight" }[status] || status;
}

export function badge(status) { return el("span", { class: "badge " + status, "data-status": status }, statusLabel(status)); }

// The statuses of an update, in the order of their bars.
export const STATUSES = ["pending", "inFlight", "finished", "failed", "canceled"];

// stackBar is one bar split by status (counts by status name), each part as wide as its share; its
// tooltip lists the counts.
export function stackBar(counts, attrs) {
  const total = STATUSES.reduce((n, k) => n + (counts[k] || 0), 0);
  return el("div", Object.assign({ class: "stack", title: STATUSES.map((k) => statusLabel(k) + " " + (counts[k] || 0)).join(", ") }, attrs || {}),
    STATUSES.map((k) => {
      const seg = el("div", { class: "seg " + k });
      seg.style.width = (total ? (100 * (counts[k] || 0)) / total : 0) + "%";
      return seg;
    }));
}

// barChart draws horizontal bars: rows of {label, value, cls, title, attrs}, each bar as long as its
// value against the largest (or against max), with the value at its end.
export function barChart(rows, opts) {
  opts = opts || {};
  const max = opts.max || Math.max(1, ...rows.map((r) => r.value));
  return el("div", Object.assign({ class: "chart" }, opts.attrs || {}), rows.map((r) => {
    const fill = el("div", { class: "fill " + (r.cls || "") });
    fill.style.width = (100 * r.value) / max + "%";
    return el("div", Object.assign({ class: "chart-row", title: r.title || "" }, r.attrs || {}),
      el("span", { class: "chart-label" }, r.label),
      el("span", { class: "meter" }, fill),
      el("span", { class: "chart-value" }, r.text !== undefined ? r.text : String(r.value)));
  }));
}
