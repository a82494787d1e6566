package dsl

import (
	"fmt"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Parse parses a filter into its tree. The error, when not nil, is an ErrorList holding every error
// found (the parser recovers at the next AND, OR or parenthesis to find more, up to MaxErrors).
func Parse(src string) (Node, error) {
	n, errs := parse(newSource(src))
	if len(errs) > 0 {
		return nil, errs
	}
	return n, nil
}

// Validate parses and checks src, with references resolved through refs (which may be nil), and
// returns the checked tree. The error is an ErrorList holding every error found: after a syntax
// error the rest of the filter is still checked. Compile does the same before it builds programs.
func Validate(src string, refs FilterLookup) (Node, error) {
	n, _, errs := parseAndCheck(newSource(src), refs)
	if len(errs) > 0 {
		return nil, errs
	}
	return n, nil
}

// parseAndCheck is Parse then Check; after syntax errors it still checks the repaired tree, and
// returns every error in source order.
func parseAndCheck(src *source, refs FilterLookup) (Node, *checker, ErrorList) {
	n, errs := parse(src)
	if n == nil {
		return nil, nil, errs
	}
	c := newChecker(refs)
	c.checkRoot(n)
	if len(errs) == 0 {
		return n, c, capErrors(c.errs, 0)
	}
	more := 0
	if k := len(errs); k > 0 && errs[k-1].More > 0 {
		more, errs[k-1].More = errs[k-1].More, 0
	}
	return n, c, capErrors(append(errs, c.errs...), more)
}

// parse returns the tree, or the errors; with syntax errors and a clean lexer it also returns the tree
// that recovery repaired (broken terms replaced by TRUE), so that Compile can check the rest of
// the filter and report the regexes, versions and references that are wrong there too.
//
// The grammar's automaton (automaton.go) runs over the tokens first: it bounds the nesting before
// participle's recursive descent, and finds the first token the grammar rejects, with what it
// expected there. participle parses the tokens the automaton accepts.
func parse(src *source) (Node, ErrorList) {
	if len(src.text) > MaxLength {
		return nil, ErrorList{src.errorAt(MaxLength, "", "expression is %d bytes long, expected at most %d", len(src.text), MaxLength)}
	}
	toks, errs := lex(src)
	if len(toks) == 1 {
		if len(errs) > 0 { // an unclosed comment took the rest: that is the error
			return nil, errs
		}
		return nil, append(errs, src.errorAt(toks[0].off, "", "empty expression, expected %s", lang.newMachine().at(toks, 0).expectedText()))
	}
	var tree Node
	lexErrs, last := len(errs), -1
	for attempt := 0; attempt < maxAttempts; attempt++ {
		m := lang.newMachine()
		k := m.run(toks)
		if m.deepAt >= 0 {
			t := toks[m.deepAt]
			return nil, append(errs, src.errorAt(t.off, t.raw, "nesting is deeper than %d, expected at most %d levels of parentheses and NOT", MaxDepth, MaxDepth))
		}
		if k < 0 {
			p, err := grammar.ParseFromLexer(mustUpgrade(toks))
			if err == nil {
				if lexErrs == 0 {
					tree = p.toAST(src)
				}
				break
			}
			// participle rejects what the automaton of its grammar accepts: trust its position
			k = failedToken(toks, err)
			if k < 0 {
				break
			}
			m = lang.newMachine()
			m.runTo(toks, k)
		}
		if toks[k].pos.Line == 0 || toks[k].off <= last {
			break // an error at a token recovery made up, or no progress: stop reporting
		}
		last = toks[k].off
		at := m.at(toks, k)
		e := src.errorAt(toks[k].off, toks[k].raw, "%s", at.message(src, toks[k]))
		if sug := at.suggest(toks[k]); sug != "" {
			e.Message += "; did you mean " + sug + "?"
			e.Length, e.Suggestion = len(toks[k].raw), sug
		}
		errs = append(errs, e)
		toks = at.recover(toks, k)
	}
	if len(errs) > 0 {
		errs = capErrors(errs, 0)
	}
	return tree, errs
}

// maxAttempts bounds the parses of one source: each syntax error costs one more, so that the errors
// past MaxErrors are counted ("… and 3 more errors") without reparsing a long broken filter without end.
const maxAttempts = 4 * MaxErrors

func mustUpgrade(toks []token) *lexer.PeekingLexer {
	pl, err := lexer.Upgrade(newTokenStream(toks))
	if err != nil { // tokenStream never fails
		panic(err)
	}
	return pl
}

// failedToken finds the token participle stopped at.
func failedToken(toks []token, err error) int {
	perr, ok := err.(participle.Error)
	if !ok {
		return -1
	}
	p := perr.Position()
	for i, t := range toks {
		if t.off == p.Offset && t.pos.Line == p.Line && t.pos.Column == p.Column {
			return i
		}
	}
	return -1
}

// message is "unexpected X, expected Y" with a hint for the common mistakes.
func (p syntaxPos) message(src *source, t token) string {
	msg := fmt.Sprintf("unexpected %s, expected %s", t.describe(), p.expectedText())
	wantsString := p.expects(tString)
	wantsValue := wantsString && p.expects(tNumber)
	switch {
	case t.typ == tKeyword && p.l.match(t)&p.follow != 0:
		// an argument is missing: no hint, quoting AND or OR (what may follow a term) is not what was meant
	case (wantsValue && (t.typ == tWord || t.typ == tKeyword || t.typ == tInvalid)) ||
		(wantsString && !wantsValue && (t.typ == tWord || t.typ == tKeyword || t.typ == tNumber || t.typ == tInvalid)):
		if w := bareWord(src.text[t.off:]); w != "" {
			msg += fmt.Sprintf("; arguments must be quoted: %s", quoteFor(w))
		}
	case t.typ == tInvalid && t.raw == "=" && p.expects(tOp):
		msg += "; write == to compare"
	case t.typ == tInvalid && t.raw == "&":
		msg += "; write AND"
	case t.typ == tInvalid && t.raw == "|":
		msg += "; write OR"
	case t.typ == tInvalid && t.raw == "!" && p.bits&p.l.match(token{typ: tKeyword, value: "not"}) != 0:
		msg += "; write NOT"
	}
	return msg
}

// suggest is the keyword nearest to a misspelt word where the grammar expects keywords, as written
// in canonical form, or "".
func (p syntaxPos) suggest(t token) string {
	if t.typ != tWord {
		return ""
	}
	names := p.keywordNames()
	if len(names) == 0 {
		return ""
	}
	return suggestName(t.raw, names)
}

// bareWord is the run of characters an author probably meant as one unquoted argument.
func bareWord(s string) string {
	end := strings.IndexAny(s, " \t\r\n(),\"'")
	if end < 0 {
		end = len(s)
	}
	return s[:end]
}

// quoteFor quotes s the way Format does.
func quoteFor(s string) string {
	if strings.Contains(s, `"`) {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

// recover rewrites the token stream so that the parse can go on past the error at k: junk after a
// complete term is dropped (and at the end of the input, what is still open is closed); a broken
// term is replaced by TRUE. Either reaches to a token that may follow a term (AND, OR, a closing
// parenthesis that is open) or the end, skipping bracketed junk whole.
func (p syntaxPos) recover(toks []token, k int) []token {
	isSync := func(i, nested int) bool {
		t := toks[i]
		return t.typ == tEOF || (nested == 0 && p.l.match(t)&p.follow != 0)
	}
	end, nested := k, 0
	if !p.done && p.list > 0 { // a broken list: skip to its end when it has one
		for j := k; toks[j].typ != tEOF; j++ {
			if toks[j].typ == tPunct && p.l.isCloser(toks[j].value) {
				end = j + 1
				break
			}
			if p.l.match(toks[j])&p.follow != 0 {
				break
			}
		}
	}
	for ; !isSync(end, nested); end++ {
		switch t := toks[end]; {
		case t.typ == tPunct && p.l.brackets[t.value] != "":
			nested++
		case t.typ == tPunct && p.l.isCloser(t.value) && nested > 0: // a stray closer is junk like the rest
			nested--
		}
	}
	out := make([]token, 0, len(toks)+len(p.closers)+1)
	if p.done {
		out = append(out, toks[:k]...)
		if toks[end].typ == tEOF && end == k {
			for _, id := range p.closers {
				out = append(out, synthetic(p.l.terms[id].typ, p.l.terms[id].value, toks[end]))
			}
		}
	} else {
		out = append(out, toks[:p.start]...)
		f := p.l.terms[p.l.filler]
		out = append(out, synthetic(f.typ, f.value, toks[end]))
	}
	return append(out, toks[end:]...)
}

func (t token) is(typ lexer.TokenType, value string) bool { return t.typ == typ && t.value == value }

// synthetic is a token recovery makes up; Line 0 marks it so that no error is reported at it.
func synthetic(typ lexer.TokenType, value string, at token) token {
	return token{typ: typ, value: value, raw: value, off: at.off, pos: Pos{Offset: at.off}}
}
