package dsl

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
)

// TermKind names a kind of term a fleet has: what Vocabulary lists.
type TermKind int

// The kinds of fleet terms.
const (
	TermPackage   TermKind = iota // package names (installed, or with updates)
	TermVersion                   // versions of one package, installed
	TermComponent                 // installed part numbers
	TermAttribute                 // attribute keys
)

// Vocabulary is what lint and completion know of the fleet: its distinct names, each with how many
// vehicles have it. The resolver implements it from its fleet index, without scanning vehicles.
type Vocabulary interface {
	// Terms calls fn for every distinct term of kind, with the number of vehicles that have it, until
	// fn returns false. For TermVersion, of is the package name (case-insensitive); otherwise "".
	Terms(kind TermKind, of string, fn func(term string, vehicles int) bool)
	// Values calls fn for every distinct value of attribute key, with the number of vehicles that
	// have it, until fn returns false.
	Values(key string, fn func(v Value, vehicles int) bool)
	// HasVINPrefix reports whether some vehicle's VIN starts with prefix.
	HasVINPrefix(prefix string) bool
}

// Diagnostic is one error or warning of Lint: where it is (1-based line and column, byte offset and
// length in the source), what it says, and the text that could replace the source's
// [Offset, Offset+Length) when there is a suggestion.
type Diagnostic struct {
	Line       int    `json:"line"`
	Column     int    `json:"column"`
	Offset     int    `json:"offset"`
	Length     int    `json:"length"`
	Message    string `json:"message"`
	Suggestion string `json:"suggestion,omitempty"`
}

// LintResult is Lint's answer: Valid is true when there are no errors; warnings never make a filter
// invalid.
type LintResult struct {
	Valid    bool         `json:"valid"`
	Errors   []Diagnostic `json:"errors"`
	Warnings []Diagnostic `json:"warnings"`
}

// LintOptions are what Lint checks a filter against; every field may be zero.
type LintOptions struct {
	// Filters resolves references; a FilterLister also gives the nearest saved name for an unknown one.
	Filters FilterLookup
	// Name is the name the filter is being saved under, if any, so that a cycle through it is found.
	Name string
	// Fleet gives the warnings about names no vehicle has; nil: no fleet warnings.
	Fleet Vocabulary
}

// ValidateFilter is the one validity rule of a filter, shared by the validate endpoint, the CLI and
// saving: src must parse and check with the saved filters refs (which may be nil) and, when name is
// not empty, with itself saved under name, so that a reference cycle through it is an error. It
// returns the checked tree, or an ErrorList.
func ValidateFilter(name, src string, refs FilterLookup) (Node, error) {
	if name != "" {
		refs = WithFilter(refs, name, src)
	}
	return Validate(src, refs)
}

// Lint validates src as ValidateFilter does and, when it is valid, adds warnings about what it
// probably does not mean: names and regexes that nothing in the fleet has (with the nearest known
// name), and sub-expressions that are provably always true or always false. Errors carry the
// suggestions of the parser and checker (the nearest keyword, the nearest saved filter).
func Lint(src string, o LintOptions) LintResult {
	res := LintResult{Errors: []Diagnostic{}, Warnings: []Diagnostic{}}
	refs := o.Filters
	if o.Name != "" {
		refs = WithFilter(refs, o.Name, src)
	}
	s := newSource(src)
	n, _, errs := parseAndCheck(s, refs)
	for _, e := range errs {
		d := Diagnostic{Line: e.Line, Column: e.Column, Offset: e.Offset, Length: e.Length, Message: e.Message, Suggestion: e.Suggestion}
		if d.Length == 0 {
			d.Length = len(e.Token)
		}
		if e.More > 0 {
			d.Message += "; " + moreErrors(e.More)
		}
		res.Errors = append(res.Errors, d)
	}
	res.Valid = len(errs) == 0
	if !res.Valid || n == nil {
		return res
	}
	l := &linter{src: s, fleet: o.Fleet}
	l.walk(n)
	sort.SliceStable(l.warnings, func(i, j int) bool { return l.warnings[i].Offset < l.warnings[j].Offset })
	if len(l.warnings) > MaxErrors {
		more := len(l.warnings) - MaxErrors
		l.warnings = l.warnings[:MaxErrors]
		l.warnings[MaxErrors-1].Message += "; " + strings.Replace(moreErrors(more), "error", "warning", 1)
	}
	res.Warnings = append(res.Warnings, l.warnings...)
	return res
}

