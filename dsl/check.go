package dsl

import (
	"errors"
	"fmt"
	"regexp/syntax"
	"sort"
	"strings"
)

// FilterLookup resolves `filter "name"` references (names compare case-insensitively).
type FilterLookup interface {
	LookupFilter(name string) (expression string, ok bool)
}

// LookupFunc adapts a function to FilterLookup.
type LookupFunc func(name string) (string, bool)

// LookupFilter calls f.
func (f LookupFunc) LookupFilter(name string) (string, bool) { return f(name) }

// FilterLister is a FilterLookup that also lists the saved filters' names, so that an unknown
// reference can suggest the nearest one and completion can offer them.
type FilterLister interface {
	FilterLookup
	FilterNames() []string
}

// filterNames lists the names refs knows, when it can.
func filterNames(refs FilterLookup) []string {
	if l, ok := refs.(FilterLister); ok {
		return l.FilterNames()
	}
	return nil
}

// WithFilter returns refs with one filter added or replaced: the one being created or updated, so
// that a reference cycle through it is found before it is saved. refs may be nil.
func WithFilter(refs FilterLookup, name, expression string) FilterLookup {
	return withFilter{refs: refs, name: name, expression: expression}
}

type withFilter struct {
	refs             FilterLookup
	name, expression string
}

func (w withFilter) LookupFilter(n string) (string, bool) {
	if strings.EqualFold(n, w.name) {
		return w.expression, true
	}
	if w.refs == nil {
		return "", false
	}
	return w.refs.LookupFilter(n)
}

func (w withFilter) FilterNames() []string {
	names := filterNames(w.refs)
	for _, n := range names {
		if strings.EqualFold(n, w.name) {
			return names
		}
	}
	return append(names[:len(names):len(names)], w.name)
}

// Check reports what the grammar cannot: regexes that do not compile (the column points into the
// string, at the problem), invalid versions in typed comparisons, empty names, unknown filter
// references and reference cycles, nesting deeper than MaxDepth, and references that expand to
// more than MaxExpanded nodes. refs may be nil, and then every reference is unknown. The error, when
// not nil, is an ErrorList.
func Check(n Node, refs FilterLookup) error {
	c := newChecker(refs)
	c.checkRoot(n)
	if len(c.errs) > 0 {
		return capErrors(c.errs, 0)
	}
	return nil
}

type checker struct {
	refs  FilterLookup
	errs  ErrorList
	trees map[string]Node  // lower-cased name -> parsed referenced filter
	bad   map[string]error // lower-cased name -> why it cannot be used
	ok    map[string]bool  // lower-cased name -> checked; nothing it reaches is wrong
}

func newChecker(refs FilterLookup) *checker {
	return &checker{refs: refs, trees: map[string]Node{}, bad: map[string]error{}, ok: map[string]bool{}}
}

func (c *checker) add(e *Error) { c.errs = append(c.errs, e) }

// errorAt reports at a string argument: at its opening quote when off is -1 (the whole string is
// wrong), else at byte offset off inside its value.
func (c *checker) errorAt(s Str, off int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if s.src == nil { // a tree built in code: no source to point into
		p := s.At
		c.add(&Error{Line: p.Line, Column: p.Column, Offset: p.Offset, Token: quoteFor(s.Value), Message: msg})
		return
	}
	e := s.src.errorAt(s.At.Offset+1+off, quoteFor(s.Value), "%s", msg)
	if off < 0 {
		e.Token = s.src.text[s.At.Offset : s.At.Offset+len(s.Value)+2]
	}
	c.add(e)
}

func (c *checker) nodeError(n Node, format string, args ...any) {
	p := n.Pos()
	c.add(&Error{Line: p.Line, Column: p.Column, Offset: p.Offset, Message: fmt.Sprintf(format, args...)})
}

// checkRoot checks a whole filter: its nodes, then what its references expand to.
func (c *checker) checkRoot(n Node) {
	c.check(n, 0, nil)
	if len(c.errs) == 0 {
		c.expansion(n)
	}
}

