package dsl

import (
	"fmt"
	"sort"
	"strings"
)

// CompletionKind says what a completion item is.
type CompletionKind string

// The kinds of completion items.
const (
	KindKeyword   CompletionKind = "keyword"
	KindPredicate CompletionKind = "predicate"
	KindPackage   CompletionKind = "package"
	KindVersion   CompletionKind = "version"
	KindComponent CompletionKind = "component"
	KindAttribute CompletionKind = "attribute"
	KindValue     CompletionKind = "value"
	KindFilter    CompletionKind = "filter"
	KindStatus    CompletionKind = "status"
)

// MaxCompletions is the most items Complete returns.
const MaxCompletions = 50

// CompletionItem is one thing that may come next: Label is what a list shows, Insert what replaces
// the source's [From, To).
type CompletionItem struct {
	Label  string         `json:"label"`
	Insert string         `json:"insert"`
	Kind   CompletionKind `json:"kind"`
	Detail string         `json:"detail,omitempty"`
}

// Completions is Complete's answer: replace expression[From:To] with an item's Insert.
type Completions struct {
	From  int              `json:"from"`
	To    int              `json:"to"`
	Items []CompletionItem `json:"items"`
}

// CompleteOptions are where completion takes names from; both may be nil.
type CompleteOptions struct {
	Filters FilterLookup // a FilterLister offers saved filter names
	Fleet   Vocabulary   // package names, versions, part numbers, attribute keys and values
}

// ErrOffset is Complete's error for an offset outside the text.
type ErrOffset struct{ Offset, Len int }

func (e ErrOffset) Error() string {
	return fmt.Sprintf("offset %d is outside the expression (0 to %d bytes)", e.Offset, e.Len)
}

// Statuses are the update statuses update_status compares with.
var Statuses = []string{"pending", "inFlight", "finished", "failed", "canceled"}

// Complete names what may come at byte offset of src: keywords and predicate names where an
// operator or a primary may come, and inside or in place of a string argument the fleet's names
// (packages, the versions of the package named before, part numbers, attribute keys and the values
// seen for the key, saved filters, statuses). Items are ranked: those that start with what is typed
// before the cursor first, then those that contain it, then those that have its characters in order,
// each by how many vehicles have them; at most
// MaxCompletions. The text need not be valid: what comes before the cursor decides.
func Complete(src string, offset int, o CompleteOptions) (Completions, error) {
	if offset < 0 || offset > len(src) {
		return Completions{}, ErrOffset{Offset: offset, Len: len(src)}
	}
	if len(src) > MaxLength {
		return Completions{From: offset, To: offset, Items: []CompletionItem{}}, nil
	}
	s := newSource(src)
	toks, _ := lex(s)
	c := &completer{src: src, offset: offset, o: o, out: Completions{From: offset, To: offset, Items: []CompletionItem{}}}
	if inComment(src, offset) {
		return c.out, nil
	}
	// The token under the cursor (being typed) and the tokens before it.
	cur := -1
	for i, t := range toks {
		end := t.off + len(t.raw)
		if t.typ == tEOF || t.off >= offset {
			break
		}
		if offset <= end && (t.typ == tWord || t.typ == tKeyword || t.typ == tString || t.typ == tNumber) {
			if t.typ == tString && offset == end && end > t.off+1 && src[end-1] == src[t.off] {
				continue // just after a closed string: it is finished
			}
			cur = i
			break
		}
	}
	before := toks
	if cur >= 0 {
		before = toks[:cur]
	} else {
		k := 0
		for k < len(toks) && toks[k].typ != tEOF && toks[k].off+len(toks[k].raw) <= offset {
			k++
		}
		before = toks[:k]
	}
	at := scan(before)
	var typed string
	if cur >= 0 {
		t := toks[cur]
		c.out.From, c.out.To = t.off, t.off+len(t.raw)
		typed = src[t.off:offset]
		if t.typ == tString {
			typed = typed[1:]
			if !(len(t.raw) > 1 && t.raw[len(t.raw)-1] == t.raw[0]) {
				// an unclosed string runs to the end of the line: replace only the word at the cursor
				c.out.To = offset + len(bareWord(src[offset:]))
			}
		}
	}
	c.typed = typed
	c.stringTyped = cur >= 0 && toks[cur].typ == tString
	c.items(at)
	return c.out, nil
}

// inComment reports whether offset is inside a comment.
func inComment(src string, offset int) bool {
	for i := 0; i < offset && i < len(src); i++ {
		switch c := src[i]; {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c && src[j] != '\n' {
				j++
			}
			if j >= offset {
				return false
			}
			i = j
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 || i+j >= offset {
				return true
			}
			i += j
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			j := strings.Index(src[i+2:], "*/")
			if j < 0 || i+2+j+2 > offset {
				return true
			}
			i += 2 + j + 1
		}
	}
	return false
}

// scan runs the grammar's automaton over toks and returns where it stands after them. After a token
// the grammar does not accept, it starts a new term there (or, when no term starts so, skips the
// token as junk after a term), so that what follows an error still completes.
func scan(toks []token) syntaxPos {
	m := lang.newMachine()
	for i, t := range toks {
		if m.step(t, i) {
			continue
		}
		m.restartTerm(i)
		if !m.step(t, i) {
			m.dropTerm()
		}
	}
	return m.at(toks, len(toks))
}