type linter struct {
	src      *source
	fleet    Vocabulary
	warnings []Diagnostic
}

// warnAt warns at [off, end) of the source.
func (l *linter) warnAt(off, end int, suggestion, format string, args ...any) {
	p := l.src.pos(off)
	l.warnings = append(l.warnings, Diagnostic{Line: p.Line, Column: p.Column, Offset: off, Length: end - off,
		Message: fmt.Sprintf(format, args...), Suggestion: suggestion})
}

// warnStr warns at a string argument (its quotes included).
func (l *linter) warnStr(s Str, suggestion, format string, args ...any) {
	l.warnAt(s.At.Offset, l.strEnd(s.At.Offset), suggestion, format, args...)
}

// strEnd is the offset after the string token starting at off.
func (l *linter) strEnd(off int) int {
	t := l.src.text
	if off >= len(t) {
		return off
	}
	q := t[off]
	if q != '"' && q != '\'' {
		return off
	}
	if i := strings.IndexByte(t[off+1:], q); i >= 0 {
		return off + 1 + i + 1
	}
	return len(t)
}

// end is the offset just after the last token of n (closing parentheses left out).
func (l *linter) end(n Node) int {
	switch n := n.(type) {
	case *Or:
		return l.end(n.Terms[len(n.Terms)-1])
	case *And:
		return l.end(n.Terms[len(n.Terms)-1])
	case *Not:
		return l.end(n.X)
	case *Const:
		if n.Value {
			return n.At.Offset + len("true")
		}
		return n.At.Offset + len("false")
	case *VINMatches:
		return l.strEnd(n.Regex.At.Offset)
	case *HasPackage:
		return l.strEnd(n.Version.At.Offset)
	case *HasPackageVersion:
		return l.strEnd(n.Version.At.Offset)
	case *HasComponent:
		return l.strEnd(n.Part.At.Offset)
	case *AttrCompare:
		return l.litEnd(n.Value)
	case *AttrIn:
		return l.litEnd(n.Values[len(n.Values)-1])
	case *HasAttr:
		return l.strEnd(n.Key.At.Offset)
	case *FilterRef:
		return l.strEnd(n.Name.At.Offset)
	}
	return l.fleetStateEnd(n)
}

func (l *linter) litEnd(v Lit) int {
	if !v.Value.IsNum {
		return l.strEnd(v.At.Offset)
	}
	t, i := l.src.text, v.At.Offset
	for i < len(t) && (isDigit(t[i]) || t[i] == '-' || t[i] == '.') {
		i++
	}
	return i
}

func (l *linter) walk(n Node) {
	switch n := n.(type) {
	case *Or:
		l.junction(n, n.Terms, true)
		for _, t := range n.Terms {
			l.walk(t)
		}
	case *And:
		l.junction(n, n.Terms, false)
		l.ranges(n)
		for _, t := range n.Terms {
			l.walk(t)
		}
	case *Not:
		l.walk(n.X)
	default:
		if l.fleet != nil {
			l.leaf(n)
		}
	}
}

