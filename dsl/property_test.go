package dsl

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var propSeed = flag.Uint64("seed", 1, "seed of the generated trees and vehicles in the property tests (a failure prints the one to rerun with)")

// treeGen builds random trees of every node kind directly (not through the parser), so that
// Parse(Format(t)) == t tests the printer against trees the parser did not shape. With regexes set
// it draws regexes, versions and names from pools that match the generated vehicles, for evaluation;
// without, strings are arbitrary (anything a quoted string can hold: no line break, not both quotes).
type treeGen struct {
	r       *rand.Rand
	evalish bool
}

var (
	genRegexes = []string{"", "^", "$", "^$", "^WDD", "WDD", "^W", "(?i)^wdd", "^SAJ", "X$", "[0-9]$", "^(WDD|SAJ)",
		"a|b", "\\d{3}", "^\\QWD\\E", "^W.D", "(?m)^S", ".", "^nav$", "nav", "^NAV", "(?i)nav", "radio", "^2\\.",
		"rc", "^1\\.", "ECU", "^ECU123[45]$", "^TCU", "1235", "^$|x", "é", "^é"}
	genVersions = []string{"1.0.0", "2.0.0", "2.1.0", "2.1.0-rc.1", "3.0.0+b7", "0.0.1", "10.0.0-beta.2", "1.9.0"}
	genNames    = []string{"nav", "NAV", "radio", "maps", "ghost", "Nav"}
	genKeys     = []string{"market", "year", "model", "none"}
	genOps      = []CmpOp{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe}
)

