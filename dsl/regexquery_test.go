package dsl

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The gram queries of the filter shapes the index must narrow: what each requires is what the
// regex says, case-folded.
func TestRegexGramQuery(t *testing.T) {
	for _, tc := range []struct{ pattern, query string }{
		{`X.*9$`, `"9$" "X"`},
		{`(?i)^wdd`, `"WDD" "^WD"`},
		{`^WDD`, `"WDD" "^WD"`},
		{`^W`, `"^W"`},
		{`[13579]$`, `("1$"|"3$"|"5$"|"7$"|"9$")`},
		{`^(WDD|SAJ)`, `("SAJ" "^SA"|"WDD" "^WD")`},
		{`(?i)nav`, `"NAV"`},
		{`^$`, `"^$"`},
		{`WDD2050461`, `"046" "050" "205" "461" "504" "D20" "DD2" "WDD"`},
		// what narrows nothing
		{``, `+`},
		{`.`, `+`},
		{`$^`, `+`},
		{`a*`, `+`},
		{`[^W]`, `+`},
		// \A in the middle cannot match, but is only taken as the empty string
		{`a\Ab`, `"AB"`},
		{`[^\x00-\x{10FFFF}]`, `-`},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			q := RegexGramQuery(tc.pattern)
			s := q.String()
			// ("9"|"X9") is implied by "9$" "X" only through the regex; accept extra ORs after the
			// expected grams
			assert.True(t, s == tc.query || strings.HasPrefix(s, tc.query+" ("), "query of %q: %s, want %s", tc.pattern, s, tc.query)
		})
	}
}

// patternGen draws RE2 patterns of every shape the analysis treats: literals, classes (negated,
// case-folded), alternations, groups, repetitions, anchors and flags.
type patternGen struct{ r *rand.Rand }

func (g patternGen) atom(depth int) string {
	lits := []string{"W", "D", "WD", "WDD", "SAJ", "X", "9", "0", "1", "12", "a", "nav", "é", "É", "k", "K", "\u212a", "ß", "\\.", "-"}
	switch n := g.r.IntN(12); {
	case n < 4:
		return lits[g.r.IntN(len(lits))]
	case n == 4:
		return []string{"[0-9]", "[13579]", "[A-Z]", "[^W]", "[a-c]", "[WX]", "\\d", "[[:alpha:]]", "[éa]"}[g.r.IntN(9)]
	case n == 5:
		return []string{".", "\\w", "\\s", "\\b", "\\B"}[g.r.IntN(5)]
	case n == 6 && depth > 0:
		var alts []string
		for k := g.r.IntN(3) + 2; k > 0; k-- {
			alts = append(alts, g.seq(depth-1))
		}
		return "(" + strings.Join(alts, "|") + ")"
	case n == 7 && depth > 0:
		return "(?:" + g.seq(depth-1) + ")"
	case n == 8 && depth > 0:
		return "(?i:" + g.seq(depth-1) + ")"
	case n == 9:
		return []string{"^", "$", "\\A", "\\z", "(?m:^)", "(?m:$)"}[g.r.IntN(6)]
	}
	return lits[g.r.IntN(len(lits))]
}

func (g patternGen) seq(depth int) string {
	var b strings.Builder
	for k := g.r.IntN(4) + 1; k > 0; k-- {
		b.WriteString(g.atom(depth))
		if g.r.IntN(4) == 0 {
			b.WriteString([]string{"*", "+", "?", "{2}", "{1,3}", "*?", "{0,2}"}[g.r.IntN(7)])
		}
	}
	return b.String()
}

func (g patternGen) pattern() string {
	p := g.seq(2)
	if g.r.IntN(3) == 0 {
		p = "^" + p
	}
	if g.r.IntN(3) == 0 {
		p += "$"
	}
	if g.r.IntN(4) == 0 {
		p = "(?i)" + p
	}
	if g.r.IntN(6) == 0 {
		p += "|" + g.seq(1)
	}
	return p
}

// subject draws strings near what the patterns say: VINs, pieces of the literals, folded variants.
func (g patternGen) subject() string {
	pieces := []string{"W", "D", "WDD", "SAJ", "X", "9", "0", "1", "2", "a", "A", "nav", "NAV", "é", "É", "k", "\u212a", "ß", "SS", ".", "-", "\n", " ", "\xff"}
	if g.r.IntN(4) == 0 {
		return []string{"WDD2050461F123459", "SAJBD4BV2KCX00009", "5YJ3E1EA1PF000001", "", "wdd2050461f123459"}[g.r.IntN(5)]
	}
	var b strings.Builder
	for k := g.r.IntN(7); k > 0; k-- {
		b.WriteString(pieces[g.r.IntN(len(pieces))])
	}
	return b.String()
}

