package resolver

import (
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
	"sota/examples"
	"sota/internal/budget"
)

// The benchmarks of the fleet budget in ARCHITECTURE.md run over one example fleet of a million
// vehicles (5 components and 20 packages each), built once per process. Each measures its
// baselines in the same run and reports the ratios; `make bench` runs them with -benchtime 1x, so
// each benchmark repeats its own measurements and reports medians.

const benchVehicles = 1_000_000

var bench struct {
	once     sync.Once
	vehicles []dsl.Vehicle // the same data the index holds, for the hand-written baselines
	idx      *FleetIndex
	load     time.Duration
	heap     uint64
	graph    *mapGraph
}

func benchFleet(b *testing.B) {
	b.Helper()
	bench.once.Do(func() {
		bench.vehicles = examples.FleetDSL(42, benchVehicles)
		// A restart reads the vehicles in key (VIN) order; load them so.
		slices.SortFunc(bench.vehicles, func(a, b dsl.Vehicle) int { return strings.Compare(a.VIN, b.VIN) })
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		bench.idx = NewFleetIndex()
		for i := 0; i < len(bench.vehicles); i += 1 << 16 { // in chunks, like a restart
			bench.idx.PutMany(bench.vehicles[i:min(i+1<<16, len(bench.vehicles))])
		}
		bench.idx.Optimize()
		bench.load = time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		bench.heap = after.HeapAlloc - before.HeapAlloc
		bench.graph = catalogueGraph(b)
	})
	if bench.idx.Len() != benchVehicles {
		b.Fatalf("fleet has %d vehicles", bench.idx.Len())
	}
}

// BenchmarkFleetIndexLoad reports the bulk load of the benchmark fleet (done once per process).
func BenchmarkFleetIndexLoad(b *testing.B) {
	benchFleet(b)
	for b.Loop() {
	}
	b.ReportMetric(ms(bench.load), "load-ms")
	b.ReportMetric(float64(bench.heap)/(1<<20), "index-heap-MiB")
	b.ReportMetric(float64(bench.heap)/benchVehicles, "index-bytes/vehicle")
	b.Logf("index of %d vehicles (%d components, %d packages each): loaded in %.1f s, %.0f MiB heap",
		benchVehicles, examples.ComponentsPerVehicle, examples.PackagesPerVehicle, bench.load.Seconds(), float64(bench.heap)/(1<<20))
}

