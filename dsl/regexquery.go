package dsl

import (
	"fmt"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/RoaringBitmap/roaring/v2"
)

// Regex leaves answered from an n-gram index. An index keeps, for every indexed string s (a VIN),
// the ids of the strings that contain each gram of "^" + fold(s) + "$": every run of one, two or
// three runes, case-folded, with a mark for the start and one for the end (Grams). A regex becomes
// a GramQuery, an AND/OR of grams that every string it matches has (RegexGramQuery), so the regex
// only runs on the strings the query leaves. The query is computed as code search engines do: for
// each part of the regex, the set of strings it matches when that set is small, or else the sets
// of its possible prefixes and suffixes, and the grams that every match must contain; sets that
// grow too large are turned into grams and trimmed. Because grams are folded, (?i) costs nothing
// and a case-sensitive regex gets a superset that the regex check narrows.
//
// Unigrams and bigrams are indexed besides trigrams so that short literals and anchored single
// characters narrow too: `X.*9$` needs the gram "X" and the gram "9$".

// Gram is one indexed n-gram (n = 1 to 3): its folded runes packed 21 bits each.
type Gram uint64

const (
	gramBegin rune = unicode.MaxRune + 1 // before the first rune of an indexed string
	gramEnd   rune = unicode.MaxRune + 2 // after its last rune
)

func gram1(a rune) Gram       { return Gram(a+1) << 42 }
func gram2(a, b rune) Gram    { return Gram(a+1)<<42 | Gram(b+1)<<21 }
func gram3(a, b, c rune) Gram { return Gram(a+1)<<42 | Gram(b+1)<<21 | Gram(c+1) }

