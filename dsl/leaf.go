package dsl

import (
	"math"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"
)

// leaf is a compiled predicate: its regexes compiled once, names lower-cased, versions parsed.
// The expr program and the index plan both call it; the reference evaluator (eval.go) does not.
type leaf struct {
	node Node
	re   matcher // vin_matches, has_package name, has_component
	re2  matcher // has_package version
	name string  // has_package "n" OP "v": the exact name
	op   CmpOp
	ver  Version
	key  string
	vals []Value

	// seen_within and update_status
	dur      time.Duration
	ver2     string
	statuses []string

	// vin_matches: the literal the VIN must start with, and whether that is the whole condition;
	// the grams every VIN it matches has.
	prefix      string
	prefixExact bool
	vinQuery    *GramQuery
	// vin_matches of a case-insensitive literal prefix: the prefixes that answer it exactly.
	foldPrefixes []string
	// vin_matches: the program for the VIN positions, prepared on first use (vinpos.go).
	pos *lazyPos
}

// matcher is a compiled regex with fast paths for the patterns that are plain literals.
type matcher struct {
	re       *regexp.Regexp
	literal  string
	kind     int // mRegex, mContains, mPrefix, mAll
	anchored bool
	dfa      *lazyDFA // mRegex: the byte DFA, built on first use (dfa.go)
}

const (
	mRegex = iota
	mContains
	mPrefix
	mAll
)

func compileMatcher(pattern string) matcher {
	m := matcher{re: regexp.MustCompile(pattern)} // Check has compiled it already
	if prefix, exact, anchored := literalPrefix(pattern); exact {
		switch {
		case anchored && prefix == "":
			m.kind = mAll
		case anchored:
			m.kind, m.literal = mPrefix, prefix
		case prefix == "":
			m.kind = mAll
		default:
			m.kind, m.literal = mContains, prefix
		}
	} else {
		m.dfa = &lazyDFA{pattern: pattern}
	}
	return m
}

func (m *matcher) match(s string) bool {
	switch m.kind {
	case mAll:
		return true
	case mPrefix:
		return strings.HasPrefix(s, m.literal)
	case mContains:
		return strings.Contains(s, m.literal)
	}
	if d := m.dfa.get(); d != nil {
		if matched, ok := d.match(s); ok {
			return matched
		}
	}
	return m.re.MatchString(s)
}

// literalPrefix reduces a regex with regexp/syntax: anchored reports a leading ^ (start of text),
// prefix is the literal that follows it (or the whole literal of an unanchored pattern), and exact
// reports that the pattern is nothing more than that. regexp.LiteralPrefix is no help here: it
// returns "" for anchored patterns.
func literalPrefix(pattern string) (prefix string, exact, anchored bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", false, false
	}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	i := 0
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		anchored = true
		i = 1
	}
	var b strings.Builder
	for ; i < len(subs); i++ {
		s := subs[i]
		if s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0 {
			b.WriteString(string(s.Rune))
			continue
		}
		if s.Op == syntax.OpEmptyMatch {
			continue
		}
		break
	}
	exact = i == len(subs)
	if !anchored && len(subs) > 1 && !exact {
		// an unanchored pattern with more after its literal says nothing about the start
		return "", false, false
	}
	if !anchored && !exact {
		return "", false, false
	}
	return b.String(), exact, anchored
}

func newLeaf(n Node) *leaf {
	l := &leaf{node: n}
	switch n := n.(type) {
	case *VINMatches:
		l.re = compileMatcher(n.Regex.Value)
		if p, exact, anchored := literalPrefix(n.Regex.Value); anchored {
			l.prefix, l.prefixExact = p, exact
		}
		l.vinQuery = RegexGramQuery(n.Regex.Value)
		l.foldPrefixes = foldPrefixes(n.Regex.Value)
		l.pos = &lazyPos{pattern: n.Regex.Value}
	case *HasPackage:
		l.re, l.re2 = compileMatcher(n.Name.Value), compileMatcher(n.Version.Value)
	case *HasPackageVersion:
		l.name, l.op = n.Name.Value, n.Op
		l.ver, _ = ParseVersion(n.Version.Value) // Check has parsed it already
	case *HasComponent:
		l.re = compileMatcher(n.Part.Value)
	case *AttrCompare:
		l.key, l.op, l.vals = n.Key.Value, n.Op, []Value{n.Value.Value}
	case *AttrIn:
		l.key = n.Key.Value
		for _, v := range n.Values {
			l.vals = append(l.vals, v.Value)
		}
	case *HasAttr:
		l.key = n.Key.Value
	default:
		newFleetStateLeaf(l, n)
	}
	return l
}

func (l *leaf) match(v *Vehicle) bool {
	switch l.node.(type) {
	case *VINMatches:
		return l.re.match(v.VIN)
	case *HasPackage:
		for _, p := range v.Packages {
			if l.matchPackage(p.Name, p.Version) {
				return true
			}
		}
		return false
	case *HasPackageVersion:
		for _, p := range v.Packages {
			if strings.EqualFold(p.Name, l.name) && l.matchVersion(p.Version) {
				return true
			}
		}
		return false
	case *HasComponent:
		for _, c := range v.Components {
			if l.re.match(c) {
				return true
			}
		}
		return false
	case *AttrCompare, *AttrIn, *HasAttr:
		a, ok := v.Attrs[l.key]
		return ok && l.matchAttr(a)
	}
	return l.matchFleetState(v)
}

func (l *leaf) matchPackage(name, version string) bool {
	return l.re.match(name) && l.re2.match(version)
}

func (l *leaf) matchVersion(version string) bool {
	iv, err := ParseVersion(version)
	return err == nil && compareOp(l.op, iv.Compare(l.ver))
}

func (l *leaf) matchComponent(part string) bool { return l.re.match(part) }

// matchAttr is the predicate on an attribute that exists.
func (l *leaf) matchAttr(a Value) bool {
	switch l.node.(type) {
	case *HasAttr:
		return true
	case *AttrCompare:
		c, ok := compareValues(a, l.vals[0])
		return ok && compareOp(l.op, c)
	case *AttrIn:
		for _, w := range l.vals {
			if c, ok := compareValues(a, w); ok && c == 0 {
				return true
			}
		}
	}
	return false
}

// compareValues compares two attribute values of the same kind: numbers numerically, strings
// byte-wise. Values of different kinds (and NaN) do not compare: ok is false.
func compareValues(a, b Value) (c int, ok bool) {
	if a.IsNum != b.IsNum {
		return 0, false
	}
	if !a.IsNum {
		return strings.Compare(a.Str, b.Str), true
	}
	if math.IsNaN(a.Num) || math.IsNaN(b.Num) {
		return 0, false
	}
	switch {
	case a.Num < b.Num:
		return -1, true
	case a.Num > b.Num:
		return 1, true
	}
	return 0, true
}
