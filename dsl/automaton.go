package dsl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2/ebnf"
	"github.com/alecthomas/participle/v2/lexer"
)

// The grammar's automaton. participle parses with the grammar of grammar.go, but it stops at the
// first error, may report it at a token before the real one after it backtracks out of a partly
// matched repetition, and says what it expected in its own words. The automaton here is built from
// participle's own grammar, as participle prints it in EBNF (grammar.String(), read back with
// participle's ebnf package), so the language is written once. It walks a token stream as an LL(1)
// parser of that grammar would, and gives
//
//   - the lexer's keywords (the grammar's literal words) and which of them are predicates (the
//     keywords that start a term and take a string next);
//   - the first token the grammar rejects and the terminals it expected there, in the grammar's
//     order (the "expected …" of every syntax error);
//   - the term being parsed at an error, to recover by replacing it (termProduction, termFiller),
//     and the tokens that may follow a term, to resume after it;
//   - the nesting depth at every token: the most frames one production of the grammar has open in
//     itself (a term in a term: a NOT's operand, a parenthesised expression), bounded by MaxDepth
//     before participle's recursive descent runs;
//   - what may come at a cursor, for completion.

// terminal is what the grammar matches one token against: a token type, and a value unless any
// token of the type matches.
type terminal struct {
	typ   lexer.TokenType
	value string
}

type nodeKind uint8

const (
	nTerm nodeKind = iota // a terminal
	nSeq                  // kids in order
	nAlt                  // one of kids
	nOpt                  // kids[0] or nothing
	nStar                 // kids[0] any number of times
	nCall                 // a production
	nRet                  // the end of a production's frame (on the automaton's stack only)
)

// gnode is a node of the grammar; the fields below kind are computed from the grammar.
type gnode struct {
	kind     nodeKind
	term     int // nTerm: terminal id
	kids     []*gnode
	prod     *production // nCall, nRet
	nullable bool
	bits     uint64 // the terminals the node can start with
	first    []int  // the same, in the grammar's order
}

type production struct {
	id   int
	name string
	body *gnode
	ret  *gnode
}

// language is what newLanguage derives from the grammar.
type language struct {
	terms      []terminal
	lits       map[string]int          // terminal id of a literal, by value
	anyOf      map[lexer.TokenType]int // terminal id of "any token of this type"
	prods      []*production
	root       *gnode      // the root production, then the end of input
	term       *production // the unit of recovery
	filler     int         // the terminal a broken term is replaced by
	then       map[int]int // a keyword's terminal -> the punctuation that always follows it
	brackets   map[string]string
	keywords   map[string]bool // the grammar's literal words
	predicates map[string]bool // the keywords that start a term and take a string next
	// primaries are the keywords that may start a term, in the grammar's order, as Format writes
	// them (predicates in lower case, the other keywords in upper case).
	primaries []string
	nodes     []*gnode
}

// keywords and predicates are the language's, for the lexer and messages (set in init).
var keywords, predicates map[string]bool

// newLanguage derives the automaton from the EBNF participle prints for the grammar.
func newLanguage(text string) *language {
	g, err := ebnf.ParseString(text)
	if err != nil {
		panic(fmt.Sprintf("dsl: participle's EBNF of the grammar does not parse: %v\n%s", err, text))
	}
	l := &language{lits: map[string]int{}, anyOf: map[lexer.TokenType]int{}, then: map[int]int{}, brackets: map[string]string{},
		keywords: map[string]bool{}, predicates: map[string]bool{}}
	byName := map[string]*production{}
	for _, p := range g.Productions {
		pr := &production{id: len(l.prods), name: p.Production}
		pr.ret = &gnode{kind: nRet, prod: pr, nullable: true}
		l.prods = append(l.prods, pr)
		byName[p.Production] = pr
	}
	for i, p := range g.Productions {
		l.prods[i].body = l.expr(p.Expression, byName)
	}
	l.root = l.node(&gnode{kind: nSeq, kids: []*gnode{l.node(&gnode{kind: nCall, prod: l.prods[0]}), l.terminal(terminal{typ: tEOF})}})
	name := termProduction.Name()
	l.term = byName[strings.ToUpper(name[:1])+name[1:]]
	if l.term == nil {
		panic("dsl: the grammar has no production " + name)
	}
	filler, ok := l.lits[termFiller]
	if !ok || l.terms[filler].typ != tKeyword {
		panic("dsl: the grammar has no keyword " + termFiller + " to recover a broken term as")
	}
	l.filler = filler
	l.analyse()

	// The keywords that start a term, and which of them are predicates: a string comes next.
	for _, id := range l.term.body.first {
		t := l.terms[id]
		if t.typ != tKeyword {
			continue
		}
		m := l.newMachine()
		m.runTo([]token{{typ: tKeyword, value: t.value}}, 1)
		if exp := m.expected(); len(exp) == 1 && l.terms[exp[0]].typ == tString {
			l.predicates[t.value] = true
			l.primaries = append(l.primaries, t.value)
		} else {
			l.primaries = append(l.primaries, strings.ToUpper(t.value))
		}
	}
	return l
}