// expansion bounds the tree that Compile builds by inlining references: a filter may reference
// another twice, that one the next twice, and so on, so that a few small filters would expand to
// 2^n nodes. The first reference at which the filter's expanded size passes MaxExpanded is
// reported.
func (c *checker) expansion(root Node) {
	memo := map[string]int{}
	var size func(n Node) int // nodes after inlining, saturated at MaxExpanded+1
	size = func(n Node) int {
		total := 1
		switch n := n.(type) {
		case *Or:
			for _, t := range n.Terms {
				total += size(t)
			}
		case *And:
			for _, t := range n.Terms {
				total += size(t)
			}
		case *Not:
			total += size(n.X)
		case *FilterRef:
			name := strings.ToLower(n.Name.Value)
			s, ok := memo[name]
			if !ok {
				s = size(c.trees[name])
				memo[name] = s
			}
			total += s
		}
		return min(total, MaxExpanded+1)
	}
	total := 0
	var walk func(n Node) bool
	walk = func(n Node) bool {
		switch n := n.(type) {
		case *Or:
			for _, t := range n.Terms {
				if !walk(t) {
					return false
				}
			}
		case *And:
			for _, t := range n.Terms {
				if !walk(t) {
					return false
				}
			}
		case *Not:
			return walk(n.X)
		case *FilterRef:
			if total += size(n); total > MaxExpanded {
				c.errorAt(n.Name, -1, "filter %s expands to more than %d nodes with the filters it references, expected at most %d",
					quoteFor(n.Name.Value), MaxExpanded, MaxExpanded)
				return false
			}
			return true
		}
		total++
		return true
	}
	walk(root)
}

// check walks n at nesting depth d; path holds the lower-cased names of the filters being expanded.
func (c *checker) check(n Node, d int, path []string) {
	if d > MaxDepth {
		c.nodeError(n, "nesting is deeper than %d, expected at most %d levels of parentheses and NOT", MaxDepth, MaxDepth)
		return
	}
	switch n := n.(type) {
	case *Or:
		for _, t := range n.Terms {
			c.check(t, d+btoi(isOr(t)), path)
		}
	case *And:
		for _, t := range n.Terms {
			c.check(t, d+btoi(isBinary(t)), path)
		}
	case *Not:
		c.check(n.X, d+1+btoi(isBinary(n.X)), path)
	case *Const:
	case *VINMatches:
		c.regex(n.Regex)
	case *HasPackage:
		c.regex(n.Name)
		c.regex(n.Version)
	case *HasPackageVersion:
		if n.Name.Value == "" {
			c.errorAt(n.Name, -1, "empty package name, expected the exact name of a package")
		}
		if _, err := ParseVersion(n.Version.Value); err != nil {
			c.errorAt(n.Version, -1, "%v", err)
		}
		if !validOp(n.Op) {
			c.nodeError(n, "unknown operator %q, expected one of %s", n.Op, cmpOps)
		}
	case *HasComponent:
		c.regex(n.Part)
	case *AttrCompare:
		c.attrKey(n.Key)
		if !validOp(n.Op) {
			c.nodeError(n, "unknown operator %q, expected one of %s", n.Op, cmpOps)
		}
	case *AttrIn:
		c.attrKey(n.Key)
		if len(n.Values) == 0 {
			c.nodeError(n, "empty IN list, expected at least one value")
		}
	case *HasAttr:
		c.attrKey(n.Key)
	case *FilterRef:
		c.ref(n, path)
	case *SeenWithin, *UpdateStatus:
		c.checkFleetState(n)
	case *refNode:
		c.check(n.body, d, append(path, strings.ToLower(n.name)))
	default:
		panic(fmt.Sprintf("dsl: unknown node %T", n))
	}
}

func isOr(n Node) bool { _, ok := n.(*Or); return ok }

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func validOp(op CmpOp) bool {
	switch op {
	case OpEq, OpNe, OpLt, OpLe, OpGt, OpGe:
		return true
	}
	return false
}

