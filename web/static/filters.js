// Filters: the list and the editor (live validation with carets, live match count, explain a VIN).
import { el, append, clear, $, table, pkgText, debounce, toast } from "./ui.js";
import { api, act, showError } from "./api.js";
import { current } from "./nav.js";
import { renderDryRun } from "./dryrun.js";

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
        el("button", { class: "small danger", "data-delete": f.name, onclick: () => deleteFilter(f.name, load) }, "Delete")]), "No filters."));
    } catch (e) { showError(list, e); }
  }
  append(view, el("h1", {}, "Filters"),
    el("div", { class: "bar" }, el("a", { href: "#/filters/new", class: "button primary", id: "filter-new" }, "New filter")),
    el("form", { class: "bar", onsubmit: (ev) => { ev.preventDefault(); load(); } }, q, el("button", { type: "submit" }, "Search")),
    list);
  load();
}

// deleteFilter asks before deleting a filter, naming what the deletion does: the packages it is linked
// to lose it, so each goes to every vehicle its other filters select (a wider audience), and filters
// that refer to it keep it from being deleted at all. Once the user has read that and agreed, the
// deletion removes the links too (?force=true).
async function deleteFilter(name, done) {
  let linked = [], referring = [];
  try {
    const [pkgs, all] = await Promise.all([api("GET", "/filters/" + encodeURIComponent(name) + "/package"), api("GET", "/filters")]);
    linked = pkgs.map((x) => pkgText(x.id));
    const ref = new RegExp("filter\\s*[\"']" + name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "[\"']", "i");
    referring = all.filter((f) => f.name.toLowerCase() !== name.toLowerCase() && ref.test(f.expression)).map((f) => f.name);
  } catch (e) { toast(e.message, "err"); return; }
  const lines = ["Delete filter " + name + "?", ""];
  if (referring.length) {
    lines.push("Filters " + referring.join(", ") + " refer to it: the server will refuse to delete it until they no longer do.");
  }
  if (linked.length) {
    lines.push("It is linked to " + linked.length + " package" + (linked.length === 1 ? "" : "s") + ": " + linked.join(", ") + ".",
      "Deleting it unlinks it: each of them then goes to every vehicle its other filters select, a wider audience than today; a package left without any filter cannot be queued.",
      "Updates already queued are not changed.");
  }
  if (!referring.length && !linked.length) lines.push("No package is linked to it and no filter refers to it.");
  if (!confirm(lines.join("\n"))) return;
  if (await act(() => api("DELETE", "/filters/" + encodeURIComponent(name) + (linked.length ? "?force=true" : "")), "Deleted " + name)) done();
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

export const routes = [
  [/^#\/filters\/new$/, () => filterEditor(null)],
  [/^#\/filters\/([^/]+)$/, (n) => filterEditor(n)],
  [/^#\/filters$/, filters],
];
