package resolver

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
	"sota/examples"
)

// refFleet is the obviously right model the index is checked against.
type refFleet map[string]dsl.Vehicle

// normalize is what the index keeps of a vehicle: duplicates once, numbers without Str.
func normalize(v dsl.Vehicle) dsl.Vehicle {
	out := dsl.Vehicle{VIN: v.VIN}
	for _, p := range v.Packages {
		if !slices.Contains(out.Packages, p) {
			out.Packages = append(out.Packages, p)
		}
	}
	for _, c := range v.Components {
		if !slices.Contains(out.Components, c) {
			out.Components = append(out.Components, c)
		}
	}
	if len(v.Attrs) > 0 {
		out.Attrs = map[string]dsl.Value{}
		for k, a := range v.Attrs {
			if a.IsNum {
				a.Str = ""
			}
			out.Attrs[k] = a
		}
	}
	return out
}

func (f refFleet) where(pred func(v dsl.Vehicle) bool) []string {
	var out []string
	for vin, v := range f {
		if pred(v) {
			out = append(out, vin)
		}
	}
	sort.Strings(out)
	return out
}

func vinsOf(x *FleetIndex, bm *roaring.Bitmap) []string {
	var out []string
	bm.Iterate(func(id uint32) bool {
		out = append(out, x.VIN(id))
		return true
	})
	sort.Strings(out)
	return out
}

// mutate makes a generated vehicle more varied: package names in other case, duplicates,
// missing attributes.
func mutate(r *rand.Rand, v dsl.Vehicle) dsl.Vehicle {
	if len(v.Packages) == 0 || len(v.Components) == 0 {
		return v
	}
	switch r.IntN(6) {
	case 0:
		v.Packages = append(v.Packages[:0:0], v.Packages...)
		v.Packages[0].Name = strings.ToUpper(v.Packages[0].Name)
	case 1:
		v.Packages = append(v.Packages[:len(v.Packages):len(v.Packages)], v.Packages[0])
		v.Components = append(v.Components[:len(v.Components):len(v.Components)], v.Components[0])
	case 2:
		v.Attrs = nil
	case 3:
		v.Packages, v.Components = nil, nil
	}
	return v
}

func checkIndex(t *testing.T, x *FleetIndex, ref refFleet, r *rand.Rand) {
	t.Helper()
	require.Equal(t, len(ref), x.Len())
	all := ref.where(func(dsl.Vehicle) bool { return true })
	assert.Equal(t, all, vinsOf(x, x.Universe()))
	for vin, want := range ref {
		got, ok := x.Get(vin)
		require.True(t, ok, vin)
		assert.Equal(t, normalize(want), got)
		id, ok := x.ID(vin)
		require.True(t, ok)
		assert.Equal(t, normalize(want), *x.Vehicle(id))
	}

	prefixes := []string{"", "W", "WDD", "5YJ", "ZZZ", "1FTEW"}
	for i := 0; i < 20 && len(all) > 0; i++ {
		vin := all[r.IntN(len(all))]
		prefixes = append(prefixes, vin[:1+r.IntN(len(vin))])
	}
	for _, p := range prefixes {
		want := ref.where(func(v dsl.Vehicle) bool { return strings.HasPrefix(v.VIN, p) })
		assert.Equal(t, want, vinsOf(x, x.VINPrefix(p)), "prefix %q", p)
	}

	for _, re := range []string{"", "^0261", "^BMS", "EYEQ5TRI2", "nothing-like-this"} {
		rx := regexp.MustCompile(re)
		want := ref.where(func(v dsl.Vehicle) bool { return slices.ContainsFunc(v.Components, rx.MatchString) })
		assert.Equal(t, want, vinsOf(x, x.Components(rx.MatchString)), "component %q", re)
	}

	for _, q := range [][2]string{{"", ""}, {"^nav", "^3\\."}, {"OPENSSL", ""}, {"carplay", "2.0.0"}} {
		rn, rv := regexp.MustCompile(q[0]), regexp.MustCompile(q[1])
		match := func(name, version string) bool { return rn.MatchString(name) && rv.MatchString(version) }
		want := ref.where(func(v dsl.Vehicle) bool {
			return slices.ContainsFunc(v.Packages, func(p dsl.Package) bool { return match(p.Name, p.Version) })
		})
		assert.Equal(t, want, vinsOf(x, x.Packages(match)), "packages %q", q)
	}

	for _, name := range []string{"openssl", "OpenSSL", "nav-engine", "unknown"} {
		match := func(version string) bool { return version >= "3" }
		want := ref.where(func(v dsl.Vehicle) bool {
			return slices.ContainsFunc(v.Packages, func(p dsl.Package) bool {
				return strings.EqualFold(p.Name, name) && match(p.Version)
			})
		})
		assert.Equal(t, want, vinsOf(x, x.PackageNamed(name, match)), "package named %q", name)
	}

	attrQs := []struct {
		key   string
		match func(dsl.Value) bool
	}{
		{"region", func(a dsl.Value) bool { return a.Str == "EU" }},
		{"year", func(a dsl.Value) bool { return a.IsNum && a.Num >= 2022 }},
		{"market", func(dsl.Value) bool { return true }},
		{"missing", func(dsl.Value) bool { return true }},
	}
	for _, q := range attrQs {
		want := ref.where(func(v dsl.Vehicle) bool {
			a, ok := v.Attrs[q.key]
			return ok && q.match(a)
		})
		assert.Equal(t, want, vinsOf(x, x.Attr(q.key, q.match)), "attr %q", q.key)
	}
}

func TestFleetIndexAnswersLikeAScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fleet := examples.FleetDSL(11, 4000)
	x := NewFleetIndex()
	ref := refFleet{}

	// Bulk load, then single puts, replacements and deletes enough to merge the VIN order.
	bulk := fleet[:2000]
	for i := range bulk {
		bulk[i] = mutate(r, bulk[i])
		ref[bulk[i].VIN] = bulk[i]
	}
	x.PutMany(bulk)
	checkIndex(t, x, ref, r)

	for step := 0; step < 3000; step++ {
		switch k := r.IntN(10); {
		case k < 4: // new vehicle
			v := mutate(r, fleet[2000+r.IntN(2000)])
			x.Put(v)
			ref[v.VIN] = v
		case k < 7: // replace an existing one with another's data
			vins := slices.Collect(func(yield func(string) bool) {
				for vin := range ref {
					if !yield(vin) {
						return
					}
				}
			})
			if len(vins) == 0 {
				continue
			}
			v := mutate(r, fleet[r.IntN(len(fleet))])
			v.VIN = vins[r.IntN(len(vins))]
			x.Put(v)
			ref[v.VIN] = v
		default:
			vin := fleet[r.IntN(len(fleet))].VIN
			x.Delete(vin)
			delete(ref, vin)
		}
		if step%1000 == 999 {
			checkIndex(t, x, ref, r)
		}
	}
	// Delete everything: no stale ids and no leftover values.
	for vin := range ref {
		x.Delete(vin)
	}
	checkIndex(t, x, refFleet{}, r)
	assert.True(t, x.Components(func(string) bool { return true }).IsEmpty())
	assert.Empty(t, x.attrs)
	assert.Empty(t, x.attrSets)
	assert.Empty(t, x.byName)
	assert.Empty(t, x.pvs.ids)
	assert.Empty(t, x.parts.ids)
	assert.Empty(t, x.vinGrams)
}

func TestFleetIndexBulkLoadIsInVINOrder(t *testing.T) {
	fleet := examples.FleetDSL(5, 3000)
	x := NewFleetIndex()
	x.PutMany(fleet)
	vins := make([]string, len(fleet))
	for i, v := range fleet {
		vins[i] = v.VIN
	}
	sort.Strings(vins)
	for i, vin := range vins {
		id, ok := x.ID(vin)
		require.True(t, ok)
		require.Equal(t, uint32(i), id, vin)
	}
	bm := x.VINPrefix("WDD")
	require.False(t, bm.IsEmpty())
	assert.Equal(t, uint64(bm.Maximum()-bm.Minimum()+1), bm.GetCardinality(), "a prefix is one id range")
}

func TestFleetIndexRepeatedVINInOneBatchKeepsTheLast(t *testing.T) {
	x := NewFleetIndex()
	a := dsl.Vehicle{VIN: "WDD2050461F000001", Components: []string{"A"}}
	b := dsl.Vehicle{VIN: "WDD2050461F000001", Components: []string{"B"}}
	x.PutMany([]dsl.Vehicle{a, b, {VIN: ""}})
	assert.Equal(t, 1, x.Len())
	got, _ := x.Get(a.VIN)
	assert.Equal(t, []string{"B"}, got.Components)
	assert.True(t, x.Components(func(p string) bool { return p == "A" }).IsEmpty())
}

func TestFleetIndexKeepsItsOwnCopy(t *testing.T) {
	x := NewFleetIndex()
	v := dsl.Vehicle{VIN: "VF1RJA00A1A000001", Packages: []dsl.Package{{Name: "nav", Version: "1.0.0"}},
		Components: []string{"P1"}, Attrs: map[string]dsl.Value{"region": {Str: "EU"}}}
	x.Put(v)
	v.Packages[0].Version = "9.9.9"
	v.Components[0] = "P2"
	v.Attrs["region"] = dsl.Value{Str: "NA"}
	got, _ := x.Get(v.VIN)
	assert.Equal(t, "1.0.0", got.Packages[0].Version)
	assert.Equal(t, "P1", got.Components[0])
	assert.Equal(t, "EU", got.Attrs["region"].Str)
	got.Attrs["region"] = dsl.Value{Str: "CN"} // Get's copy is the caller's
	again, _ := x.Get(v.VIN)
	assert.Equal(t, "EU", again.Attrs["region"].Str)
	assert.Nil(t, x.Vehicle(99))
	assert.Equal(t, "", x.VIN(99))
}

func TestFleetIndexReadUnderConcurrentWrites(t *testing.T) {
	fleet := examples.FleetDSL(9, 3000)
	x := NewFleetIndex()
	x.PutMany(fleet[:1000])
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i, v := range fleet[1000:] {
			x.Put(v)
			if i%3 == 0 {
				x.Delete(fleet[i].VIN)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			x.Read(func(idx dsl.Index) {
				u := idx.Universe()
				wdd := idx.VINPrefix("WDD")
				// Within one read every id found is a live vehicle with that prefix.
				wdd.Iterate(func(id uint32) bool {
					v := idx.Vehicle(id)
					if v == nil || !strings.HasPrefix(v.VIN, "WDD") || !u.Contains(id) {
						panic(fmt.Sprintf("inconsistent read: id %d", id))
					}
					return true
				})
			})
		}
	}()
	wg.Wait()
	assert.Equal(t, 3000-667, x.Len())
}