func (g treeGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// str is an arbitrary string a quoted string can hold.
func (g treeGen) str() string {
	const alphabet = `abcWDD019 .*^$()[]{}?+|\"'é/#` + "\t"
	rs := []rune(alphabet)
	var b strings.Builder
	for n := g.r.IntN(8); n > 0; n-- {
		b.WriteRune(rs[g.r.IntN(len(rs))])
	}
	s := b.String()
	if strings.Contains(s, `"`) && strings.Contains(s, "'") {
		s = strings.ReplaceAll(s, "'", "")
	}
	return s
}

func (g treeGen) regex() Str {
	if g.evalish {
		if g.r.IntN(3) == 0 { // shapes the gram queries must get right
			return Str{Value: patternGen{r: g.r}.pattern()}
		}
		return Str{Value: g.pick(genRegexes)}
	}
	return Str{Value: g.str()}
}

func (g treeGen) name(pool []string) Str {
	if g.evalish {
		return Str{Value: g.pick(pool)}
	}
	return Str{Value: g.str()}
}

func (g treeGen) value() Value {
	switch g.r.IntN(4) {
	case 0:
		return Value{Num: float64(g.r.IntN(5) + 2018), IsNum: true}
	case 1:
		return Value{Num: float64(g.r.IntN(40000)-20000) / 8, IsNum: true}
	case 2:
		return Value{Str: g.pick([]string{"EU", "US", "2020", "", "C-Class"})}
	}
	if g.evalish {
		return Value{Str: "JP"}
	}
	return Value{Str: g.str()}
}

// genNow is the moment generated vehicles are evaluated at; genAges are how long before it they
// were last seen (0: never), boundaries of genDurations included.
var (
	genNow       = time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	genDurations = []string{"90s", "15m", "24h", "7d", "30d", "1d"}
	genAges      = []time.Duration{0, 30 * time.Second, 90 * time.Second, 10 * time.Minute, 2 * time.Hour, 24 * time.Hour, 3 * 24 * time.Hour, 40 * 24 * time.Hour}
)

func (g treeGen) fleetStateLeaf() Node {
	if g.r.IntN(3) == 0 {
		d := g.pick(genDurations)
		if !g.evalish && g.r.IntN(2) == 0 {
			d = g.str()
		}
		return &SeenWithin{Duration: Str{Value: d}}
	}
	n := &UpdateStatus{Name: g.name(genNames), Version: Str{Value: g.pick(genVersions[:3])}}
	if g.r.IntN(3) == 0 {
		n.In = true
		for k := g.r.IntN(3) + 1; k > 0; k-- {
			n.Statuses = append(n.Statuses, Str{Value: g.pick(Statuses)})
		}
		return n
	}
	n.Op = []CmpOp{OpEq, OpNe}[g.r.IntN(2)]
	n.Statuses = []Str{{Value: g.pick(Statuses)}}
	return n
}

func (g treeGen) leaf() Node {
	switch g.r.IntN(12) {
	case 9, 10:
		return g.fleetStateLeaf()
	case 0:
		return &Const{Value: g.r.IntN(2) == 0}
	case 1:
		return &VINMatches{Regex: g.regex()}
	case 2:
		return &HasPackage{Name: g.regex(), Version: g.regex()}
	case 3:
		return &HasPackageVersion{Name: g.name(genNames), Op: genOps[g.r.IntN(len(genOps))], Version: Str{Value: g.pick(genVersions)}}
	case 4:
		return &HasComponent{Part: g.regex()}
	case 5:
		return &AttrCompare{Key: g.name(genKeys), Op: genOps[g.r.IntN(len(genOps))], Value: Lit{Value: g.value()}}
	case 6:
		n := &AttrIn{Key: g.name(genKeys)}
		for k := g.r.IntN(3) + 1; k > 0; k-- {
			n.Values = append(n.Values, Lit{Value: g.value()})
		}
		return n
	case 7:
		return &HasAttr{Key: g.name(genKeys)}
	case 8:
		return &FilterRef{Name: g.name([]string{"base", "Loop2", "BASE"})}
	}
	return &HasComponent{Part: g.regex()}
}

func (g treeGen) tree(depth int) Node {
	if depth == 0 || g.r.IntN(4) == 0 {
		return g.leaf()
	}
	switch g.r.IntN(5) {
	case 0:
		return &Not{X: g.tree(depth - 1)}
	case 1, 2:
		n := &Or{}
		for k := g.r.IntN(3) + 2; k > 0; k-- {
			n.Terms = append(n.Terms, g.tree(depth-1))
		}
		return n
	}
	n := &And{}
	for k := g.r.IntN(3) + 2; k > 0; k-- {
		n.Terms = append(n.Terms, g.tree(depth-1))
	}
	return n
}

// vehicle is a random vehicle over the same vocabulary as the evaluation pools.
func (g treeGen) vehicle() *Vehicle {
	v := &Vehicle{VIN: g.pick([]string{"WDD1234567890ABCD", "WDD9999999999ZZZZ", "SAJNX5745SC00000X", "SAJNX5745SC000001", "1FTEW1E50KFA00001", "WBAé", ""})}
	if g.r.IntN(3) == 0 {
		v.VIN = patternGen{r: g.r}.subject()
	}
	for k := g.r.IntN(4); k > 0; k-- {
		v.Packages = append(v.Packages, Package{Name: g.pick(genNames), Version: g.pick(append(genVersions, "not-semver", "2.0"))})
	}
	for k := g.r.IntN(3); k > 0; k-- {
		v.Components = append(v.Components, g.pick([]string{"ECU1234", "ECU1235", "TCU9", "a|b", "X"}))
	}
	v.Now = genNow
	if age := genAges[g.r.IntN(len(genAges))]; age > 0 {
		v.LastSeen = genNow.Add(-age)
	}
	for k := g.r.IntN(3); k > 0; k-- {
		v.Updates = append(v.Updates, UpdateState{Name: g.pick(genNames), Version: g.pick(genVersions[:3]), Status: g.pick(Statuses)})
	}
	if g.r.IntN(4) > 0 {
		v.Attrs = map[string]Value{}
		for k := g.r.IntN(3) + 1; k > 0; k-- {
			v.Attrs[g.pick(genKeys)] = g.value()
		}
	}
	return v
}

// Property: for generated trees of every node kind, Parse(Format(t)) == t and Format is idempotent.
func TestFormatRoundTripsGeneratedTrees(t *testing.T) {
	seed := *propSeed
	g := treeGen{r: rand.New(rand.NewPCG(seed, 0x5eed))}
	for i := 0; i < 2000; i++ {
		tr := g.tree(4)
		out := Format(tr)
		back, err := Parse(out)
		require.NoError(t, err, "seed %d, tree %d: the canonical form does not parse: %s", seed, i, out)
		require.True(t, Equal(tr, back), "seed %d, tree %d: Parse(Format(t)) != t for %s", seed, i, out)
		require.Equal(t, out, Format(back), "seed %d, tree %d: Format is not idempotent", seed, i)
	}
}

// Property: on generated vehicles, the reference evaluator, the expr program and the index plan
// agree for generated checked trees, references included; the plan over memIndex checks regexes
// with residual expr programs, over gramMemIndex it takes vin_matches candidates from the VIN
// grams, over posMemIndex it answers them from the VIN bytes by position (generated patterns:
// case-insensitive, alternations, classes, anchors, repetitions).
func TestEvaluatorsAgreeOnGeneratedTrees(t *testing.T) {
	seed := *propSeed
	g := treeGen{r: rand.New(rand.NewPCG(seed, 0xe7a1)), evalish: true}
	fleet := make([]*Vehicle, 150)
	for i := range fleet {
		fleet[i] = g.vehicle()
	}
	idx, gidx, pidx := newMemIndex(fleet), newGramMemIndex(fleet), newPosMemIndex(fleet)
	allPositions(t)
	refs := LookupFunc(func(name string) (string, bool) {
		e, ok := map[string]string{"base": `vin_matches "^W" AND NOT has_attr "none"`, "loop2": `has_component "ECU" OR filter "base"`}[strings.ToLower(name)]
		return e, ok
	})
	compiled, matchedSome := 0, 0
	for i := 0; i < 600; i++ {
		src := Format(g.tree(4))
		p, err := Compile(src, refs)
		require.NoError(t, err, "seed %d, tree %d: %s", seed, i, src)
		compiled++
		var want []uint32
		for id, v := range fleet {
			e, m := p.Eval(v), p.Match(v)
			require.Equal(t, e, m, "seed %d, tree %d: reference %v, expr %v for %s on %+v", seed, i, e, m, src, *v)
			if e {
				want = append(want, uint32(id))
			}
		}
		got := p.Select(idx).ToArray()
		if len(want) == 0 {
			want = []uint32{}
		}
		require.Equal(t, want, got, "seed %d, tree %d: index plan differs for %s", seed, i, src)
		require.Equal(t, uint64(len(want)), p.Count(idx))
		got = p.Select(gidx).ToArray()
		require.Equal(t, want, got, "seed %d, tree %d: index plan with VIN grams differs for %s", seed, i, src)
		got = p.Select(pidx).ToArray()
		require.Equal(t, want, got, "seed %d, tree %d: index plan with VIN positions differs for %s", seed, i, src)
		got = p.Select(withoutFleetState{idx}).ToArray()
		require.Equal(t, want, got, "seed %d, tree %d: index plan without fleet-state bitmaps differs for %s", seed, i, src)
		if len(want) > 0 && len(want) < len(fleet) {
			matchedSome++
		}
	}
	// The generator is worth something only if filters split the fleet.
	require.Greater(t, matchedSome, compiled/4, fmt.Sprintf("seed %d: too few generated filters select part of the fleet", seed))
}