// median runs fn n times and returns the median duration.
func median(n int, fn func()) time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		fn()
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return ds[n/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// The filters of the dry-run benchmarks: three leaves the indexes answer, then the same with a
// regex no index answers. The hand-written baselines say the same in Go.
const (
	indexedFilter  = `vin_matches "^WDD" AND has_component "0261S19234" AND has_package "nav-engine" >= "3.0.0"`
	residualFilter = indexedFilter + ` AND vin_matches "[13579]$"`
)

func handIndexed(v *dsl.Vehicle) bool {
	if !strings.HasPrefix(v.VIN, "WDD") || !slices.Contains(v.Components, "0261S19234") {
		return false
	}
	for _, p := range v.Packages {
		if strings.EqualFold(p.Name, "nav-engine") && dsl.CompareVersions(p.Version, "3.0.0") >= 0 {
			return true
		}
	}
	return false
}

var oddEnd = regexp.MustCompile(`[13579]$`)

func handResidual(v *dsl.Vehicle) bool { return handIndexed(v) && oddEnd.MatchString(v.VIN) }

func countLoop(match func(v *dsl.Vehicle) bool) (n uint64) {
	for i := range bench.vehicles {
		if match(&bench.vehicles[i]) {
			n++
		}
	}
	return n
}

func benchDryRun(b *testing.B, name, filter string, hand func(*dsl.Vehicle) bool, limit time.Duration, minSpeedup float64) {
	benchFleet(b)
	p, err := dsl.Compile(filter, nil)
	if err != nil {
		b.Fatal(err)
	}
	want := countLoop(hand)
	if got := countLoop(p.Match); got != want {
		b.Fatalf("expr counts %d, the loop %d", got, want)
	}
	var got uint64
	count := func() { bench.idx.Read(func(idx dsl.Index) { got = p.Count(idx) }) }
	count()
	if got != want || want == 0 {
		b.Fatalf("index plan counts %d, the loop %d", got, want)
	}

	loop := median(5, func() { countLoop(hand) })
	perVehicle := median(3, func() { countLoop(p.Match) })
	index := median(51, count)
	b.ResetTimer()
	for b.Loop() {
		count()
	}
	b.StopTimer()
	b.ReportMetric(float64(want), "matched")
	b.ReportMetric(ms(index), "index-ms")
	b.ReportMetric(ms(loop), "loop-ms")
	b.ReportMetric(ms(perVehicle), "expr-ms")
	b.ReportMetric(float64(loop)/float64(index), "x-vs-loop")
	b.ReportMetric(float64(perVehicle)/float64(index), "x-vs-expr")
	b.ReportMetric(float64(index)/benchVehicles, "index-ns/vehicle")
	b.Logf("%d of %d vehicles match %s; hand-written loop %.1f ms, per-vehicle expr %.1f ms, index plan %.3f ms",
		want, benchVehicles, filter, ms(loop), ms(perVehicle), ms(index))
	budget.Report(b, budget.Line{Name: name, Figure: ms(index), Unit: "ms", Budget: ms(limit),
		Ratio: float64(loop) / float64(index), Baseline: "hand-written loop"})
	if minSpeedup > 0 {
		budget.Report(b, budget.Line{Name: name + ", speed-up over the hand-written loop", Figure: float64(loop) / float64(index),
			Unit: "x", Budget: minSpeedup, AtLeast: true, Ratio: float64(loop) / float64(index), Baseline: "hand-written loop"})
	}
}

// BenchmarkDryRunIndexed: dry-run count of one package with three index-answerable filters over
// 1M vehicles. Budget: ≤ 5 ms and ≥ 10× faster than the hand-written loop.
func BenchmarkDryRunIndexed(b *testing.B) {
	benchDryRun(b, "dry-run count, 3 index-answerable filters, 1M vehicles", indexedFilter, handIndexed, 5*time.Millisecond, 10)
}

// BenchmarkDryRunResidualRegex: the same with a regex leaf no index answers, checked per
// candidate. Budget: ≤ 150 ms.
func BenchmarkDryRunResidualRegex(b *testing.B) {
	benchDryRun(b, "dry-run count with a non-prefix regex leaf, 1M vehicles", residualFilter, handResidual, 150*time.Millisecond, 0)
}

// resolveFilter selects about 50,000 vehicles of the benchmark fleet.
const resolveFilter = `vin_matches "^WDD" AND attr "year" >= 2022 AND NOT has_package "nav-engine" >= "3.2.0"`

var resolveRoot = PackageID{Name: "nav-engine", Version: "3.2.0"}

// BenchmarkResolve50k: full resolve with install lists for ~50,000 matching vehicles (select, then
// the dependency closure per vehicle). Baseline: the same selection, then Solve per vehicle with
// its installed set as a map. Budget: ≤ 100 ms.
func BenchmarkResolve50k(b *testing.B) {
	benchFleet(b)
	p, err := dsl.Compile(resolveFilter, nil)
	if err != nil {
		b.Fatal(err)
	}
	g := bench.graph
	sel := func(idx dsl.Index) *roaring.Bitmap { return p.Select(idx) }
	var sols []Solution
	resolve := func() { sols = bench.idx.SolveSelected(sel, g, resolveRoot) }
	resolve()
	if n := len(sols); n < 40_000 || n > 60_000 {
		b.Fatalf("the filter selects %d vehicles, want about 50,000", n)
	}

	// Baseline: per vehicle, the installed map and Solve, no memo.
	var base []Solution
	naive := func() {
		base = base[:0]
		var ids *roaring.Bitmap
		bench.idx.Read(func(idx dsl.Index) { ids = p.Select(idx) })
		it := ids.Iterator()
		for it.HasNext() {
			v := bench.idx.Vehicle(it.Next())
			s := Solution{VIN: v.VIN}
			installed := make(map[string]string, len(v.Packages))
			for _, pk := range v.Packages {
				installed[strings.ToLower(pk.Name)] = pk.Version
				s.AlreadyInstalled = s.AlreadyInstalled || (strings.EqualFold(pk.Name, resolveRoot.Name) && pk.Version == resolveRoot.Version)
			}
			if !s.AlreadyInstalled {
				s.Install, s.Err = Solve(g, resolveRoot, installed)
			}
			base = append(base, s)
		}
		sort.Slice(base, func(i, j int) bool { return base[i].VIN < base[j].VIN })
	}
	naive()
	if len(base) != len(sols) {
		b.Fatalf("baseline %d vehicles, SolveSelected %d", len(base), len(sols))
	}
	installs, unresolved := 0, 0
	for i := range sols {
		if sols[i].VIN != base[i].VIN || !slices.Equal(sols[i].Install, base[i].Install) ||
			fmt.Sprint(sols[i].Err) != fmt.Sprint(base[i].Err) {
			b.Fatalf("%s: SolveSelected %v %v, baseline %v %v", sols[i].VIN, sols[i].Install, sols[i].Err, base[i].Install, base[i].Err)
		}
		installs += len(sols[i].Install)
		if sols[i].Err != nil {
			unresolved++
		}
	}

	baseline := median(3, naive)
	fast := median(11, resolve)
	b.ResetTimer()
	for b.Loop() {
		resolve()
	}
	b.StopTimer()
	b.ReportMetric(float64(len(sols)), "vehicles")
	b.ReportMetric(float64(installs)/float64(len(sols)), "installs/vehicle")
	b.ReportMetric(float64(unresolved), "unresolved")
	b.ReportMetric(ms(fast), "resolve-ms")
	b.ReportMetric(ms(baseline), "naive-ms")
	b.ReportMetric(float64(baseline)/float64(fast), "x-vs-naive")
	b.Logf("resolve of %s: %d vehicles, %d unresolved, %.1f installs a vehicle; per-vehicle Solve %.1f ms, SolveSelected %.1f ms",
		resolveRoot, len(sols), unresolved, float64(installs)/float64(len(sols)), ms(baseline), ms(fast))
	budget.Report(b, budget.Line{Name: fmt.Sprintf("full resolve with install lists, %d matches of 1M vehicles", len(sols)),
		Figure: ms(fast), Unit: "ms", Budget: 100, Ratio: float64(baseline) / float64(fast), Baseline: "Solve per vehicle"})
}