// String shows the gram with ^ and $ for the marks.
func (g Gram) String() string {
	var b strings.Builder
	for _, sh := range []uint{42, 21, 0} {
		r := rune(g>>sh&(1<<21-1)) - 1
		switch {
		case r < 0:
		case r == gramBegin:
			b.WriteByte('^')
		case r == gramEnd:
			b.WriteByte('$')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// foldRune maps r to the smallest rune of its simple case-folding orbit, as (?i) matches them.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// Grams calls fn with every gram of s (a gram may come more than once). Invalid UTF-8 is read
// one byte at a time as utf8.RuneError, as package regexp reads it.
func Grams(s string, fn func(Gram)) {
	var buf [64]Gram
	for _, g := range AppendGrams(buf[:0], s) {
		fn(g)
	}
}

// AppendGrams appends the grams of s to buf (see Grams).
func AppendGrams(buf []Gram, s string) []Gram {
	p2, p1 := rune(-1), gramBegin
	buf = append(buf, gram1(gramBegin))
	next := func(r rune) {
		buf = append(buf, gram1(r), gram2(p1, r))
		if p2 >= 0 {
			buf = append(buf, gram3(p2, p1, r))
		}
		p2, p1 = p1, r
	}
	for _, r := range s {
		next(foldRune(r))
	}
	next(gramEnd)
	return buf
}

// GramQuery is a condition on the grams of a string: every string the regex it was built from
// matches satisfies it. The zero value is not valid; queries are built by RegexGramQuery.
type GramQuery struct {
	op    queryOp
	grams []Gram // qAnd: all of them; qOr: any of them (sorted, unique)
	sub   []*GramQuery
}

type queryOp uint8

const (
	qAll  queryOp = iota // every string
	qNone                // no string
	qAnd
	qOr
)

var (
	queryAll  = &GramQuery{op: qAll}
	queryNone = &GramQuery{op: qNone}
)

// All reports a query that narrows nothing.
func (q *GramQuery) All() bool { return q.op == qAll }

// String shows the query, e.g. `"^WD" "WDD"` for an AND and `("1$"|"3$")` for an OR.
func (q *GramQuery) String() string {
	switch q.op {
	case qAll:
		return "+"
	case qNone:
		return "-"
	}
	var parts []string
	for _, g := range q.grams {
		parts = append(parts, fmt.Sprintf("%q", g.String()))
	}
	for _, s := range q.sub {
		parts = append(parts, s.String())
	}
	if q.op == qOr {
		return "(" + strings.Join(parts, "|") + ")"
	}
	return strings.Join(parts, " ")
}

func gramQuery(g Gram) *GramQuery { return &GramQuery{op: qAnd, grams: []Gram{g}} }

// andQ is a AND b, simplified.
func andQ(a, b *GramQuery) *GramQuery {
	switch {
	case a.op == qNone || b.op == qNone:
		return queryNone
	case a.op == qAll:
		return b
	case b.op == qAll:
		return a
	}
	out := &GramQuery{op: qAnd}
	for _, x := range []*GramQuery{a, b} {
		if x.op == qAnd {
			out.grams = append(out.grams, x.grams...)
			out.sub = append(out.sub, x.sub...)
		} else if len(x.grams) == 1 && len(x.sub) == 0 {
			out.grams = append(out.grams, x.grams...)
		} else {
			out.sub = append(out.sub, x)
		}
	}
	slices.Sort(out.grams)
	out.grams = slices.Compact(out.grams)
	// Drop what is implied: a repeated term, and an OR one of whose grams the AND requires.
	seen := map[string]bool{}
	subs := out.sub[:0]
	for _, s := range out.sub {
		k := s.String()
		implied := seen[k]
		for _, g := range s.grams {
			if s.op == qOr {
				_, found := slices.BinarySearch(out.grams, g)
				implied = implied || found
			}
		}
		if !implied {
			seen[k] = true
			subs = append(subs, s)
		}
	}
	out.sub = subs
	if len(out.sub) == 0 && len(out.grams) == 0 {
		return queryAll
	}
	return out
}

// orQ is a OR b, simplified.
func orQ(a, b *GramQuery) *GramQuery {
	switch {
	case a.op == qAll || b.op == qAll:
		return queryAll
	case a.op == qNone:
		return b
	case b.op == qNone:
		return a
	}
	out := &GramQuery{op: qOr}
	for _, x := range []*GramQuery{a, b} {
		if x.op == qOr {
			out.grams = append(out.grams, x.grams...)
			out.sub = append(out.sub, x.sub...)
		} else if len(x.grams) == 1 && len(x.sub) == 0 {
			out.grams = append(out.grams, x.grams...)
		} else {
			out.sub = append(out.sub, x)
		}
	}
	slices.Sort(out.grams)
	out.grams = slices.Compact(out.grams)
	return out
}

// Matches evaluates the query on one string's grams.
func (q *GramQuery) Matches(has func(Gram) bool) bool {
	switch q.op {
	case qAll:
		return true
	case qNone:
		return false
	case qAnd:
		for _, g := range q.grams {
			if !has(g) {
				return false
			}
		}
		for _, s := range q.sub {
			if !s.Matches(has) {
				return false
			}
		}
		return true
	}
	for _, g := range q.grams {
		if has(g) {
			return true
		}
	}
	for _, s := range q.sub {
		if s.Matches(has) {
			return true
		}
	}
	return false
}

// MatchesString evaluates the query on the grams of s.
func (q *GramQuery) MatchesString(s string) bool {
	set := map[Gram]bool{}
	Grams(s, func(g Gram) { set[g] = true })
	return q.Matches(func(g Gram) bool { return set[g] })
}

// Eval returns the ids that satisfy the query, given the read-only bitmap of each gram (nil: no
// string has it); nil means every id (an All query). The result may be one of lookup's bitmaps:
// read-only either way.
func (q *GramQuery) Eval(lookup func(Gram) *roaring.Bitmap) *roaring.Bitmap {
	switch q.op {
	case qAll:
		return nil
	case qNone:
		return roaring.New()
	case qAnd:
		var bms []*roaring.Bitmap
		for _, g := range q.grams {
			bm := lookup(g)
			if bm == nil || bm.IsEmpty() {
				return roaring.New()
			}
			bms = append(bms, bm)
		}
		for _, s := range q.sub {
			if bm := s.Eval(lookup); bm != nil {
				bms = append(bms, bm)
			}
		}
		if len(bms) == 0 {
			return nil
		}
		sort.Slice(bms, func(i, j int) bool { return bms[i].GetCardinality() < bms[j].GetCardinality() })
		if len(bms) == 1 {
			return bms[0]
		}
		out := roaring.And(bms[0], bms[1])
		for _, bm := range bms[2:] {
			if out.IsEmpty() {
				break
			}
			out.And(bm)
		}
		return out
	}
	var bms []*roaring.Bitmap
	for _, g := range q.grams {
		if bm := lookup(g); bm != nil {
			bms = append(bms, bm)
		}
	}
	for _, s := range q.sub {
		bm := s.Eval(lookup)
		if bm == nil {
			return nil
		}
		bms = append(bms, bm)
	}
	switch len(bms) {
	case 0:
		return roaring.New()
	case 1:
		return bms[0]
	}
	return roaring.FastOr(bms...)
}

// RegexGramQuery returns the gram query of an RE2 pattern (Perl syntax, as package regexp parses
// it): every string the pattern matches satisfies the query. A pattern that does not parse gets
// the All query.
func RegexGramQuery(pattern string) *GramQuery {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return queryAll
	}
	info := analyze(re.Simplify(), true, true)
	if info.exact != nil {
		return andQ(info.match, stringsQuery(info.exact))
	}
	return andQ(andQ(info.match, stringsQuery(info.prefix)), stringsQuery(info.suffix))
}

// Limits of the sets the analysis keeps before it turns them into grams.
const (
	maxExact = 16 // exact strings of a sub-pattern
	maxSet   = 32 // prefixes or suffixes
	maxClass = 32 // runes of a character class taken one by one
)

// A folded string: runes of 3 bytes each (big-endian), so that the marks fit and sets of them
// are sets of Go strings.
type fstr string

func (s fstr) len() int { return len(s) / 3 }

func (s fstr) at(i int) rune {
	return rune(s[3*i])<<16 | rune(s[3*i+1])<<8 | rune(s[3*i+2])
}

func fstrOf(rs ...rune) fstr {
	b := make([]byte, 0, 3*len(rs))
	for _, r := range rs {
		b = append(b, byte(r>>16), byte(r>>8), byte(r))
	}
	return fstr(b)
}

// grams is the query that a string containing s satisfies: s itself when it is a gram, else all
// of its trigrams.
func (s fstr) query() *GramQuery {
	switch n := s.len(); n {
	case 0:
		return queryAll
	case 1:
		return gramQuery(gram1(s.at(0)))
	case 2:
		return gramQuery(gram2(s.at(0), s.at(1)))
	default:
		q := &GramQuery{op: qAnd}
		for i := 0; i+3 <= n; i++ {
			q.grams = append(q.grams, gram3(s.at(i), s.at(i+1), s.at(i+2)))
		}
		slices.Sort(q.grams)
		q.grams = slices.Compact(q.grams)
		return q
	}
}

// strSet is a sorted set of folded strings.
type strSet []fstr

func (s strSet) norm() strSet {
	slices.Sort(s)
	return slices.Compact(s)
}

func union(a, b strSet) strSet { return append(append(strSet{}, a...), b...).norm() }

func cross(a, b strSet) strSet {
	out := make(strSet, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out.norm()
}

// stringsQuery is satisfied by a string that contains one of set (an empty set: none).
func stringsQuery(set strSet) *GramQuery {
	q := queryNone
	for _, s := range set {
		q = orQ(q, s.query())
		if q.op == qAll {
			break
		}
	}
	return q
}

// regexInfo is what the analysis knows of a sub-pattern: whether it matches the empty string; the
// strings it matches (exact, when known; an empty non-nil set: none), or else sets containing a
// prefix and a suffix of every match; and a query that every match satisfies.
type regexInfo struct {
	canEmpty       bool
	exact          strSet
	prefix, suffix strSet
	match          *GramQuery
}

func emptyInfo() regexInfo {
	return regexInfo{canEmpty: true, exact: strSet{""}, match: queryAll}
}

func anyCharInfo() regexInfo {
	return regexInfo{prefix: strSet{""}, suffix: strSet{""}, match: queryAll}
}

func anyMatchInfo() regexInfo {
	return regexInfo{canEmpty: true, prefix: strSet{""}, suffix: strSet{""}, match: queryAll}
}

func exactInfo(set strSet) regexInfo {
	i := regexInfo{exact: set.norm(), match: queryAll}
	if len(set) == 0 {
		i.match = queryNone
	}
	for _, s := range set {
		i.canEmpty = i.canEmpty || s == ""
	}
	return i
}

func (i regexInfo) pre() strSet {
	if i.exact != nil {
		return i.exact
	}
	return i.prefix
}

func (i regexInfo) suf() strSet {
	if i.exact != nil {
		return i.exact
	}
	return i.suffix
}

// addExact moves the exact set into the query, keeping it as the prefix and suffix sets.
func (i *regexInfo) addExact() {
	if i.exact == nil {
		return
	}
	i.match = andQ(i.match, stringsQuery(i.exact))
	i.prefix, i.suffix, i.exact = i.exact, i.exact, nil
}

// simplify keeps the sets small: too many exact strings become grams; prefixes and suffixes
// longer than two runes (whose grams are then in the query) are cut to their first or last two.
func (i *regexInfo) simplify() {
	if i.exact != nil && len(i.exact) > maxExact {
		i.addExact()
	}
	if i.exact != nil {
		return
	}
	i.prefix = i.trim(i.prefix, true)
	i.suffix = i.trim(i.suffix, false)
}

func (i *regexInfo) trim(set strSet, front bool) strSet {
	long := false
	for _, s := range set {
		long = long || s.len() > 2
	}
	if long && len(set) <= maxSet {
		i.match = andQ(i.match, stringsQuery(set))
	}
	for keep := 2; keep >= 0; keep-- {
		if !long && len(set) <= maxSet {
			return set
		}
		out := make(strSet, 0, len(set))
		for _, s := range set {
			if n := s.len(); n > keep {
				if front {
					s = s[:3*keep]
				} else {
					s = s[3*(n-keep):]
				}
			}
			out = append(out, s)
		}
		set, long = out.norm(), false
	}
	return set
}

func concatInfo(x, y regexInfo) regexInfo {
	xy := regexInfo{canEmpty: x.canEmpty && y.canEmpty, match: andQ(x.match, y.match)}
	if x.exact != nil && y.exact != nil && len(x.exact)*len(y.exact) <= maxExact {
		xy.exact = cross(x.exact, y.exact)
		if len(xy.exact) == 0 {
			xy.match = queryNone
		}
		return xy
	}
	if x.exact != nil {
		xy.prefix = cross(x.exact, y.pre())
	} else {
		xy.prefix = x.prefix
		if x.canEmpty {
			xy.prefix = union(xy.prefix, y.pre())
		}
	}
	if y.exact != nil {
		xy.suffix = cross(x.suf(), y.exact)
	} else {
		xy.suffix = y.suffix
		if y.canEmpty {
			xy.suffix = union(xy.suffix, x.suf())
		}
	}
	// Every match has a suffix of x followed by a prefix of y.
	if xs, yp := x.suf(), y.pre(); len(xs)*len(yp) <= maxSet {
		xy.match = andQ(xy.match, stringsQuery(cross(xs, yp)))
	}
	xy.simplify()
	return xy
}

func alternateInfo(x, y regexInfo) regexInfo {
	xy := regexInfo{canEmpty: x.canEmpty || y.canEmpty}
	if x.exact != nil && y.exact != nil {
		xy.exact = union(x.exact, y.exact)
		xy.match = orQ(x.match, y.match)
		xy.simplify()
		return xy
	}
	x.addExact()
	y.addExact()
	xy.prefix = union(x.prefix, y.prefix)
	xy.suffix = union(x.suffix, y.suffix)
	xy.match = orQ(x.match, y.match)
	xy.simplify()
	return xy
}

// analyze computes the info of re. atStart and atEnd say that re begins where the whole match
// begins, or ends where it ends: only there does \A (or ^ without (?m)) mean the start mark and
// \z (or $) the end mark; elsewhere they are taken as the empty string, which only widens the
// query.
func analyze(re *syntax.Regexp, atStart, atEnd bool) regexInfo {
	switch re.Op {
	case syntax.OpNoMatch:
		return exactInfo(strSet{})
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return emptyInfo()
	case syntax.OpBeginText:
		if atStart {
			return exactInfo(strSet{fstrOf(gramBegin)})
		}
		return emptyInfo()
	case syntax.OpEndText:
		if atEnd {
			return exactInfo(strSet{fstrOf(gramEnd)})
		}
		return emptyInfo()
	case syntax.OpLiteral:
		rs := make([]rune, len(re.Rune))
		for i, r := range re.Rune {
			rs[i] = foldRune(r)
		}
		return exactInfo(strSet{fstrOf(rs...)})
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return anyCharInfo()
	case syntax.OpCharClass:
		return classInfo(re.Rune)
	case syntax.OpCapture:
		return analyze(re.Sub[0], atStart, atEnd)
	case syntax.OpStar:
		return anyMatchInfo()
	case syntax.OpQuest:
		return alternateInfo(analyze(re.Sub[0], atStart, atEnd), emptyInfo())
	case syntax.OpPlus:
		// x+ is x x*: the first x begins the match.
		return concatInfo(analyze(re.Sub[0], atStart, false), anyMatchInfo())
	case syntax.OpConcat:
		if len(re.Sub) == 0 {
			return emptyInfo()
		}
		info := analyze(re.Sub[0], atStart, atEnd && len(re.Sub) == 1)
		for k, sub := range re.Sub[1:] {
			info = concatInfo(info, analyze(sub, false, atEnd && k == len(re.Sub)-2))
		}
		return info
	case syntax.OpAlternate:
		if len(re.Sub) == 0 {
			return exactInfo(strSet{})
		}
		info := analyze(re.Sub[0], atStart, atEnd)
		for _, sub := range re.Sub[1:] {
			info = alternateInfo(info, analyze(sub, atStart, atEnd))
		}
		return info
	}
	// OpRepeat does not survive Simplify; anything else narrows nothing.
	return anyMatchInfo()
}

// classInfo is a character class as the set of its folded runes when that is small.
func classInfo(ranges []rune) regexInfo {
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		n += int(ranges[i+1]-ranges[i]) + 1
		if n > 4*maxClass {
			return anyCharInfo()
		}
	}
	var set strSet
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			set = append(set, fstrOf(foldRune(r)))
		}
	}
	set = set.norm()
	if len(set) > maxClass {
		return anyCharInfo()
	}
	return exactInfo(set)
}

// maxFoldPrefixes bounds the case variants foldPrefixes spells out.
const maxFoldPrefixes = 64

// foldPrefixes returns, for a pattern that is a start anchor followed by literals only, some of
// them case-insensitive (`(?i)^wdd`), every string a subject must start with to match: the
// literal in each combination of the case-folding variants of its folded runes. nil for any other
// pattern, or when there would be more than maxFoldPrefixes.
func foldPrefixes(pattern string) []string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return nil
	}
	out := []string{""}
	folded := false
	for _, sub := range re.Sub[1:] {
		if sub.Op != syntax.OpLiteral {
			return nil
		}
		for _, r := range sub.Rune {
			variants := []rune{r}
			if sub.Flags&syntax.FoldCase != 0 {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					variants = append(variants, f)
				}
			}
			if len(out)*len(variants) > maxFoldPrefixes {
				return nil
			}
			folded = folded || len(variants) > 1
			next := make([]string, 0, len(out)*len(variants))
			for _, p := range out {
				for _, v := range variants {
					next = append(next, p+string(v))
				}
			}
			out = next
		}
	}
	if !folded {
		return nil // a plain literal prefix: literalPrefix has it
	}
	slices.Sort(out)
	return out
}