// junction warns about an OR that is always true or an AND that is always false: a constant that
// decides it, or a term and its negation side by side.
func (l *linter) junction(n Node, terms []Node, isOr bool) {
	what, always := "AND", "false"
	if isOr {
		what, always = "OR", "true"
	}
	for _, t := range terms {
		if c, ok := t.(*Const); ok && c.Value == isOr {
			l.warnAt(n.Pos().Offset, l.end(n), "", "this %s is always %s: %s is one of its terms", what, always, strings.ToUpper(always))
			return
		}
	}
	for i, t := range terms {
		for j, u := range terms {
			if nt, ok := u.(*Not); ok && i != j && Equal(t, nt.X) {
				l.warnAt(n.Pos().Offset, l.end(n), "", "this %s is always %s: it has both %s and %s", what, always, Format(t), Format(u))
				return
			}
		}
	}
}

// bound is one side of a range of attribute values.
type bound struct {
	set       bool
	v         Value
	inclusive bool
}

// attrRange is what the comparisons of one AND allow for one attribute, per kind of value.
type attrRange struct {
	key    string
	kinds  map[bool]bool // IsNum -> still possible; nil: both
	lo, hi [2]bound      // by kind: 0 string, 1 number
	eq     []Value
	ne     []Value
	in     [][]Value
	terms  []Node
}

// ranges warns when the attribute comparisons ANDed together admit no value of one attribute:
// `attr "year" > 2030 AND attr "year" < 2000`, `attr "k" == 1 AND attr "k" == "a"`.
func (l *linter) ranges(n *And) {
	byKey := map[string]*attrRange{}
	var order []string
	get := func(k string) *attrRange {
		r := byKey[k]
		if r == nil {
			r = &attrRange{key: k}
			byKey[k] = r
			order = append(order, k)
		}
		return r
	}
	for _, t := range n.Terms {
		switch t := t.(type) {
		case *AttrCompare:
			r := get(t.Key.Value)
			r.terms = append(r.terms, t)
			r.restrictKinds(t.Value.Value.IsNum)
			r.add(t.Op, t.Value.Value)
		case *AttrIn:
			r := get(t.Key.Value)
			r.terms = append(r.terms, t)
			kinds := map[bool]bool{}
			vals := make([]Value, len(t.Values))
			for i, v := range t.Values {
				kinds[v.Value.IsNum] = true
				vals[i] = v.Value
			}
			if !kinds[true] {
				r.restrictKinds(false)
			} else if !kinds[false] {
				r.restrictKinds(true)
			}
			r.in = append(r.in, vals)
		}
	}
	for _, k := range order {
		r := byKey[k]
		if len(r.terms) < 2 || r.satisfiable() {
			continue
		}
		parts := make([]string, len(r.terms))
		for i, t := range r.terms {
			parts[i] = Format(t)
		}
		l.warnAt(n.At.Offset, l.end(n), "", "this AND is always false: no value of attribute %s satisfies %s", quoteFor(k), strings.Join(parts, " AND "))
	}
}

func (r *attrRange) restrictKinds(isNum bool) {
	if r.kinds == nil {
		r.kinds = map[bool]bool{true: true, false: true}
	}
	r.kinds[!isNum] = false
}

func kindIndex(v Value) int {
	if v.IsNum {
		return 1
	}
	return 0
}

func (r *attrRange) add(op CmpOp, v Value) {
	k := kindIndex(v)
	tighter := func(b *bound, lower bool, inclusive bool) {
		if !b.set {
			*b = bound{set: true, v: v, inclusive: inclusive}
			return
		}
		c, _ := compareValues(v, b.v)
		if (lower && c > 0) || (!lower && c < 0) || (c == 0 && !inclusive) {
			*b = bound{set: true, v: v, inclusive: inclusive}
		}
	}
	switch op {
	case OpEq:
		r.eq = append(r.eq, v)
	case OpNe:
		r.ne = append(r.ne, v)
	case OpGt:
		tighter(&r.lo[k], true, false)
	case OpGe:
		tighter(&r.lo[k], true, true)
	case OpLt:
		tighter(&r.hi[k], false, false)
	case OpLe:
		tighter(&r.hi[k], false, true)
	}
}

