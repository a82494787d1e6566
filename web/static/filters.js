// Filters: the list and the editor (CodeMirror from editor.js: completion, lint squiggles with quick
// fixes, carets; the live count of the vehicles the expression matches; who would get a package; explain
// a VIN).
import { el, append, clear, $, table, pkgText, debounce, toast } from "./ui.js";
import { api, act, showError } from "./api.js";
import { current } from "./nav.js";
import { renderDryRun } from "./dryrun.js";
import { createFilterEditor, charPos } from "./editor.js";

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
        el("button", { class: "small danger", needs: "operator", "data-delete": f.name, onclick: () => deleteFilter(f.name, load) }, "Delete")]), "No filters."));
    } catch (e) { showError(list, e); }
  }
  append(view, el("h1", {}, "Filters"),
    el("div", { class: "bar" }, el("a", { href: "#/filters/new", class: "button primary", id: "filter-new", needs: "operator" }, "New filter")),
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
  const host = el("div", { class: "filter-editor" });
  const status = el("div", { id: "filter-status", class: "muted" }, "Type an expression.");
  const count = el("div", { id: "filter-count", class: "muted" });
  const errBox = el("div", { id: "filter-error" });
  const warnBox = el("div", { id: "filter-warnings" });
  const pkgSel = el("select", { id: "dry-package" }, allPkgs.map((x) => el("option", { value: JSON.stringify(x.id) }, pkgText(x.id))));
  if (linked.length) pkgSel.value = JSON.stringify(linked[0].id);
  const matches = el("div", { id: "filter-matches" }, allPkgs.length ? el("p", { class: "muted" }, "The match count appears once the expression is valid.") : el("p", { class: "muted" }, "Add a package to see who would get it."));
  const explainVin = el("input", { id: "explain-vin", placeholder: "VIN", size: 20, maxlength: 17 });
  const explainOut = el("div", { id: "explain-result" });
  let valid = false;
  let seq = 0;

  const save = el("button", { id: "filter-save", class: "primary", needs: "operator", disabled: true, onclick: async () => {
    const body = { name: nameIn.value.trim(), expression: expr.value };
    const saved = existing
      ? await act(() => api("PUT", "/filters/" + encodeURIComponent(existing.name), { expression: expr.value }), "Filter saved")
      : await act(() => api("POST", "/filters", body), "Filter " + body.name + " created");
    if (saved && !existing) location.hash = "#/filters/" + encodeURIComponent(body.name);
  } }, existing ? "Save" : "Create");

  // The editor asks the server what may come at the cursor and what is wrong with the text; lint's
  // answer also drives the status line, the error list with carets and quick fixes, Create, and the
  // live counts.
  const expr = createFilterEditor(host, {
    doc: existing ? existing.expression : "",
    id: "filter-expr",
    placeholder: 'vin_matches "^1HG" AND has_package "nav" < "2.0.0"',
    complete: (text, offset) => api("POST", "/filters/complete", { expression: text, offset }),
    lint: (text) => check(text),
  });

  async function check(text) {
    const mine = ++seq;
    if (!text.trim()) {
      valid = false;
      save.disabled = true;
      clear(status, "Type an expression.");
      status.className = "muted";
      clear(errBox);
      clear(warnBox);
      clear(count);
      return { errors: [], warnings: [] };
    }
    let r;
    try {
      r = await api("POST", "/filters/lint", { expression: text, name: nameIn.value || undefined });
    } catch (e) {
      if (mine === seq) { clear(status, "✗ " + e.message); status.className = "error"; }
      throw e;
    }
    if (mine !== seq) return r;
    valid = r.valid;
    save.disabled = !valid;
    const nw = r.warnings.length;
    const warnText = nw ? ", " + nw + " warning" + (nw === 1 ? "" : "s") : "";
    if (valid) {
      clear(status, "✓ valid" + warnText);
      status.className = nw ? "warned" : "ok";
      clear(errBox);
      countMatches(mine, text);
      dryRun(mine, text);
    } else {
      const n = r.errors.length;
      clear(status, "✗ " + n + " error" + (n === 1 ? "" : "s") + warnText);
      status.className = "error";
      clear(errBox, r.errors.map((x) => diagView(text, x)));
      clear(count);
    }
    clear(warnBox, r.warnings.map((x) => diagView(text, x, "warning")));
    return r;
  }

  // diagView is one error or warning: the source line with a caret under its column (a click puts the
  // cursor there) and, when there is a suggestion, a button that applies it.
  function diagView(text, d, kind) {
    const v = caretView(text, d, () => jumpTo(text, d));
    if (kind) v.classList.add(kind);
    if (d.suggestion) {
      append(v, el("button", { class: "small quick-fix", type: "button", onclick: (ev) => {
        ev.stopPropagation();
        const cur = expr.value;
        if (cur !== text) return;
        const from = charPos(cur, d.offset), to = charPos(cur, d.offset + d.length);
        expr.view.dispatch({ changes: { from, to, insert: d.suggestion } });
      } }, "Use " + d.suggestion));
    }
    return v;
  }

  // countMatches shows how many vehicles the expression alone matches (the index answers it).
  async function countMatches(mine, text) {
    try {
      const r = await api("GET", "/vehicles?limit=0&expression=" + encodeURIComponent(text), undefined, { withTotal: true });
      if (mine !== seq) return;
      clear(count, el("strong", { id: "match-total" }, String(r.total)), r.total === 1 ? " vehicle matches" : " vehicles match");
      count.className = "";
    } catch (e) {
      if (mine === seq) clear(count);
    }
  }

  async function dryRun(mine, text) {
    if (!pkgSel.value) return;
    try {
      const r = await api("POST", "/resolve/dry-run", { package: JSON.parse(pkgSel.value), expression: text, sample: 10 });
      if (mine !== seq) return;
      clear(matches, renderDryRun(r));
    } catch (e) {
      if (mine === seq) showError(matches, e);
    }
  }

  // jumpTo puts the editor's cursor where a diagnostic points.
  function jumpTo(text, x) {
    expr.setCursor(charPos(text, x.offset));
  }

  pkgSel.addEventListener("change", () => { if (valid) dryRun(seq, expr.value); });


  append(view,
    el("p", {}, el("a", { href: "#/filters" }, "‹ Filters")),
    el("h1", {}, existing ? "Filter " + existing.name : "New filter"),
    el("section", { class: "card editor" },
      el("label", {}, "Name ", nameIn),
      el("div", { class: "block" }, el("span", {}, "Expression"), host),
      el("p", { class: "muted small" }, "Completion comes as you type (Ctrl-Space asks); errors and warnings are underlined, with a fix where there is one."),
      el("div", { class: "bar" }, status, count),
      errBox,
      warnBox,
      el("div", { class: "bar" },
        el("button", { id: "filter-format", onclick: async () => {
          try {
            const r = await api("POST", "/filters/format", { expression: expr.value, name: nameIn.value || undefined });
            expr.value = r.expression;
          } catch (e) { /* the lint answer already shows what is wrong */ }
        } }, "Format"),
        save,
        existing && linked.length ? el("span", { class: "muted" }, "Used by ", linked.map((x) => pkgText(x.id)).join(", ")) : null)),
    el("section", { class: "card" },
      el("h2", {}, "Who would get a package"),
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