func (l *language) node(n *gnode) *gnode {
	l.nodes = append(l.nodes, n)
	return n
}

func (l *language) expr(e *ebnf.Expression, byName map[string]*production) *gnode {
	if len(e.Alternatives) == 1 {
		return l.seq(e.Alternatives[0], byName)
	}
	n := &gnode{kind: nAlt}
	for _, s := range e.Alternatives {
		n.kids = append(n.kids, l.seq(s, byName))
	}
	return l.node(n)
}

func (l *language) seq(s *ebnf.Sequence, byName map[string]*production) *gnode {
	if len(s.Terms) == 1 {
		return l.ebnfTerm(s.Terms[0], byName)
	}
	n := &gnode{kind: nSeq}
	for _, t := range s.Terms {
		n.kids = append(n.kids, l.ebnfTerm(t, byName))
	}
	// A keyword always followed by the same punctuation (IN then "("): completion inserts both.
	for i := 0; i+1 < len(n.kids); i++ {
		a, b := n.kids[i], n.kids[i+1]
		if a.kind == nTerm && b.kind == nTerm && l.terms[a.term].typ == tKeyword && l.terms[b.term].typ == tPunct {
			if prev, ok := l.then[a.term]; ok && prev != b.term {
				l.then[a.term] = -1
			} else if !ok {
				l.then[a.term] = b.term
			}
		}
	}
	// Brackets: a sequence that ends with punctuation opened by punctuation earlier in it.
	if last := n.kids[len(n.kids)-1]; last.kind == nTerm && l.terms[last.term].typ == tPunct {
		for _, k := range n.kids[:len(n.kids)-1] {
			if k.kind == nTerm && l.terms[k.term].typ == tPunct {
				l.brackets[l.terms[k.term].value] = l.terms[last.term].value
				break
			}
		}
	}
	return l.node(n)
}

func (l *language) ebnfTerm(t *ebnf.Term, byName map[string]*production) *gnode {
	var n *gnode
	switch {
	case t.Negation:
		panic("dsl: the automaton does not support negation in the grammar")
	case t.Name != "":
		p := byName[t.Name]
		if p == nil {
			panic("dsl: the grammar refers to an unknown production " + t.Name)
		}
		n = l.node(&gnode{kind: nCall, prod: p})
	case t.Literal != "":
		v, err := strconv.Unquote(t.Literal)
		if err != nil {
			panic(fmt.Sprintf("dsl: literal %s of the grammar: %v", t.Literal, err))
		}
		n = l.terminal(l.literal(v))
	case t.Token != "":
		for name, typ := range symbols {
			if strings.EqualFold(name, t.Token) {
				n = l.terminal(terminal{typ: typ})
			}
		}
		if n == nil {
			panic("dsl: the grammar refers to an unknown token type " + t.Token)
		}
	case t.Group != nil:
		if t.Group.Lookahead != ebnf.LookaheadAssertionNone {
			panic("dsl: the automaton does not support lookahead assertions in the grammar")
		}
		n = l.expr(t.Group.Expr, byName)
	}
	switch t.Repetition {
	case "":
	case "?":
		n = l.node(&gnode{kind: nOpt, kids: []*gnode{n}})
	case "*":
		n = l.node(&gnode{kind: nStar, kids: []*gnode{n}})
	case "+":
		n = l.node(&gnode{kind: nSeq, kids: []*gnode{n, l.node(&gnode{kind: nStar, kids: []*gnode{n}})}})
	default:
		panic("dsl: the automaton does not support the repetition " + t.Repetition)
	}
	return n
}