// allows reports whether value v meets every constraint of its kind.
func (r *attrRange) allows(v Value) bool {
	if r.kinds != nil && !r.kinds[v.IsNum] {
		return false
	}
	k := kindIndex(v)
	if b := r.lo[k]; b.set {
		if c, _ := compareValues(v, b.v); c < 0 || (c == 0 && !b.inclusive) {
			return false
		}
	}
	if b := r.hi[k]; b.set {
		if c, _ := compareValues(v, b.v); c > 0 || (c == 0 && !b.inclusive) {
			return false
		}
	}
	for _, e := range r.eq {
		if e != v {
			return false
		}
	}
	for _, e := range r.ne {
		if e == v {
			return false
		}
	}
	for _, list := range r.in {
		found := false
		for _, e := range list {
			if c, ok := compareValues(v, e); ok && c == 0 {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// satisfiable is false only when no value can meet every constraint (it errs towards true).
func (r *attrRange) satisfiable() bool {
	if r.kinds != nil && !r.kinds[true] && !r.kinds[false] {
		return false
	}
	// A value written in the filter decides it when it must be one of them.
	if len(r.eq) > 0 {
		return r.allows(r.eq[0])
	}
	if len(r.in) > 0 {
		for _, v := range r.in[0] {
			if r.allows(v) {
				return true
			}
		}
		return false
	}
	for k := 0; k < 2; k++ {
		if r.kinds != nil && !r.kinds[k == 1] {
			continue
		}
		lo, hi := r.lo[k], r.hi[k]
		if !lo.set || !hi.set {
			return true
		}
		c, _ := compareValues(lo.v, hi.v)
		if c < 0 {
			return true
		}
		if c == 0 && lo.inclusive && hi.inclusive && r.allows(lo.v) {
			return true
		}
	}
	return false
}

// isLiteral reports a regex without metacharacters: the author meant that text.
func isLiteral(re string) bool { return regexp.QuoteMeta(re) == re }

// leaf warns about a predicate's names and regexes that nothing in the fleet has.
func (l *linter) leaf(n Node) {
	switch n := n.(type) {
	case *VINMatches:
		if prefix, _, anchored := literalPrefix(n.Regex.Value); anchored && prefix != "" && !l.fleet.HasVINPrefix(prefix) {
			l.warnStr(n.Regex, "", "no VIN starts with %s", quoteFor(prefix))
		}
	case *HasPackage:
		l.packageRegex(n)
	case *HasPackageVersion:
		name, ok := l.exactName(TermPackage, n.Name)
		if !ok {
			l.unknownName(TermPackage, n.Name, "no installed package is named %s")
			return
		}
		want, _ := ParseVersion(n.Version.Value)
		found := false
		l.fleet.Terms(TermVersion, name, func(v string, _ int) bool {
			have, err := ParseVersion(v)
			found = err == nil && compareOp(n.Op, have.Compare(want))
			return !found
		})
		if !found {
			l.warnStr(n.Version, "", "no installed version of %s is %s %s", quoteFor(name), n.Op, n.Version.Value)
		}
	case *HasComponent:
		l.regexTerms(TermComponent, n.Part, "no installed part number contains %s", "no installed part number matches %s")
	case *AttrCompare:
		l.attrKey(n.Key)
	case *AttrIn:
		l.attrKey(n.Key)
	case *HasAttr:
		l.attrKey(n.Key)
	default:
		l.fleetStateLeaf(n)
	}
}

// exactName finds the term equal to s (case-insensitively for packages) and returns it as the fleet
// spells it.
func (l *linter) exactName(kind TermKind, s Str) (string, bool) {
	var got string
	l.fleet.Terms(kind, "", func(t string, _ int) bool {
		if t == s.Value || (kind == TermPackage && strings.EqualFold(t, s.Value)) {
			got = t
			return false
		}
		return true
	})
	return got, got != ""
}

// unknownName warns that no vehicle has the name s, suggesting the nearest term of kind.
func (l *linter) unknownName(kind TermKind, s Str, format string) {
	near := newNearest(s.Value)
	l.fleet.Terms(kind, "", func(t string, _ int) bool {
		near.offer(t)
		return true
	})
	msg := fmt.Sprintf(format, quoteFor(s.Value))
	sug := ""
	if near.found() {
		sug = quoteFor(near.best)
		msg += fmt.Sprintf("; did you mean %s?", sug)
	}
	l.warnStr(s, sug, "%s", msg)
}

func (l *linter) attrKey(s Str) {
	if _, ok := l.exactName(TermAttribute, s); !ok {
		l.unknownName(TermAttribute, s, "no vehicle has attribute %s")
	}
}

// regexTerms warns when the regex s matches no term of kind: a literal with the nearest term that
// has something like it, any other regex plainly.
func (l *linter) regexTerms(kind TermKind, s Str, literalFormat, regexFormat string) bool {
	m := compileMatcher(s.Value)
	found := false
	l.fleet.Terms(kind, "", func(t string, _ int) bool {
		found = m.match(t)
		return !found
	})
	if found {
		return true
	}
	if isLiteral(s.Value) {
		l.unknownName(kind, s, literalFormat)
	} else {
		l.warnStr(s, "", regexFormat, quoteFor(s.Value))
	}
	return false
}

func (l *linter) packageRegex(n *HasPackage) {
	if !l.regexTerms(TermPackage, n.Name, "no installed package name contains %s", "no installed package name matches %s") {
		return
	}
	if matchesEverything(n.Version.Value) {
		return
	}
	name, version := compileMatcher(n.Name.Value), compileMatcher(n.Version.Value)
	found := false
	l.fleet.Terms(TermPackage, "", func(p string, _ int) bool {
		if !name.match(p) {
			return true
		}
		l.fleet.Terms(TermVersion, p, func(v string, _ int) bool {
			found = version.match(v)
			return !found
		})
		return !found
	})
	if !found {
		l.warnStr(n.Version, "", "no installed package whose name matches %s has a version matching %s", quoteFor(n.Name.Value), quoteFor(n.Version.Value))
	}
}

// matchesEverything reports a regex that matches every string (such as "" or ".*").
func matchesEverything(re string) bool {
	r, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return false
	}
	r = r.Simplify()
	switch r.Op {
	case syntax.OpEmptyMatch:
		return true
	case syntax.OpStar:
		return r.Sub[0].Op == syntax.OpAnyChar || r.Sub[0].Op == syntax.OpAnyCharNotNL
	}
	return false
}

// Refs lists the saved filters a tree references itself (not through other filters), lower-cased,
// sorted and without repeats.
func Refs(n Node) []string {
	var names []string
	var walk func(Node)
	walk = func(n Node) {
		switch n := n.(type) {
		case *Or:
			for _, t := range n.Terms {
				walk(t)
			}
		case *And:
			for _, t := range n.Terms {
				walk(t)
			}
		case *Not:
			walk(n.X)
		case *FilterRef:
			names = append(names, strings.ToLower(n.Name.Value))
		}
	}
	walk(n)
	sort.Strings(names)
	out := names[:0]
	for i, s := range names {
		if i == 0 || s != names[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// Print writes every error and then every warning of r the way the CLI shows them: the source line,
// a caret under the column, "line:column: message" (warnings say "warning:").
func (r LintResult) Print(src string) string {
	s := newSource(src)
	var b strings.Builder
	write := func(d Diagnostic, prefix string) {
		e := &Error{Line: d.Line, Column: d.Column, Message: prefix + d.Message, line: s.line(d.Line)}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		e.write(&b)
	}
	for _, d := range r.Errors {
		write(d, "")
	}
	for _, d := range r.Warnings {
		write(d, "warning: ")
	}
	return b.String()
}
