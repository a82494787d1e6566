package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Property: for random group specs and fleets, every target vehicle is in exactly one group (with
// the final "rest" group validGroups adds), a percent group without filter holds its share of the
// whole target within one vehicle (fewer only when fewer were left), and the same campaign assigns
// the same groups twice.
func TestAssignGroupsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 15))
	for round := range 300 {
		n := r.IntN(400)
		vins := make([]string, n)
		for i := range vins {
			vins[i] = fmt.Sprintf("WDD%014d", r.IntN(1_000_000_000))
		}
		slices.Sort(vins)
		vins = slices.Compact(vins)
		n = len(vins)
		var in []GroupSpec
		for g := range 1 + r.IntN(6) {
			spec := GroupSpec{Name: fmt.Sprintf("g%d", g)}
			if r.IntN(3) > 0 {
				p := 1 + r.IntN(60)
				spec.Percent = &p
			}
			if r.IntN(3) == 0 {
				spec.Filter = fmt.Sprintf("digit %d", r.IntN(10)) // matchers below: the VIN's last digit
			}
			in = append(in, spec)
		}
		specs, err := validGroups(in)
		require.NoError(t, err)
		matchers := make([]func(string) bool, len(specs))
		for i, g := range specs {
			if g.Filter != "" {
				d := strings.TrimPrefix(g.Filter, "digit ")
				matchers[i] = func(vin string) bool { return strings.HasSuffix(vin, d) }
			}
		}
		campaign := newUUIDs(1)[0]
		groups := AssignGroups(campaign, specs, matchers, vins)
		require.Len(t, groups, len(specs))

		seen := map[string]int{}
		left := n
		for gi, g := range groups {
			assert.True(t, slices.IsSorted(g), "round %d: group %d sorted", round, gi)
			for _, v := range g {
				seen[v]++
				if matchers[gi] != nil {
					assert.True(t, matchers[gi](v), "round %d: %s matches the filter of group %d", round, v, gi)
				}
			}
			if specs[gi].Percent != nil && specs[gi].Filter == "" {
				share := float64(*specs[gi].Percent) * float64(n) / 100
				want := min(left, int(math.Ceil(share)))
				assert.Equal(t, want, len(g), "round %d: group %d of %d%% over %d", round, gi, *specs[gi].Percent, n)
				assert.LessOrEqual(t, math.Abs(float64(len(g))-share), 1.0+float64(max(0, int(math.Ceil(share))-left)))
			}
			left -= len(g)
		}
		assert.Len(t, seen, n, "round %d: every target vehicle is in a group", round)
		for v, k := range seen {
			assert.Equal(t, 1, k, "round %d: %s is in exactly one group", round, v)
		}
		assert.Equal(t, groups, AssignGroups(campaign, specs, matchers, vins), "round %d: the same groups twice", round)
	}
}

// A percent group takes vehicles by the hash of (campaign, VIN): another campaign picks others.
func TestAssignGroupsByCampaignHash(t *testing.T) {
	vins := make([]string, 1000)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDD%014d", i)
	}
	ten := 10
	specs := []GroupSpec{{Name: "canary", Percent: &ten}, {Name: RestGroup}}
	a := AssignGroups("11111111-1111-4111-8111-111111111111", specs, make([]func(string) bool, 2), vins)
	b := AssignGroups("22222222-2222-4222-8222-222222222222", specs, make([]func(string) bool, 2), vins)
	require.Len(t, a[0], 100)
	require.Len(t, b[0], 100)
	assert.NotEqual(t, a[0], b[0])
	assert.NotEqual(t, vins[:100], a[0], "not the first VINs")
}

// A pause reason's percent has one decimal, or more when one would hide that it is past the
// threshold.
func TestPausePercent(t *testing.T) {
	for _, tc := range []struct {
		n, of, thr int
		want       string
	}{{3, 20, 10, "15"}, {9, 40, 20, "22.5"}, {1, 7, 5, "14.3"}, {501, 10000, 5, "5.01"}, {50001, 1000000, 5, "5.0001"}, {0, 0, 5, "0"}} {
		assert.Equal(t, tc.want, pct(tc.n, tc.of, tc.thr), "%d of %d", tc.n, tc.of)
	}
}
