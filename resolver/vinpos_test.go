package resolver

import (
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
	"sota/examples"
)

// Regex leaves with many gram candidates are answered from the VIN positions of the real index:
// over a fleet large enough for that (30,000 vehicles loaded in VIN order, 500 of them deleted, then
// 10,000 added out of order on their ids, lower-case, non-ASCII and longer than the positions), the
// plan selects what package regexp selects, alone and under other leaves.
func TestRegexLeavesFromVINPositions(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 17))
	fleet := examples.FleetDSL(5, 40_000)
	x := NewFleetIndex()
	x.PutMany(fleet[:30_000])
	x.Optimize()
	live := map[string]dsl.Vehicle{}
	for _, v := range fleet[:30_000] {
		live[v.VIN] = v
	}
	for i := 0; i < 500; i++ { // their ids are reused by the VINs added next
		vin := fleet[r.IntN(30_000)].VIN
		x.Delete(vin)
		delete(live, vin)
	}
	for i, v := range fleet[30_000:] {
		switch i % 5 {
		case 1:
			v.VIN = strings.ToLower(v.VIN)
		case 2:
			v.VIN = v.VIN[:10] + "é" + v.VIN[11:]
		case 3:
			v.VIN += "0123456789"
		}
		x.Put(v)
		live[v.VIN] = v
	}
	var vins []string
	for vin := range live {
		vins = append(vins, vin)
	}
	sort.Strings(vins)

	for _, pattern := range []string{`[13579]$`, `(7|X)$`, `(?i)x.*9$`, `^.{9}[MNP]`, `^(WDD|SAJ).*(7|X)$`, `.`, `[0-9]{4}$`,
		`(?i)^w`, `\d$`, `^.{16}9$`, `é`, `[^A-Z]$`} {
		re := regexp.MustCompile(pattern)
		for _, src := range []string{`vin_matches "` + pattern + `"`, `vin_matches "` + pattern + `" AND has_package "ota-client" >= "2.0.0"`} {
			p, err := dsl.Compile(src, nil)
			require.NoError(t, err)
			var want []string
			for _, vin := range vins {
				v := live[vin]
				if re.MatchString(vin) && (!strings.Contains(src, "AND") || p.Eval(&v)) {
					want = append(want, vin)
				}
			}
			var got []string
			x.Read(func(idx dsl.Index) {
				var cand *roaring.Bitmap
				if q := dsl.RegexGramQuery(pattern); !q.All() {
					cand = q.Eval(idx.(dsl.VINGramIndex).VINGram)
				}
				if strings.HasSuffix(src, `"`) && len(want) > len(vins)/8 {
					require.True(t, cand == nil || cand.GetCardinality()*16 >= idx.Universe().GetCardinality(), "%s: enough candidates to take the positions", src)
				}
				p.Select(idx).Iterate(func(id uint32) bool {
					got = append(got, idx.Vehicle(id).VIN)
					return true
				})
			})
			sort.Strings(got)
			assert.Equal(t, want, got, src)
		}
	}
}