// literal is the terminal of a literal of the grammar: the token the lexer makes of it, and a word
// is a keyword.
func (l *language) literal(v string) terminal {
	toks, errs := lex(newSource(v))
	if len(errs) > 0 || len(toks) != 2 {
		panic(fmt.Sprintf("dsl: the grammar's literal %q is not one token", v))
	}
	t := toks[0]
	switch t.typ {
	case tWord, tKeyword:
		l.keywords[strings.ToLower(v)] = true
		return terminal{typ: tKeyword, value: strings.ToLower(v)}
	case tString, tNumber, tInvalid, tEOF:
		panic(fmt.Sprintf("dsl: the grammar's literal %q is not a word, operator or punctuation", v))
	}
	return terminal{typ: t.typ, value: t.raw}
}

func (l *language) terminal(t terminal) *gnode {
	id := -1
	for i, u := range l.terms {
		if u == t {
			id = i
		}
	}
	if id < 0 {
		id = len(l.terms)
		if id == 64 {
			panic("dsl: the grammar has more than 64 terminals")
		}
		l.terms = append(l.terms, t)
		if t.value != "" {
			l.lits[t.value] = id
		} else {
			l.anyOf[t.typ] = id
		}
	}
	return l.node(&gnode{kind: nTerm, term: id})
}

// analyse computes what each node can start with, and whether it can be empty.
func (l *language) analyse() {
	for changed := true; changed; {
		changed = false
		for _, n := range l.nodes {
			nullable, first := n.nullable, n.first
			switch n.kind {
			case nTerm:
				nullable, first = false, []int{n.term}
			case nSeq:
				nullable, first = true, nil
				for _, k := range n.kids {
					first = unionIDs(first, k.first)
					if !k.nullable {
						nullable = false
						break
					}
				}
			case nAlt:
				nullable, first = false, nil
				for _, k := range n.kids {
					first = unionIDs(first, k.first)
					nullable = nullable || k.nullable
				}
			case nOpt, nStar:
				nullable, first = true, n.kids[0].first
			case nCall:
				nullable, first = n.prod.body.nullable, n.prod.body.first
			}
			if nullable != n.nullable || !equalInts(first, n.first) {
				n.nullable, n.first, changed = nullable, first, true
			}
		}
	}
	for _, n := range l.nodes {
		n.bits = 0
		for _, id := range n.first {
			n.bits |= 1 << id
		}
	}
}