type completer struct {
	src         string
	offset      int
	o           CompleteOptions
	typed       string // what is typed of the token under the cursor (a string without its quote)
	stringTyped bool
	out         Completions
}

// candidate is an item with its rank.
type candidate struct {
	item  CompletionItem
	count int
	group int // 0 prefix, 1 contains
	order int
}

func (c *completer) items(at syntaxPos) {
	var cands []candidate
	add := func(label, insert string, kind CompletionKind, detail string, count int) {
		g := matchGroup(label, c.typed)
		if g < 0 {
			return
		}
		cands = append(cands, candidate{item: CompletionItem{Label: label, Insert: insert, Kind: kind, Detail: detail}, count: count, group: g, order: len(cands)})
	}
	keyword := func(label, insert string) { add(label, insert, KindKeyword, "", 0) }
	names := func(kind TermKind, of string, ck CompletionKind) {
		if c.o.Fleet == nil {
			return
		}
		c.o.Fleet.Terms(kind, of, func(t string, n int) bool {
			add(t, quoteFor(t), ck, vehiclesDetail(n), n)
			return true
		})
	}
	if c.stringTyped && !at.expects(tString) {
		c.out.From, c.out.To = c.offset, c.offset
		return // a string where none may come: nothing to offer
	}
	argsDone := false
	for _, id := range at.expect {
		t := at.l.terms[id]
		switch {
		case c.stringTyped && t.typ != tString && t.typ != tNumber:
			// inside a string only names come
		case t.typ == tKeyword && at.l.predicates[t.value]:
			add(t.value, t.value+" ", KindPredicate, predicateDocs[t.value].detail, 0)
		case t.typ == tKeyword:
			insert := strings.ToUpper(t.value) + " "
			if p, ok := at.l.then[id]; ok && p >= 0 { // IN is always followed by "("
				insert += at.l.terms[p].value
			}
			keyword(strings.ToUpper(t.value), insert)
		case t.typ == tPunct:
			insert := t.value
			if t.value == "," {
				insert += " " // as Format spaces a list
			}
			keyword(t.value, insert)
		case t.typ == tOp:
			for _, op := range at.ops() {
				keyword(string(op), string(op)+" ")
			}
		case (t.typ == tString || t.typ == tNumber) && !argsDone:
			argsDone = true
			c.argItems(at, add, names)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.group != b.group {
			return a.group < b.group
		}
		if a.count != b.count {
			return a.count > b.count
		}
		if a.count == 0 { // keywords, statuses, durations, saved filters: in the order offered
			return a.order < b.order
		}
		return a.item.Label < b.item.Label
	})
	for _, cd := range cands {
		if len(c.out.Items) == MaxCompletions {
			break
		}
		c.out.Items = append(c.out.Items, cd.item)
	}
}

// argItems offers what the predicate's next argument may be.
func (c *completer) argItems(at syntaxPos, add func(label, insert string, kind CompletionKind, detail string, count int), names func(TermKind, string, CompletionKind)) {
	first := ""
	if len(at.args) > 0 {
		first = at.args[0]
	}
	switch at.arg().offer {
	case offerPackages:
		names(TermPackage, "", KindPackage)
	case offerVersions:
		names(TermVersion, first, KindVersion)
	case offerComponents:
		names(TermComponent, "", KindComponent)
	case offerAttributes:
		names(TermAttribute, "", KindAttribute)
	case offerValues:
		if c.o.Fleet == nil {
			return
		}
		c.o.Fleet.Values(first, func(v Value, n int) bool {
			var b strings.Builder
			formatValue(&b, v)
			label := v.Str
			if v.IsNum {
				label = b.String()
			}
			add(label, b.String(), KindValue, vehiclesDetail(n), n)
			return true
		})
	case offerFilters:
		for _, f := range filterNames(c.o.Filters) {
			add(f, quoteFor(f), KindFilter, "saved filter", 0)
		}
	case offerDurations:
		for _, d := range []string{"1h", "24h", "7d", "30d", "90d"} {
			add(d, quoteFor(d), KindValue, "a duration: s, m, h or d", 0)
		}
	case offerStatuses:
		for _, s := range Statuses {
			add(s, quoteFor(s), KindStatus, "update status", 0)
		}
	}
}

// matchGroup ranks label against what is typed: 0 when it starts with it, 1 when it contains it,
// 2 when it has its characters in order (all ignoring case), -1 otherwise.
func matchGroup(label, typed string) int {
	if typed == "" {
		return 0
	}
	l, t := strings.ToLower(label), strings.ToLower(typed)
	switch {
	case strings.HasPrefix(l, t):
		return 0
	case strings.Contains(l, t):
		return 1
	case subsequence(t, l):
		return 2
	}
	return -1
}

// subsequence reports whether the characters of t appear in l in order ("has_pak" in "has_package").
func subsequence(t, l string) bool {
	i := 0
	for j := 0; i < len(t) && j < len(l); j++ {
		if t[i] == l[j] {
			i++
		}
	}
	return i == len(t)
}

func vehiclesDetail(n int) string {
	if n == 1 {
		return "1 vehicle"
	}
	return fmt.Sprintf("%d vehicles", n)
}
