// Shared DOM helpers of the admin UI: el() builds DOM nodes (text is never parsed as HTML), tables,
// links, formatting of times and sizes, status badges, and the toast that reports an action's outcome.

export function el(tag, attrs, ...children) {
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
export function when(t) { return t ? new Date(t).toLocaleString() : "—"; }
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

export function badge(status) { return el("span", { class: "badge " + status }, status); }