func unionIDs(a, b []int) []int {
	out := append([]int(nil), a...)
	for _, x := range b {
		if !containsInt(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func containsInt(s []int, x int) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// match is the set of terminals a token matches.
func (l *language) match(t token) uint64 {
	var b uint64
	if id, ok := l.anyOf[t.typ]; ok {
		b |= 1 << id
	}
	if t.typ == tKeyword || t.typ == tPunct || t.typ == tOp {
		if id, ok := l.lits[t.value]; ok && l.terms[id].typ == t.typ {
			b |= 1 << id
		}
	}
	return b
}

// entry is one pending node of the automaton's stack; for nRet, start is the index of the
// production's first token.
type entry struct {
	n     *gnode
	start int
}

// machine runs the automaton over a token stream.
type machine struct {
	l      *language
	stack  []entry
	open   []int // frames open per production
	deepAt int   // the token at which nesting first went deeper than MaxDepth, or -1
}

func (l *language) newMachine() *machine {
	m := &machine{l: l, stack: make([]entry, 0, 32), open: make([]int, len(l.prods)), deepAt: -1}
	m.stack = append(m.stack, entry{n: l.root})
	m.expand(0, -1)
	return m
}

// expand opens the sequences and productions on top of the stack, which need no lookahead, so that
// the nesting a token opens counts at that token (at); next is the index of the token that follows,
// where the productions opened start.
func (m *machine) expand(next, at int) {
	for len(m.stack) > 0 {
		top := len(m.stack) - 1
		n := m.stack[top].n
		switch n.kind {
		case nSeq:
			m.stack = m.stack[:top]
			for i := len(n.kids) - 1; i >= 0; i-- {
				m.stack = append(m.stack, entry{n: n.kids[i]})
			}
		case nCall:
			p := n.prod
			m.stack[top] = entry{n: p.ret, start: next}
			if m.open[p.id]++; m.open[p.id]-1 > MaxDepth && m.deepAt < 0 && at >= 0 {
				m.deepAt = at
			}
			m.stack = append(m.stack, entry{n: p.body})
		default:
			return
		}
	}
}

// accepts reports whether the grammar accepts a token matching bits here.
func (m *machine) accepts(bits uint64) bool {
	var acc uint64
	for i := len(m.stack) - 1; i >= 0; i-- {
		n := m.stack[i].n
		acc |= n.bits
		if !n.nullable {
			break
		}
	}
	return acc&bits != 0
}

// step moves the automaton over toks[i] and reports whether the grammar accepts it here (when it
// does not, the automaton is left as it was).
func (m *machine) step(t token, i int) bool {
	bits := m.l.match(t)
	if !m.accepts(bits) {
		return false
	}
	for {
		top := len(m.stack) - 1
		e := m.stack[top]
		n := e.n
		switch n.kind {
		case nTerm:
			m.stack = m.stack[:top]
			m.expand(i+1, i)
			return true
		case nSeq, nCall:
			m.expand(i, i)
		case nAlt:
			m.stack = m.stack[:top]
			for _, k := range n.kids {
				if k.bits&bits != 0 {
					m.stack = append(m.stack, entry{n: k})
					break
				}
			} // none: a nullable alternative, which is empty
		case nOpt:
			m.stack = m.stack[:top]
			if n.kids[0].bits&bits != 0 {
				m.stack = append(m.stack, entry{n: n.kids[0]})
			}
		case nStar:
			if n.kids[0].bits&bits != 0 {
				m.stack = append(m.stack, entry{n: n.kids[0]})
			} else {
				m.stack = m.stack[:top]
			}
		case nRet:
			m.stack = m.stack[:top]
			m.open[n.prod.id]--
		}
	}
}

// run moves the automaton over toks and returns the index of the first token the grammar rejects,
// or -1 when it accepts them all. It stops early when nesting goes deeper than MaxDepth (deepAt).
func (m *machine) run(toks []token) int {
	for i, t := range toks {
		if !m.step(t, i) {
			return i
		}
		if m.deepAt >= 0 {
			return -1
		}
	}
	return -1
}

// runTo moves the automaton over toks[:k], as far as the grammar accepts them.
func (m *machine) runTo(toks []token, k int) {
	for i := 0; i < k; i++ {
		if !m.step(toks[i], i) {
			return
		}
	}
}

// expected lists the terminals the grammar accepts here, in the grammar's order.
func (m *machine) expected() []int {
	var out []int
	for i := len(m.stack) - 1; i >= 0; i-- {
		n := m.stack[i].n
		out = unionIDs(out, n.first)
		if !n.nullable {
			break
		}
	}
	return out
}

// termFrame is the index in the stack of the innermost open frame of the recovery production, or -1.
func (m *machine) termFrame() int {
	for i := len(m.stack) - 1; i >= 0; i-- {
		if e := m.stack[i]; e.n.kind == nRet && e.n.prod == m.l.term {
			return i
		}
	}
	return -1
}

// dropTerm pops what is left of the innermost term: it ends here.
func (m *machine) dropTerm() {
	f := m.termFrame()
	if f < 0 {
		return
	}
	for len(m.stack) > f+1 {
		if e := m.stack[len(m.stack)-1]; e.n.kind == nRet {
			m.open[e.n.prod.id]--
		}
		m.stack = m.stack[:len(m.stack)-1]
	}
}

// restartTerm drops what is left of the innermost term and starts a new one at token i.
func (m *machine) restartTerm(i int) {
	f := m.termFrame()
	if f < 0 {
		return
	}
	m.dropTerm()
	m.stack[f].start = i
	m.stack = append(m.stack, entry{n: m.l.term.body})
	m.expand(i, i)
}

// syntaxPos is where the automaton stands before token k: what the grammar expects there, and the
// term being parsed.
type syntaxPos struct {
	l       *language
	expect  []int
	bits    uint64
	start   int      // index of the first token of the innermost term
	done    bool     // that term is complete: the token is after it
	follow  uint64   // the terminals that may come after that term
	closers []int    // the terminals still needed to end the input, when done
	pred    string   // the predicate the term is, or ""
	args    []string // its string and number arguments so far
	op      bool     // it has a comparison operator
	list    int      // brackets it has opened and not closed
}

func (m *machine) at(toks []token, k int) syntaxPos {
	p := syntaxPos{l: m.l, expect: m.expected(), start: k}
	for _, id := range p.expect {
		p.bits |= 1 << id
	}
	f := m.termFrame()
	if f < 0 {
		return p
	}
	p.start, p.done = m.stack[f].start, true
	for _, e := range m.stack[f+1:] {
		p.done = p.done && e.n.nullable
	}
	for i := f - 1; i >= 0; i-- {
		n := m.stack[i].n
		p.follow |= n.bits
		if !n.nullable {
			break
		}
	}
	if p.done {
		p.closers = []int{}
		for i := f - 1; i >= 0; i-- {
			n := m.stack[i].n
			if n.kind == nTerm {
				if m.l.terms[n.term].typ == tEOF {
					break
				}
				p.closers = append(p.closers, n.term)
			} else if !n.nullable {
				p.closers = nil // a production is still needed: nothing to insert
				break
			}
		}
	}
	if p.start < k && p.start < len(toks) && toks[p.start].typ == tKeyword && m.l.predicates[toks[p.start].value] {
		p.pred = toks[p.start].value
		for _, t := range toks[p.start+1 : k] {
			switch {
			case t.typ == tString || t.typ == tNumber:
				p.args = append(p.args, t.value)
			case t.typ == tOp:
				p.op = true
			case t.typ == tPunct && m.l.brackets[t.value] != "":
				p.list++
			case t.typ == tPunct && p.list > 0 && m.l.isCloser(t.value):
				p.list--
			}
		}
	}
	return p
}

func (l *language) isCloser(v string) bool {
	for _, c := range l.brackets {
		if c == v {
			return true
		}
	}
	return false
}

// arg describes the argument that comes next, when the term is a predicate.
func (p syntaxPos) arg() argDoc {
	d, ok := predicateDocs[p.pred]
	if !ok {
		return argDoc{}
	}
	args := d.args
	if p.op && d.compared != nil {
		args = d.compared
	}
	if len(args) == 0 {
		return argDoc{}
	}
	return args[min(len(p.args), len(args)-1)]
}

// ops are the comparison operators that may come next.
func (p syntaxPos) ops() []CmpOp {
	if d, ok := predicateDocs[p.pred]; ok && d.ops != nil {
		return d.ops
	}
	return cmpOpList
}

// expectedText names what the grammar expects here: `a predicate, NOT, TRUE, FALSE or "("`.
func (p syntaxPos) expectedText() string {
	var parts []string
	pred := false
	for _, id := range p.expect {
		t := p.l.terms[id]
		switch {
		case t.typ == tKeyword && p.l.predicates[t.value]:
			if !pred {
				parts = append(parts, "a predicate")
			}
			pred = true
		case t.typ == tKeyword:
			parts = append(parts, strings.ToUpper(t.value))
		case t.typ == tString:
			what := p.arg().what
			if what == "" {
				what = "a quoted string"
			}
			parts = append(parts, what)
		case t.typ == tNumber:
			parts = append(parts, "a number")
		case t.typ == tOp:
			if ops := p.ops(); len(ops) < len(cmpOpList) {
				parts = append(parts, joinOps(ops, " or "))
			} else {
				parts = append(parts, "a comparison operator ("+cmpOps+")")
			}
		case t.typ == tEOF:
			parts = append(parts, "end of input")
		case t.typ == tPunct && p.pred != "" && p.l.brackets[t.value] != "":
			parts = append(parts, strconv.Quote(t.value)+" to open the list of values")
		default:
			parts = append(parts, strconv.Quote(t.value))
		}
	}
	switch len(parts) {
	case 0:
		return "nothing more"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

func joinOps(ops []CmpOp, sep string) string {
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = string(op)
	}
	return strings.Join(s, sep)
}

// expects reports whether a token of type typ may come here.
func (p syntaxPos) expects(typ lexer.TokenType) bool {
	for _, id := range p.expect {
		if p.l.terms[id].typ == typ {
			return true
		}
	}
	return false
}

// keywordNames are the keywords that may come here, as Format writes them.
func (p syntaxPos) keywordNames() []string {
	var names []string
	for _, id := range p.expect {
		if t := p.l.terms[id]; t.typ == tKeyword {
			names = append(names, p.l.keywordName(t.value))
		}
	}
	return names
}

// keywordName is a keyword as Format writes it: predicates in lower case, the others in upper case.
func (l *language) keywordName(kw string) string {
	if l.predicates[kw] {
		return kw
	}
	return strings.ToUpper(kw)
}
