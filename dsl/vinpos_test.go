package dsl

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Property: on generated patterns and a fleet of generated VINs (ASCII ones of every length up to
// and past the positions, and non-ASCII ones the positions do not cover), the answer from the VIN
// positions is what package regexp selects, and the positions take most patterns.
func TestVINPositionsAgreeWithRegexp(t *testing.T) {
	seed := *propSeed
	g := patternGen{r: rand.New(rand.NewPCG(seed, 0x905))}
	var fleet []*Vehicle
	for _, vin := range []string{"WDD2050461FX23459", "1FTEW1E50KFA00009", "SAJBD4BV2KCX0000X", "", "X9", "wdd2050461fx23459", "WDD2050461FX234599"} {
		fleet = append(fleet, &Vehicle{VIN: vin})
	}
	for len(fleet) < 400 {
		s := g.asciiSubject()
		if len(fleet)%4 == 0 {
			s = g.subject()
		}
		fleet = append(fleet, &Vehicle{VIN: s})
	}
	idx := newPosMemIndex(fleet)
	require.False(t, idx.VINUnpositioned().IsEmpty(), "some VINs are not positioned")
	answered := 0
	const patterns = 2000
	for i := 0; i < patterns; i++ {
		p := g.pattern()
		re := regexp.MustCompile(p)
		l := &leaf{re: compileMatcher(p), pos: &lazyPos{pattern: p}}
		got := (&Program{}).selectVINPositions(l, idx, idx.Universe())
		if got == nil {
			continue
		}
		answered++
		want := []uint32{}
		for id, v := range fleet {
			if re.MatchString(v.VIN) {
				want = append(want, uint32(id))
			}
		}
		require.Equal(t, want, append([]uint32{}, got.ToArray()...), "seed %d: the positions' answer for %q", seed, p)
	}
	require.Greater(t, answered, patterns/2, fmt.Sprintf("seed %d: the positions answer too few patterns", seed))
}

// The shapes of the dry-run budget, answered from the positions over a fleet of VINs, select what
// package regexp selects; within a set of candidates they select only candidates.
func TestVINPositionsShapes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
	fleet := make([]*Vehicle, 3000)
	for i := range fleet {
		b := []byte([]string{"WDD", "WBA", "SAJ", "1FT", "5YJ", "1HG"}[r.IntN(6)])
		for len(b) < 17 {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		fleet[i] = &Vehicle{VIN: string(b)}
	}
	fleet[7].VIN = "WDD2050461FX2345é9" // not positioned
	idx := newPosMemIndex(fleet)
	half := idx.Universe().Clone()
	half.RemoveRange(1500, 3000)
	for _, p := range []string{`X.*9$`, `.*ABC.*`, `^1HG.*9$`, `(7|X)$`, `^(WDD|SAJ).*(7|X)$`, `[13579]$`, `^.{9}M`, `(?i)x[0-9]$`,
		`(?i)(bd4|e1e)`, `9`, `^$`, `.`, `X.*é9$`} {
		re := regexp.MustCompile(p)
		l := &leaf{re: compileMatcher(p), pos: &lazyPos{pattern: p}}
		var all, within []uint32
		for id, v := range fleet {
			if re.MatchString(v.VIN) {
				all = append(all, uint32(id))
				if id < 1500 {
					within = append(within, uint32(id))
				}
			}
		}
		got := (&Program{}).selectVINPositions(l, idx, idx.Universe())
		require.NotNil(t, got, p)
		assert.Equal(t, fmt.Sprint(all), fmt.Sprint(got.ToArray()), p)
		got = (&Program{}).selectVINPositions(l, idx, half)
		assert.Equal(t, fmt.Sprint(within), fmt.Sprint(got.ToArray()), "%s within the first half", p)
	}
	for _, p := range []string{`\bX`, `(?m)^X`} {
		l := &leaf{re: compileMatcher(p), pos: &lazyPos{pattern: p}}
		assert.Nil(t, (&Program{}).selectVINPositions(l, idx, idx.Universe()), "%s is checked VIN by VIN", p)
	}
}
