package dsl

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAutomatonAcceptsWhatParticipleParses: the automaton derived from participle's grammar accepts
// a token stream exactly when participle parses it, over the canonical forms of generated trees,
// every one-token edit of them (a token dropped, doubled, or replaced by each terminal of the
// grammar), and random streams of the grammar's terminals.
func TestAutomatonAcceptsWhatParticipleParses(t *testing.T) {
	g := treeGen{r: rand.New(rand.NewPCG(*propSeed, 0x9a33))}
	alphabet := terminalTokens(lang)
	check := func(toks []token) {
		t.Helper()
		accepted := lang.newMachine().run(toks) < 0
		_, err := grammar.ParseFromLexer(mustUpgrade(toks))
		if accepted != (err == nil) {
			t.Fatalf("seed %d: the automaton accepts %v, participle parses %v: %s", *propSeed, accepted, err == nil, tokenText(toks))
		}
	}
	streams, valid := 0, 0
	for i := 0; i < 40; i++ {
		toks, errs := lex(newSource(Format(g.tree(2))))
		require.Empty(t, errs)
		body := toks[:len(toks)-1]
		eof := toks[len(toks)-1]
		edit := func(prefix []token, mid []token, rest []token) {
			s := append(append(append(append([]token{}, prefix...), mid...), rest...), eof)
			check(s)
			streams++
			if lang.newMachine().run(s) < 0 {
				valid++
			}
		}
		edit(body, nil, nil)
		for k := range body {
			edit(body[:k], nil, body[k+1:])
			edit(body[:k], []token{body[k], body[k]}, body[k+1:])
			for _, a := range alphabet {
				edit(body[:k], []token{a}, body[k+1:])
			}
		}
	}
	for i := 0; i < 5000; i++ {
		s := make([]token, 0, 8)
		for n := 1 + g.r.IntN(7); n > 0; n-- {
			s = append(s, alphabet[g.r.IntN(len(alphabet))])
		}
		check(append(s, token{typ: tEOF}))
		streams++
	}
	t.Logf("%d token streams, %d of them valid", streams, valid)
	assert.Greater(t, valid, 200)
}

// terminalTokens is one token for each terminal of the language.
func terminalTokens(l *language) []token {
	var out []token
	for _, tm := range l.terms {
		t := token{typ: tm.typ, value: tm.value, raw: tm.value, pos: Pos{Line: 1, Column: 1}}
		switch {
		case tm.typ == tEOF:
			continue
		case tm.typ == tString:
			t.value, t.raw = "x", `"x"`
		case tm.typ == tNumber:
			t.value, t.raw = "1", "1"
		case tm.typ == tOp && tm.value == "":
			t.value, t.raw = "<", "<"
		}
		out = append(out, t)
	}
	return out
}

func tokenText(toks []token) string {
	var s []string
	for _, t := range toks {
		s = append(s, t.raw)
	}
	return strings.Join(s, " ")
}

// TestOneGrammarDerivesEverything: a predicate added to the grammar, and nowhere else, is a keyword
// of the lexer, a predicate, offered where a term may start, accepted with its argument and named
// in the errors around it. (The grammar is edited in participle's EBNF of it, the form the automaton
// reads: the structs cannot change at run time.)
func TestOneGrammarDerivesEverything(t *testing.T) {
	text := grammar.String()
	require.Contains(t, text, "PUnary = ")
	l := newLanguage(strings.Replace(text, "PUnary = ", `PUnary = ("odometer_over" <string>) | `, 1))

	assert.True(t, l.keywords["odometer_over"])
	assert.True(t, l.predicates["odometer_over"])
	assert.Equal(t, "odometer_over", l.primaries[0])
	assert.False(t, lang.keywords["odometer_over"], "deriving a language changes no other")

	kw := token{typ: tKeyword, value: "odometer_over", raw: "odometer_over"}
	str := token{typ: tString, value: "5", raw: `"5"`}
	and := token{typ: tKeyword, value: "and", raw: "AND"}
	eof := token{typ: tEOF}
	assert.Equal(t, -1, l.newMachine().run([]token{kw, str, and, kw, str, eof}))

	toks := []token{kw, eof}
	m := l.newMachine()
	k := m.run(toks)
	require.Equal(t, 1, k)
	assert.Equal(t, "a quoted string", m.at(toks, k).expectedText())

	toks = []token{kw, str, kw, eof}
	m = l.newMachine()
	k = m.run(toks)
	require.Equal(t, 2, k)
	assert.Equal(t, "AND, OR or end of input", m.at(toks, k).expectedText())

	toks = []token{and, eof}
	m = l.newMachine()
	assert.Equal(t, 0, m.run(toks))
	assert.Equal(t, `a predicate, NOT, TRUE, FALSE or "("`, m.at(toks, 0).expectedText())
}

