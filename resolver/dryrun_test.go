package resolver

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/require"

	"sota/dsl"
	"sota/examples"
)

// Property: the dry run counted from bitmaps and classes says what solving every selected vehicle
// one by one says: the counts, the first resolvable vehicles by VIN with their install lists, the
// first unresolved with their reasons, and the unresolved grouped by reason with their first VINs,
// also when ids are not in VIN order and VINs were deleted and inserted again since the last merge.
func TestDryRunSelectedAgreesWithSolvePerVehicle(t *testing.T) {
	g := catalogueGraph(t)
	r := rand.New(rand.NewPCG(3, 4))
	fleet := examples.FleetDSL(23, 3000)
	x := NewFleetIndex()
	x.PutMany(fleet[:2000])
	for _, v := range fleet[2000:] { // one by one, in generation order
		x.Put(mutate(r, v))
	}
	live := map[string]dsl.Vehicle{}
	for _, v := range fleet {
		if v, ok := x.Get(v.VIN); ok {
			live[v.VIN] = v
		}
	}
	for i := 0; i < 300; i++ { // deleted, some inserted again: stale and pending VIN order entries
		v := fleet[r.IntN(len(fleet))]
		x.Delete(v.VIN)
		delete(live, v.VIN)
		if i%2 == 0 {
			x.Put(v)
			live[v.VIN] = v
		}
	}
	roots := []PackageID{
		{Name: "nav-engine", Version: "3.2.0"}, {Name: "ota-client", Version: "2.1.0"}, {Name: "dab-radio", Version: "1.1.0"},
		{Name: "Voice-Assistant", Version: "2.0.0"}, {Name: "glibc", Version: "2.38.0"}, {Name: "nav-maps", Version: "2024.1.0"},
		{Name: "tzdata", Version: "2025.2.0"},
	}
	selections := map[string]func(v dsl.Vehicle) bool{
		"^W or NA":   func(v dsl.Vehicle) bool { return strings.HasPrefix(v.VIN, "W") || v.Attrs["region"].Str == "NA" },
		"every":      func(dsl.Vehicle) bool { return true },
		"Z… (last)":  func(v dsl.Vehicle) bool { return v.VIN >= "Y" },
		"none":       func(dsl.Vehicle) bool { return false },
		"every 97th": func(v dsl.Vehicle) bool { return len(v.VIN) > 0 && v.VIN[16] == '7' && v.VIN[15] == '9' },
	}
	unresolved, resolvable := 0, 0
	for _, root := range roots {
		for name, pass := range selections {
			for _, samples := range []int{0, 3, 20} {
				got := checkDryRun(t, x, live, g, root, pass, samples, name)
				if len(g.Deps(root)) == 0 && got.Matched > 0 {
					require.LessOrEqual(t, got.Solved, 1, "%s has no dependencies: one class (none once its outcome is cached)", root)
				}
				unresolved += got.Unresolvable
				resolvable += got.Matched - got.Unresolvable
			}
		}
	}
	// The catalogue and the fleet give both outcomes.
	require.Greater(t, unresolved, 100)
	require.Greater(t, resolvable, 1000)
}

// The unresolved vehicles are grouped by reason: which dependency fails depends on what a vehicle
// has installed.
func TestDryRunSelectedGroupsByReason(t *testing.T) {
	g := newMapGraph().
		pkg(t, "app", "1.0.0", "lib >=1.0.0", "ui >=1.0.0").
		pkg(t, "lib", "1.0.0", "core 1.0.0").pkg(t, "lib", "2.0.0", "core 3.0.0").
		pkg(t, "ui", "1.0.0", "gfx 9.0.0").pkg(t, "core", "1.0.0").pkg(t, "gfx", "1.0.0")
	r := rand.New(rand.NewPCG(5, 6))
	x := NewFleetIndex()
	live := map[string]dsl.Vehicle{}
	for i := 0; i < 2000; i++ {
		v := dsl.Vehicle{VIN: fmt.Sprintf("V%05d", r.IntN(100000))}
		for _, p := range []dsl.Package{{Name: "lib", Version: "1.0.0"}, {Name: "LIB", Version: "2.0.0"}, {Name: "ui", Version: "1.0.0"}, {Name: "app", Version: "1.0.0"}} {
			if r.IntN(3) == 0 {
				v.Packages = append(v.Packages, p)
			}
		}
		x.Put(v)
		live[v.VIN] = v
	}
	got := checkDryRun(t, x, live, g, PackageID{Name: "app", Version: "1.0.0"}, func(dsl.Vehicle) bool { return true }, 5, "every")
	require.Len(t, got.ByReason, 2)
	require.Len(t, got.ByReason[0].Sample, ReasonSample)
	require.Positive(t, got.AlreadyInstalled)
	require.Greater(t, got.Matched, got.Unresolvable)
}

