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
// that recovery repaired (broken primaries replaced by TRUE), so that Compile can check the rest of
// the filter and report the regexes, versions and references that are wrong there too.
func parse(src *source) (Node, ErrorList) {
	if len(src.text) > MaxLength {
		return nil, ErrorList{src.errorAt(MaxLength, "", "expression is %d bytes long, expected at most %d", len(src.text), MaxLength)}
	}
	toks, errs := lex(src)
	if len(toks) == 1 {
		if len(errs) > 0 { // an unclosed comment took the rest: that is the error
			return nil, errs
		}
		return nil, append(errs, src.errorAt(toks[0].off, "", "empty expression, expected %s", expectPrimary))
	}
	if e := checkTokenDepth(src, toks); e != nil {
		return nil, append(errs, e)
	}
	var tree Node
	lexErrs, last := len(errs), -1
	for attempt := 0; attempt < maxAttempts; attempt++ {
		p, err := grammar.ParseFromLexer(mustUpgrade(toks))
		if err == nil {
			if lexErrs == 0 {
				tree = p.toAST(src)
			}
			break
		}
		k, st := firstRejected(toks)
		if k < 0 { // the automaton accepts what participle does not: trust participle's position
			k = failedToken(toks, err)
			if k < 0 {
				break
			}
			st = stateBefore(toks, k)
		}
		if toks[k].pos.Line == 0 || toks[k].off <= last {
			break // an error at a token recovery made up, or no progress: stop reporting
		}
		last = toks[k].off
		e := src.errorAt(toks[k].off, toks[k].raw, "%s", st.message(src, toks[k]))
		if sug := st.suggest(toks[k]); sug != "" {
			e.Message += "; did you mean " + sug + "?"
			e.Length, e.Suggestion = len(toks[k].raw), sug
		}
		errs = append(errs, e)
		toks = st.recover(toks, k)
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

// checkTokenDepth bounds nesting before the recursive descent: each open parenthesis and each NOT
// whose operand has not ended counts one.
func checkTokenDepth(src *source, toks []token) *Error {
	depth, pendingNots := 0, 0
	var stack []int // NOTs waiting for each open parenthesis to close
	for _, t := range toks {
		switch {
		case t.typ == tKeyword && t.value == "not":
			pendingNots++
			depth++
		case t.typ == tPunct && t.value == "(":
			stack = append(stack, pendingNots)
			pendingNots = 0
			depth++
		case t.typ == tPunct && t.value == ")":
			if len(stack) > 0 {
				depth -= 1 + stack[len(stack)-1]
				stack = stack[:len(stack)-1]
			}
		case t.typ == tKeyword && (predicates[t.value] || t.value == "true" || t.value == "false"):
			depth -= pendingNots
			pendingNots = 0
		}
		if depth > MaxDepth {
			return src.errorAt(t.off, t.raw, "nesting is deeper than %d, expected at most %d levels of parentheses and NOT", MaxDepth, MaxDepth)
		}
	}
	return nil
}

// parser states between tokens, used to say what was expected where participle stopped and how to
// skip past the error.
type state int

const (
	sPrimary    state = iota // a predicate, NOT, TRUE, FALSE or "("
	sAfter                   // AND, OR, ")" or the end
	sArg                     // the quoted argument of pred
	sPkgSecond               // has_package "n" then a string or an operator
	sPkgVersion              // has_package "n" OP then the version
	sAttrOp                  // attr "k" then an operator or IN
	sAttrValue               // attr "k" OP then a value
	sInOpen                  // attr "k" IN then "("
	sInValue                 // a value in the IN list
	sInNext                  // "," or ")" in the IN list
)

type parseState struct {
	st           state
	pred         string // predicate keyword of the primary being parsed
	depth        int    // open expression parentheses
	primaryStart int    // index of the first token of the primary being parsed
}

const expectPrimary = `a predicate, NOT, TRUE, FALSE or "("`

var argWhat = map[string]string{
	"vin_matches":   "the VIN regex",
	"has_package":   "the package name",
	"has_component": "the part number regex",
	"attr":          "the attribute name",
	"has_attr":      "the attribute name",
	"filter":        "the filter name",
	"seen_within":   `the duration, such as "7d"`,
	"update_status": "the package name",
}

// firstRejected runs the grammar's automaton over toks and returns the first token it does not accept
// and the state before it, or -1 when it accepts them all. The grammar is LL(1), so this is the token
// where the parse really fails; participle may report an earlier one after it backtracks out of a
// partly matched repetition (`attr "k" IN ("a",)` fails at ")", not at ",").
func firstRejected(toks []token) (int, parseState) {
	ps := parseState{st: sPrimary}
	for i, t := range toks {
		if ps.st == sPrimary {
			ps.primaryStart = i
		}
		if !ps.step(t) {
			return i, ps
		}
		if t.typ == tEOF {
			break
		}
	}
	return -1, ps
}

// stateBefore runs the grammar's automaton over toks[:k].
func stateBefore(toks []token, k int) parseState {
	ps := parseState{st: sPrimary}
	for i := 0; i < k; i++ {
		if ps.st == sPrimary {
			ps.primaryStart = i
		}
		ps.step(toks[i])
	}
	if ps.st == sPrimary {
		ps.primaryStart = k
	}
	return ps
}

// step moves the automaton over t and reports whether the grammar accepts t in the current state
// (when it does not, the state is left as it was).
func (ps *parseState) step(t token) bool {
	switch ps.st {
	case sPrimary:
		switch {
		case t.is(tKeyword, "not"):
		case t.is(tPunct, "("):
			ps.depth++
		case t.is(tKeyword, "true"), t.is(tKeyword, "false"):
			ps.st = sAfter
		case t.typ == tKeyword && predicates[t.value]:
			ps.st, ps.pred = sArg, t.value
		default:
			return false
		}
	case sAfter:
		switch {
		case t.is(tKeyword, "and"), t.is(tKeyword, "or"):
			ps.st = sPrimary
		case t.is(tPunct, ")") && ps.depth > 0:
			ps.depth--
		case t.typ == tEOF && ps.depth == 0:
		default:
			return false
		}
	case sArg:
		if t.typ != tString {
			return false
		}
		switch ps.pred {
		case "has_package":
			ps.st = sPkgSecond
		case "update_status":
			ps.st = sUpdVersion
		case "attr":
			ps.st = sAttrOp
		default:
			ps.st = sAfter
		}
	case sPkgSecond:
		switch t.typ {
		case tOp:
			ps.st = sPkgVersion
		case tString:
			ps.st = sAfter
		default:
			return false
		}
	case sPkgVersion:
		if t.typ != tString {
			return false
		}
		ps.st = sAfter
	case sAttrValue:
		if t.typ != tString && t.typ != tNumber {
			return false
		}
		ps.st = sAfter
	case sAttrOp:
		switch {
		case t.typ == tOp:
			ps.st = sAttrValue
		case t.is(tKeyword, "in"):
			ps.st = sInOpen
		default:
			return false
		}
	case sInOpen:
		if !t.is(tPunct, "(") {
			return false
		}
		ps.st = sInValue
	case sInValue:
		if t.typ != tString && (t.typ != tNumber || ps.pred == "update_status") {
			return false
		}
		ps.st = sInNext
	case sUpdVersion, sUpdStatus:
		if t.typ != tString {
			return false
		}
		ps.st = map[state]state{sUpdVersion: sUpdOp, sUpdStatus: sAfter}[ps.st]
	case sUpdOp:
		switch {
		case t.typ == tOp:
			ps.st = sUpdStatus
		case t.is(tKeyword, "in"):
			ps.st = sInOpen
		default:
			return false
		}
	case sInNext:
		switch {
		case t.is(tPunct, ","):
			ps.st = sInValue
		case t.is(tPunct, ")"):
			ps.st = sAfter
		default:
			return false
		}
	}
	return true
}

func (t token) is(typ lexer.TokenType, value string) bool { return t.typ == typ && t.value == value }

const cmpOps = "==, !=, <, <=, >, >="

func (ps parseState) expected() string {
	switch ps.st {
	case sPrimary:
		return expectPrimary
	case sAfter:
		if ps.depth > 0 {
			return `AND, OR or ")"`
		}
		return "AND, OR or end of input"
	case sArg:
		return "a quoted string (" + argWhat[ps.pred] + ")"
	case sPkgSecond:
		return "a quoted string (the version regex) or a comparison operator (" + cmpOps + ")"
	case sPkgVersion:
		return `a quoted version (such as "1.2.3")`
	case sAttrOp:
		return "a comparison operator (" + cmpOps + ") or IN"
	case sInValue:
		if ps.pred == "update_status" {
			return "a quoted status (" + statusList + ")"
		}
		return "a quoted string or a number"
	case sAttrValue:
		return "a quoted string or a number"
	case sUpdVersion:
		return `a quoted version (the exact version, such as "1.2.3")`
	case sUpdOp:
		return "== or != or IN"
	case sUpdStatus:
		return "a quoted status (" + statusList + ")"
	case sInOpen:
		return `"(" to open the list of values`
	case sInNext:
		return `"," or ")"`
	}
	return "something else"
}

// message is "unexpected X, expected Y" with a hint for the common mistakes.
func (ps parseState) message(src *source, t token) string {
	msg := fmt.Sprintf("unexpected %s, expected %s", t.describe(), ps.expected())
	wantsString := ps.st == sArg || ps.st == sPkgSecond || ps.st == sPkgVersion || ps.st == sUpdVersion || ps.st == sUpdStatus
	wantsValue := ps.st == sAttrValue || ps.st == sInValue
	switch {
	case t.is(tKeyword, "and") || t.is(tKeyword, "or"):
		// an argument is missing: no hint, quoting AND or OR is not what was meant
	case (wantsString && (t.typ == tWord || t.typ == tKeyword || t.typ == tNumber || t.typ == tInvalid)) ||
		(wantsValue && (t.typ == tWord || t.typ == tKeyword || t.typ == tInvalid)):
		if w := bareWord(src.text[t.off:]); w != "" {
			msg += fmt.Sprintf("; arguments must be quoted: %s", quoteFor(w))
		}
	case t.typ == tInvalid && t.raw == "=" && (ps.st == sAttrOp || ps.st == sPkgSecond):
		msg += "; write == to compare"
	case t.typ == tInvalid && t.raw == "&":
		msg += "; write AND"
	case t.typ == tInvalid && t.raw == "|":
		msg += "; write OR"
	case t.typ == tInvalid && t.raw == "!" && ps.st == sPrimary:
		msg += "; write NOT"
	}
	return msg
}

// suggest is the keyword nearest to a misspelt word where the state expects a keyword, as written
// in canonical form, or "".
func (ps parseState) suggest(t token) string {
	if t.typ != tWord {
		return ""
	}
	var names []string
	switch ps.st {
	case sPrimary:
		names = primaryKeywords
	case sAfter:
		names = []string{"AND", "OR"}
	case sAttrOp, sUpdOp:
		names = []string{"IN"}
	default:
		return ""
	}
	return suggestName(t.raw, names)
}

// primaryKeywords are the words that can start a primary, as Format writes them.
var primaryKeywords = []string{"vin_matches", "has_package", "has_component", "attr", "has_attr", "filter", "seen_within", "update_status", "NOT", "TRUE", "FALSE"}

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
// complete primary is dropped; a broken primary is replaced by TRUE, up to the next AND, OR, closing
// parenthesis or the end.
func (ps parseState) recover(toks []token, k int) []token {
	isSync := func(i, nested int) bool {
		t := toks[i]
		return t.typ == tEOF || (nested == 0 && (t.is(tKeyword, "and") || t.is(tKeyword, "or"))) ||
			(nested == 0 && t.is(tPunct, ")") && ps.depth > 0)
	}
	end, nested := k, 0
	if ps.st == sInValue || ps.st == sInNext { // skip to the end of the list when it has one
		for j := k; toks[j].typ != tEOF && !toks[j].is(tKeyword, "and") && !toks[j].is(tKeyword, "or"); j++ {
			if toks[j].is(tPunct, ")") {
				end = j + 1
				break
			}
		}
	}
	for ; !isSync(end, nested); end++ {
		switch {
		case toks[end].is(tPunct, "("):
			nested++
		case toks[end].is(tPunct, ")") && nested > 0: // a stray ")" is junk like the rest
			nested--
		}
	}
	out := make([]token, 0, len(toks)+ps.depth+1)
	if ps.st == sAfter {
		out = append(out, toks[:k]...)
		if toks[end].typ == tEOF && end == k && ps.depth > 0 {
			for i := 0; i < ps.depth; i++ {
				out = append(out, synthetic(tPunct, ")", toks[end]))
			}
		}
	} else {
		out = append(out, toks[:ps.primaryStart]...)
		out = append(out, synthetic(tKeyword, "true", toks[end]))
	}
	return append(out, toks[end:]...)
}

// synthetic is a token recovery makes up; Line 0 marks it so that no error is reported at it.
func synthetic(typ lexer.TokenType, value string, at token) token {
	return token{typ: typ, value: value, raw: value, off: at.off, pos: Pos{Offset: at.off}}
}