// TestWhatTheGrammarGives: the keywords, predicates and the order in which they are offered come
// from the grammar.
func TestWhatTheGrammarGives(t *testing.T) {
	var kws []string
	for k := range keywords {
		kws = append(kws, k)
	}
	sort.Strings(kws)
	assert.Equal(t, []string{"and", "attr", "false", "filter", "has_attr", "has_component", "has_package", "in", "not", "or",
		"seen_within", "true", "update_status", "vin_matches"}, kws)
	assert.Equal(t, []string{"vin_matches", "has_package", "has_component", "attr", "has_attr", "filter", "seen_within",
		"update_status", "NOT", "TRUE", "FALSE"}, lang.primaries)
	assert.Equal(t, map[string]string{"(": ")"}, lang.brackets)
}

// TestGrammarIsDocumented: every predicate of the grammar has its arguments described (for errors
// and completion) and a row in docs/filters.md, and nothing is described that the grammar lacks.
func TestGrammarIsDocumented(t *testing.T) {
	var preds []string
	for p := range predicates {
		preds = append(preds, p)
	}
	var documented []string
	for p, d := range predicateDocs {
		documented = append(documented, p)
		assert.NotEmpty(t, d.args, p)
		assert.NotEmpty(t, d.detail, p)
	}
	sort.Strings(preds)
	sort.Strings(documented)
	assert.Equal(t, preds, documented, "predicateDocs and the grammar's predicates")

	b, err := os.ReadFile("../docs/filters.md")
	require.NoError(t, err)
	for _, p := range preds {
		assert.Regexp(t, regexp.MustCompile("(?m)^\\| `"+p+" "), string(b), "docs/filters.md has no row for %s", p)
	}
	_, section, ok := strings.Cut(string(b), "\n## Grammar\n")
	require.True(t, ok, "docs/filters.md has no Grammar section")
	var block []string
	for _, line := range strings.Split(section, "\n") {
		if code, ok := strings.CutPrefix(line, "    "); ok {
			block = append(block, code)
		} else if len(block) > 0 {
			break
		}
	}
	assert.Equal(t, strings.Join(strings.Fields(grammar.String()), " "), strings.Join(strings.Fields(strings.Join(block, " ")), " "),
		"the Grammar section of docs/filters.md is participle's print of the grammar, lines broken at will")
}

// TestNestingIsTheGrammarsRecursion: each term inside a term (a NOT's operand, a parenthesised
// expression) is one level, whichever way they mix; the 257th level is the error, at its token.
func TestNestingIsTheGrammarsRecursion(t *testing.T) {
	deep := func(levels int) string {
		var b strings.Builder
		for i := 0; i < levels; i++ {
			if i%2 == 0 {
				b.WriteString("NOT ")
			} else {
				b.WriteString("(")
			}
		}
		b.WriteString("has_attr \"x\"")
		for i := 0; i < levels; i++ {
			if i%2 == 1 {
				b.WriteString(")")
			}
		}
		return b.String()
	}
	_, err := Parse(deep(MaxDepth))
	require.NoError(t, err)
	_, err = Parse(deep(MaxDepth + 1))
	require.Error(t, err)
	list := err.(ErrorList)
	require.Len(t, list, 1)
	assert.Equal(t, strings.LastIndex(deep(MaxDepth+1), "NOT"), list[0].Offset, "the error is at the 257th level's NOT")
	assert.Contains(t, list[0].Message, "nesting is deeper than 256")

	// Levels closed before others open do not add up.
	wide := strings.Repeat("(", MaxDepth) + "TRUE" + strings.Repeat(")", MaxDepth)
	_, err = Parse(wide + " AND NOT " + wide)
	require.Error(t, err, "a NOT of 256 parentheses is 257 deep")
	_, err = Parse(wide + " AND " + wide)
	require.NoError(t, err)
}

// TestEditorLanguageIsGenerated: the admin UI's editor highlights the words of this grammar, from
// web/editor/src/language.js, which is generated from it (`go test ./dsl -run TestEditorLanguage
// -update` rewrites it; then `make web` bundles it into web/static/editor.js, which is checked too).
func TestEditorLanguageIsGenerated(t *testing.T) {
	var kws, preds []string
	for _, tm := range lang.terms {
		switch {
		case tm.typ != tKeyword:
		case predicates[tm.value]:
			preds = append(preds, tm.value)
		default:
			kws = append(kws, tm.value)
		}
	}
	list := func(s []string) string {
		b, err := json.Marshal(s)
		require.NoError(t, err)
		return string(b)
	}
	want := "// Generated from the filter language's grammar (dsl/grammar.go) by\n" +
		"//   go test ./dsl -run TestEditorLanguage -update\n" +
		"// Do not edit: change the grammar, regenerate this file, then run `make web`.\n" +
		"export const KEYWORDS = " + list(kws) + ";\n" +
		"export const PREDICATES = " + list(preds) + ";\n"
	path := filepath.Join("..", "web", "editor", "src", "language.js")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, want, string(got), "web/editor/src/language.js is stale: go test ./dsl -run TestEditorLanguage -update, then make web")

	bundle, err := os.ReadFile(filepath.Join("..", "web", "static", "editor.js"))
	require.NoError(t, err)
	for _, s := range [][]string{kws, preds} {
		assert.Contains(t, string(bundle), list(s), "web/static/editor.js does not have the grammar's words: run make web")
	}
}