func (c *checker) attrKey(s Str) {
	if s.Value == "" {
		c.errorAt(s, -1, "empty attribute name, expected the name of an attribute")
	}
}

// regex reports a pattern that does not parse. Parsing is all the checking regexp.Compile does
// (its compile step cannot fail), and it costs half as much: validating filters is a budget.
func (c *checker) regex(s Str) {
	_, err := syntax.Parse(s.Value, syntax.Perl)
	if err == nil {
		return
	}
	off := 0
	msg := err.Error()
	var se *syntax.Error
	if errors.As(err, &se) {
		msg = string(se.Code)
		if se.Expr != "" && se.Expr != s.Value {
			msg += " " + quoteFor(se.Expr)
			if i := strings.Index(s.Value, se.Expr); i >= 0 {
				off = i
			}
		}
	}
	c.errorAt(s, off, "invalid regular expression %s: %s", quoteFor(shorten(s.Value)), msg)
}

// ref checks a reference: the filter exists, parses, checks, and does not lead back to a filter
// that is being expanded.
func (c *checker) ref(n *FilterRef, path []string) {
	name := strings.ToLower(n.Name.Value)
	for i, p := range path {
		if p == name {
			cycle := append(append([]string{}, path[i:]...), name)
			c.errorAt(n.Name, -1, "filter reference cycle: %s", strings.Join(quoteAll(cycle), " -> "))
			return
		}
	}
	if err, ok := c.bad[name]; ok {
		c.errorAt(n.Name, -1, "%v", err)
		if u, ok := err.(unknownFilter); ok && u.suggestion != "" {
			e := c.errs[len(c.errs)-1]
			e.Length, e.Suggestion = len(e.Token), quoteFor(u.suggestion)
		}
		return
	}
	tree, ok := c.trees[name]
	if !ok {
		var expr string
		found := false
		if c.refs != nil {
			expr, found = c.refs.LookupFilter(n.Name.Value)
		}
		if !found {
			c.bad[name] = newUnknownFilter(n.Name.Value, filterNames(c.refs))
			c.ref(n, path)
			return
		}
		t, err := Parse(expr)
		if err != nil {
			c.bad[name] = fmt.Errorf("filter %s does not parse: %s", quoteFor(n.Name.Value), err.(ErrorList)[0].Short())
			c.ref(n, path)
			return
		}
		tree = t
		c.trees[name] = tree
	}
	if c.ok[name] { // no cycle is reachable from it, so none goes through path either
		return
	}
	// Problems inside the referenced filter are reported at the reference.
	sub := &checker{refs: c.refs, trees: c.trees, bad: c.bad, ok: c.ok}
	sub.check(tree, 0, append(path, name))
	if len(sub.errs) == 0 {
		c.ok[name] = true
		return
	}
	first := sub.errs[0]
	if strings.HasPrefix(first.Message, "filter reference cycle") {
		c.bad[name] = errors.New(first.Message)
	} else {
		c.bad[name] = fmt.Errorf("filter %s is invalid: %s", quoteFor(n.Name.Value), first.Short())
	}
	c.ref(n, path)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quoteFor(s)
	}
	return out
}

// refNames lists the filter names a checked tree reaches, lower-cased and sorted.
func (c *checker) refNames() []string {
	names := make([]string, 0, len(c.trees))
	for n := range c.trees {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// unknownFilter is the error of a reference to no saved filter, with the nearest saved name.
type unknownFilter struct{ name, suggestion string }

func newUnknownFilter(name string, saved []string) unknownFilter {
	return unknownFilter{name: name, suggestion: suggestName(name, saved)}
}

func (u unknownFilter) Error() string {
	msg := fmt.Sprintf("unknown filter %s, expected the name of a saved filter", quoteFor(u.name))
	if u.suggestion != "" {
		msg += fmt.Sprintf("; did you mean %s?", quoteFor(u.suggestion))
	}
	return msg
}
