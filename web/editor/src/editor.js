// The filter editor of the admin UI: CodeMirror 6 with the filter language's highlighting, completion
// asked from the server (POST /filters/complete), and squiggles for the errors and warnings of
// POST /filters/lint with quick fixes that apply a suggestion. Bundled once into web/static/editor.js
// by `make web`; the server only serves the bundle.
import { EditorState } from "@codemirror/state";
import { EditorView, keymap, placeholder as placeholderExt, drawSelection, highlightActiveLine } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { StreamLanguage, HighlightStyle, syntaxHighlighting } from "@codemirror/language";
import { autocompletion, completionKeymap, startCompletion } from "@codemirror/autocomplete";
import { linter, lintGutter, setDiagnostics } from "@codemirror/lint";
import { tags } from "@lezer/highlight";
import * as grammar from "./language.js";

// The grammar's words: language.js is generated from the server's grammar (dsl/grammar.go).
const KEYWORDS = new Set(grammar.KEYWORDS);
const PREDICATES = new Set(grammar.PREDICATES);

// The language's tokens, as the server's lexer reads them (DSL.md, Lexical rules).
const filterLanguage = StreamLanguage.define({
  name: "sota-filter",
  startState: () => ({ comment: false }),
  token(stream, state) {
    if (state.comment) {
      if (stream.skipTo("*/")) { stream.match("*/"); state.comment = false; } else stream.skipToEnd();
      return "comment";
    }
    if (stream.eatSpace()) return null;
    if (stream.match("//")) { stream.skipToEnd(); return "comment"; }
    if (stream.match("/*")) { state.comment = true; return "comment"; }
    const ch = stream.peek();
    if (ch === '"' || ch === "'") {
      stream.next();
      while (!stream.eol()) { if (stream.next() === ch) break; }
      return "string";
    }
    if (stream.match(/^-?[0-9]+(\.[0-9]+)?/)) return "number";
    if (stream.match(/^(==|!=|<=|>=|<|>)/)) return "operator";
    if (stream.match(/^[A-Za-z_][A-Za-z0-9_]*/)) {
      const w = stream.current().toLowerCase();
      if (KEYWORDS.has(w)) return "keyword";
      if (PREDICATES.has(w)) return "function";
      return "invalid";
    }
    if (stream.match(/^[(),]/)) return "punctuation";
    stream.next();
    return "invalid";
  },
  tokenTable: { function: tags.function(tags.variableName), invalid: tags.invalid, punctuation: tags.punctuation },
});

const highlight = HighlightStyle.define([
  { tag: tags.keyword, color: "#7a3e9d", fontWeight: "bold" },
  { tag: tags.function(tags.variableName), color: "#1f5fa8" },
  { tag: tags.string, color: "#1d7a3a" },
  { tag: tags.number, color: "#a85b00" },
  { tag: tags.operator, color: "#7a3e9d" },
  { tag: tags.comment, color: "#7a7a7a", fontStyle: "italic" },
  { tag: tags.invalid, color: "#b00020", textDecoration: "underline wavy" },
]);

// The server speaks byte offsets (UTF-8); the editor speaks UTF-16 positions.
const utf8 = new TextEncoder();
export function byteOffset(text, pos) { return utf8.encode(text.slice(0, pos)).length; }
export function charPos(text, off) {
  let bytes = 0, i = 0;
  while (i < text.length && bytes < off) {
    const cp = text.codePointAt(i);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp > 0xffff ? 2 : 1;
  }
  return i;
}

const completionType = { keyword: "keyword", predicate: "function", package: "class", version: "constant", component: "type",
  attribute: "property", value: "text", filter: "variable", status: "enum" };