// checkDryRun compares DryRunSelected over the vehicles pass selects with Solve per vehicle.
func checkDryRun(t *testing.T, x *FleetIndex, live map[string]dsl.Vehicle, g Graph, root PackageID, pass func(dsl.Vehicle) bool, samples int, name string) DryRunCounts {
	t.Helper()
	got := x.DryRunSelected(func(idx dsl.Index) *roaring.Bitmap {
		bm := roaring.New()
		idx.Universe().Iterate(func(id uint32) bool {
			if v := idx.Vehicle(id); pass(*v) {
				bm.Add(id)
			}
			return true
		})
		return bm
	}, g, root, samples)

	want := DryRunCounts{}
	byReason := map[string][]string{}
	for _, vin := range slices.Sorted(maps.Keys(live)) {
		v := live[vin]
		if !pass(v) {
			continue
		}
		installed := map[string]string{}
		has := false
		for _, p := range v.Packages {
			k := strings.ToLower(p.Name)
			if cur, ok := installed[k]; !ok || dsl.CompareVersions(p.Version, cur) > 0 {
				installed[k] = p.Version
			}
			has = has || strings.EqualFold(p.Name, root.Name) && p.Version == root.Version
		}
		if has {
			want.AlreadyInstalled++
			continue
		}
		want.Matched++
		install, err := Solve(g, root, installed)
		if err != nil {
			want.Unresolvable++
			byReason[err.Error()] = append(byReason[err.Error()], vin)
			if len(want.Unresolved) < samples {
				want.Unresolved = append(want.Unresolved, UnresolvedVehicle{VIN: vin, Reason: err.Error()})
			}
			continue
		}
		if len(want.Sample) < samples {
			want.Sample = append(want.Sample, SampleVehicle{VIN: vin, Install: install})
		}
	}
	for reason, vins := range byReason {
		want.ByReason = append(want.ByReason, UnresolvedGroup{Reason: reason, Vehicles: len(vins), Sample: vins[:min(ReasonSample, len(vins))]})
	}
	sort.Slice(want.ByReason, func(i, j int) bool {
		a, b := want.ByReason[i], want.ByReason[j]
		return a.Vehicles > b.Vehicles || a.Vehicles == b.Vehicles && a.Reason < b.Reason
	})
	if want.Matched > 0 {
		want.Solved = got.Solved // how many classes, checked by the callers
	}
	require.Equal(t, want, got, "%s over %s, sample %d", root, name, samples)
	return got
}

// The outcomes of a package's classes are reused only while its dependencies and the versions the
// fleet has of them stay the same.
func TestDryRunSelectedCacheFollowsGraphAndFleet(t *testing.T) {
	x := NewFleetIndex()
	live := map[string]dsl.Vehicle{}
	put := func(v dsl.Vehicle) { x.Put(v); live[v.VIN] = v }
	put(dsl.Vehicle{VIN: "V1", Packages: []dsl.Package{{Name: "lib", Version: "1.0.0"}}})
	put(dsl.Vehicle{VIN: "V2"})
	root := PackageID{Name: "app", Version: "1.0.0"}
	every := func(dsl.Vehicle) bool { return true }

	g1 := newMapGraph().pkg(t, "app", "1.0.0", "lib >=1.0.0").pkg(t, "lib", "1.0.0").pkg(t, "lib", "2.0.0")
	got := checkDryRun(t, x, live, g1, root, every, 5, "g1")
	require.Zero(t, got.Unresolvable)
	// lib 2.0.0 now needs what nobody has: V2 (which would get lib 2.0.0) fails
	g2 := newMapGraph().pkg(t, "app", "1.0.0", "lib >=1.0.0").pkg(t, "lib", "1.0.0").pkg(t, "lib", "2.0.0", "core 9.0.0")
	got = checkDryRun(t, x, live, g2, root, every, 5, "g2")
	require.Equal(t, 1, got.Unresolvable)
	require.Positive(t, got.Solved)
	// again: cached
	got = checkDryRun(t, x, live, g2, root, every, 5, "g2 again")
	require.Zero(t, got.Solved)
	// V1 moves to lib 2.0.0, a version of lib the fleet did not have installed
	put(dsl.Vehicle{VIN: "V1", Packages: []dsl.Package{{Name: "lib", Version: "2.0.0"}}})
	got = checkDryRun(t, x, live, g2, root, every, 5, "V1 on lib 2.0.0")
	require.Equal(t, 1, got.Unresolvable, "V1 keeps lib 2.0.0 as installed; V2 still fails")
	require.Positive(t, got.Solved)
}