// Property: a string that a generated pattern matches satisfies the pattern's gram query, so the
// index never drops a match; and the queries narrow (many reject some strings).
func TestRegexGramQueryKeepsEveryMatch(t *testing.T) {
	seed := *propSeed
	g := patternGen{r: rand.New(rand.NewPCG(seed, 0x9a4))}
	narrowing := 0
	const patterns = 3000
	for i := 0; i < patterns; i++ {
		p := g.pattern()
		re, err := regexp.Compile(p)
		require.NoError(t, err, "seed %d: the generator made an invalid pattern %q", seed, p)
		q := RegexGramQuery(p)
		rejected := false
		for k := 0; k < 40; k++ {
			s := g.subject()
			ok := q.MatchesString(s)
			if re.MatchString(s) {
				require.True(t, ok, "seed %d: %q matches %q but its gram query %s rejects it", seed, p, s, q)
			}
			rejected = rejected || !ok
		}
		if rejected {
			narrowing++
		}
	}
	require.Greater(t, narrowing, patterns/3, fmt.Sprintf("seed %d: too few gram queries narrow anything", seed))
}

// FuzzRegexGramQuery compares the gram query of any pattern with package regexp on any string: a
// match the query rejects would be a vehicle the index plan loses. Seeds: testdata/fuzz.
//
//	go test ./dsl -run '^$' -fuzz FuzzRegexGramQuery -fuzztime 2m -parallel 1
func FuzzRegexGramQuery(f *testing.F) {
	for _, s := range [][2]string{{`X.*9$`, "WDD2050461F123459"}, {`(?i)^wdd`, "wdd"}, {`^(WDD|SAJ)`, "SAJ"},
		{`$^`, ""}, {`\A\Aabc`, "abc"}, {`(?i)k`, "\u212a"}, {`.`, "\xff"}, {"\ufffd", "\xff"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		if q := RegexGramQuery(pattern); re.MatchString(s) && !q.MatchesString(s) {
			t.Fatalf("%q matches %q but its gram query %s rejects it", pattern, s, q)
		}
	})
}

// The plan over a fleet large enough that the regex check of the candidates is split over the
// CPUs gives what the reference evaluator gives, for the filter shapes of the dry-run budget.
func TestSelectVINSplitOverCPUs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
	fleet := make([]*Vehicle, 70_000)
	for i := range fleet {
		b := []byte([]string{"WDD", "WBA", "SAJ", "1FT", "5YJ"}[r.IntN(5)])
		for len(b) < 17 {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		fleet[i] = &Vehicle{VIN: string(b)}
	}
	idx := newGramMemIndex(fleet)
	for _, src := range []string{`vin_matches "X.*9$"`, `vin_matches "(?i)^wdd"`, `NOT vin_matches "^W"`,
		`vin_matches "[13579]$"`, `vin_matches "."`, `vin_matches "(?i)a[b-d]" OR vin_matches "^5"`} {
		p := MustCompile(src, nil)
		var want []uint32
		for id, v := range fleet {
			if p.Eval(v) {
				want = append(want, uint32(id))
			}
		}
		assert.Equal(t, want, p.Select(idx).ToArray(), src)
	}
}

// A case-insensitive literal prefix is answered exactly by its spellings, each a VIN prefix lookup.
func TestFoldPrefixes(t *testing.T) {
	assert.Equal(t, []string{"WDD", "WDd", "WdD", "Wdd", "wDD", "wDd", "wdD", "wdd"}, foldPrefixes(`(?i)^wdd`))
	assert.Equal(t, []string{"KX", "kX", "\u212aX"}, foldPrefixes(`^(?i:k)X`))
	assert.Nil(t, foldPrefixes(`(?i)^wdd.`), "more than a literal")
	assert.Nil(t, foldPrefixes(`^WDD`), "nothing case-insensitive: literalPrefix answers it")
	assert.Nil(t, foldPrefixes(`(?i)wdd`), "not anchored")
	assert.Nil(t, foldPrefixes(`(?i)^abcdefg`), "128 spellings")
}