// createFilterEditor puts an editor into parent. opts: doc, placeholder, id (of the editable element),
// complete(expression, byteOffset) → the answer of /filters/complete, lint(expression) → the answer of
// /filters/lint (called after every change, debounced), onChange(expression).
export function createFilterEditor(parent, opts) {
  const complete = async (ctx) => {
    const text = ctx.state.doc.toString();
    let r;
    try { r = await opts.complete(text, byteOffset(text, ctx.pos)); } catch (e) { return null; }
    if (!r || !r.items || !r.items.length) return null;
    return {
      from: charPos(text, r.from),
      to: charPos(text, r.to),
      filter: false, // the server has ranked what fits what is typed
      options: r.items.map((it, i) => ({
        label: it.label, detail: it.detail, type: completionType[it.kind] || "text", boost: -i,
        apply: (view, _c, from, to) => {
          view.dispatch({ changes: { from, to, insert: it.insert }, selection: { anchor: from + it.insert.length }, userEvent: "input.complete" });
          if (/[ (]$/.test(it.insert)) setTimeout(() => startCompletion(view), 0); // what comes next
        },
      })),
    };
  };
  const lintSource = async (view) => {
    const text = view.state.doc.toString();
    let r;
    try { r = await opts.lint(text); } catch (e) { return []; }
    if (!r || view.state.doc.toString() !== text) return [];
    const diag = (d, severity) => {
      const from = charPos(text, d.offset);
      const to = Math.max(from, charPos(text, d.offset + d.length));
      const out = { from, to, severity, message: d.message, source: severity === "error" ? "error" : "warning" };
      if (d.suggestion) {
        out.actions = [{ name: "Use " + d.suggestion, apply: (v, f, t) => v.dispatch({ changes: { from: f, to: t, insert: d.suggestion } }) }];
      }
      return out;
    };
    return [...(r.errors || []).map((d) => diag(d, "error")), ...(r.warnings || []).map((d) => diag(d, "warning"))];
  };
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: opts.doc || "",
      extensions: [
        history(), drawSelection(), highlightActiveLine(), EditorView.lineWrapping,
        filterLanguage, syntaxHighlighting(highlight),
        autocompletion({ override: [complete], activateOnTyping: true, icons: false }),
        linter(lintSource, { delay: 250 }), lintGutter(),
        keymap.of([...completionKeymap, ...defaultKeymap, ...historyKeymap]),
        placeholderExt(opts.placeholder || ""),
        // The page's Content-Security-Policy admits CodeMirror's stylesheet by this nonce.
        EditorView.cspNonce.of((document.querySelector('meta[name="csp-nonce"]') || {}).content || ""),
        EditorView.contentAttributes.of({ id: opts.id || "", spellcheck: "false", "aria-label": "Filter expression" }),
        // Typed white space is white space: Chrome types a no-break space into a contenteditable at
        // times, and so does Option-Space on a Mac; the language refuses it. (Pasted text is kept as it
        // is, so that lint points at what was pasted.)
        EditorState.transactionFilter.of((tr) => {
          if (!tr.docChanged || !tr.isUserEvent("input.type")) return tr;
          const changes = [];
          let nbsp = false;
          tr.changes.iterChanges((fromA, toA, _fromB, _toB, ins) => {
            const text = ins.toString();
            nbsp = nbsp || text.includes("\u00a0");
            changes.push({ from: fromA, to: toA, insert: text.replace(/\u00a0/g, " ") });
          });
          if (!nbsp) return tr;
          return { changes, selection: tr.selection, userEvent: "input.type", scrollIntoView: true };
        }),
        EditorView.updateListener.of((u) => { if (u.docChanged && opts.onChange) opts.onChange(u.state.doc.toString()); }),
      ],
    }),
  });
  // The editable element answers value and selectionStart like the textarea it replaces.
  Object.defineProperty(view.contentDOM, "value", {
    get: () => view.state.doc.toString(),
    set: (v) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: v } }),
  });
  Object.defineProperty(view.contentDOM, "selectionStart", { get: () => view.state.selection.main.head });
  return {
    view,
    get value() { return view.state.doc.toString(); },
    set value(v) { view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: v } }); },
    focus() { view.focus(); },
    setCursor(pos) { view.dispatch({ selection: { anchor: pos } }); view.focus(); },
    clearDiagnostics() { view.dispatch(setDiagnostics(view.state, [])); },
  };
}
