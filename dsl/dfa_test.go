package dsl

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The byte DFA answers what package regexp answers, on the VIN shapes of the dry-run budget and
// on the corner cases of anchors, empty matches, case folding and bytes it hands back.
func TestByteDFAMatchesLikeRegexp(t *testing.T) {
	subjects := []string{"", "X", "9", "X9", "9X", "x9", "WDD2050461F123459", "SAJBD4BV2KCX00009", "1HGCM82633A004359",
		"1HGCM82633A00435X", "5YJ3E1EA1PF000001", "abc", "ABC\n", "\nABC", "a\nb", "é", "X\xff9", "K", "k", "\u212a"}
	for _, p := range []string{`X.*9$`, `.*ABC.*`, `^1HG.*9$`, `(7|X)$`, `^W.*(7|X)$`, `[13579]$`, `^.{9}M`,
		`(?i)x[0-9]$`, `(?i)(bd4|e1e)`, `^(WDD|SAJ)`, `$^`, `^$`, `a\Ab`, `\A\Aabc`, `^`, `$`, `x*`, `(?s).`, `.`,
		`[^\x00-\x{10FFFF}]`, `(?i)k`, `\z`, `^X|9$`, `(?U)X.+?9`} {
		d := buildDFA(p)
		require.NotNil(t, d, "%q has only text anchors: the DFA takes it", p)
		re := regexp.MustCompile(p)
		m := compileMatcher(p)
		for _, s := range subjects {
			want := re.MatchString(s)
			if got, ok := d.match(s); ok {
				assert.Equal(t, want, got, "DFA of %q on %q", p, s)
			}
			assert.Equal(t, want, m.match(s), "matcher of %q on %q", p, s)
		}
	}
	for _, p := range []string{`\bX`, `(?m)^X`, `X$(?m:$)`} {
		assert.Nil(t, buildDFA(p), "%q: line anchors and word boundaries stay with package regexp", p)
	}
	assert.Nil(t, buildDFA(`(a|b)*a(a|b){12}`), "more than %d states", maxDFAStates)
	big := compileMatcher(`(a|b)*a(a|b){12}`)
	assert.True(t, big.match("aaaaaaaaaaaaaaaa"), "package regexp answers it")
	_, ok := buildDFA(`X.*9$`).match("X\xff9")
	assert.False(t, ok, "a byte of 0x80 or above goes back to package regexp")
}

// Property: on generated patterns (classes, case folding, alternations, repetitions, anchors) and
// generated strings, the matcher with its DFA answers what package regexp answers, and the DFA
// takes most patterns.
func TestByteDFAAgreesWithRegexp(t *testing.T) {
	seed := *propSeed
	g := patternGen{r: rand.New(rand.NewPCG(seed, 0xdfa))}
	built := 0
	const patterns = 3000
	for i := 0; i < patterns; i++ {
		p := g.pattern()
		re := regexp.MustCompile(p)
		m := compileMatcher(p)
		d := buildDFA(p)
		if d != nil {
			built++
		}
		for k := 0; k < 40; k++ {
			s := g.subject()
			if k%2 == 0 { // ASCII strings the DFA reads to the end
				s = g.asciiSubject()
			}
			want := re.MatchString(s)
			require.Equal(t, want, m.match(s), "seed %d: matcher of %q on %q", seed, p, s)
			if d != nil {
				if got, ok := d.match(s); ok {
					require.Equal(t, want, got, "seed %d: DFA of %q on %q", seed, p, s)
				}
			}
		}
	}
	require.Greater(t, built, patterns/2, fmt.Sprintf("seed %d: the DFA takes too few patterns", seed))
}

// asciiSubject draws ASCII strings of the patterns' literals and VIN characters.
func (g patternGen) asciiSubject() string {
	pieces := []string{"W", "D", "WDD", "SAJ", "X", "x", "9", "0", "1", "2", "a", "A", "nav", "k", "K", ".", "-", "\n", " ", "_", "5YJ3E1EA1PF00000"}
	var b []byte
	for k := g.r.IntN(9); k > 0; k-- {
		b = append(b, pieces[g.r.IntN(len(pieces))]...)
	}
	return string(b)
}

// FuzzByteDFA compares the byte DFA with package regexp on any pattern and string: a difference
// would be a vehicle a regex leaf wrongly selects or drops. Seeds: testdata/fuzz.
//
//	go test ./dsl -run '^$' -fuzz FuzzByteDFA -fuzztime 2m -parallel 1
func FuzzByteDFA(f *testing.F) {
	for _, s := range [][2]string{{`X.*9$`, "WDD2050461FX23459"}, {`^1HG.*9$`, "1HGCM82633A004359"}, {`(7|X)$`, "ABX"},
		{`$^`, ""}, {`\A\Aabc`, "abc"}, {`(?i)k`, "K"}, {`.`, "\n"}, {`a\z|b`, "ab"}, {`(?i)(bd4|e1e)`, "SAJBD4"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		d := buildDFA(pattern)
		if d == nil {
			return
		}
		if got, ok := d.match(s); ok && got != re.MatchString(s) {
			t.Fatalf("the DFA of %q says %v on %q, package regexp %v", pattern, got, s, !got)
		}
	})
}
