package resolver

import (
	"hash/fnv"
	"slices"
	"strings"
	"testing"
	"time"

	"sota/dsl"
	"sota/internal/budget"
)

// The authoring budgets of ARCHITECTURE.md at 1,000,000 vehicles: completion and lint (≤ 5 ms each,
// from the index's distinct terms; baseline: a scan of the vehicles for the same names), and a dry
// run whose leaves are fleet state (≤ 5 ms; baseline: the hand-written loop over the same data).

// benchNow is the moment the fleet state of the benchmarks is read at.
var benchNow = time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)

func hashVIN(vin string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(vin))
	return h.Sum32()
}

var benchStatuses = []string{"pending", "inFlight", "finished", "failed", "canceled", "finished", "finished", "finished"}

// withFleetState gives the benchmark fleet a last contact within 60 days for 9 vehicles in 10, and
// an update of nav-engine 3.2.0 for every other vehicle, in the index and in the vehicles the
// baselines loop over; the cleanup takes it away again, so that other benchmarks see the fleet as
// it was.
func withFleetState(b *testing.B) {
	var changes []UpdateChange
	bench.idx.SetClock(func() time.Time { return benchNow })
	for i := range bench.vehicles {
		v := &bench.vehicles[i]
		h := hashVIN(v.VIN)
		v.Now = benchNow
		if h%10 != 0 {
			v.LastSeen = benchNow.Add(-time.Duration(h%(60*24*3600)) * time.Second)
			bench.idx.SetSeen(v.VIN, v.LastSeen)
		}
		if h%2 == 0 {
			st := benchStatuses[(h/2)%uint32(len(benchStatuses))]
			v.Updates = []dsl.UpdateState{{Name: "nav-engine", Version: "3.2.0", Status: st}}
			changes = append(changes, UpdateChange{VIN: v.VIN, Package: PackageID{Name: "nav-engine", Version: "3.2.0"}, Status: st})
		}
	}
	bench.idx.SetUpdateStatuses(changes)
	b.Cleanup(func() {
		for i := range bench.vehicles {
			v := &bench.vehicles[i]
			v.Now, v.LastSeen, v.Updates = time.Time{}, time.Time{}, nil
		}
		bench.idx.mu.Lock()
		bench.idx.state = fleetState{}
		bench.idx.mu.Unlock()
	})
}

const fleetStateFilter = `seen_within "7d" AND update_status "nav-engine" "3.2.0" IN ("failed", "canceled") AND has_component "0261S19234"`

func handFleetState(v *dsl.Vehicle) bool {
	if v.LastSeen.IsZero() || v.LastSeen.Before(v.Now.Add(-7*24*time.Hour)) {
		return false
	}
	for _, u := range v.Updates {
		if strings.EqualFold(u.Name, "nav-engine") && u.Version == "3.2.0" {
			if u.Status == "failed" || u.Status == "canceled" {
				return slices.Contains(v.Components, "0261S19234")
			}
			return false
		}
	}
	return false
}

// BenchmarkDryRunFleetState: dry-run count of a filter with seen_within and update_status leaves
// (and a part number) over 1M vehicles. Budget: ≤ 5 ms.
func BenchmarkDryRunFleetState(b *testing.B) {
	benchFleet(b)
	withFleetState(b)
	benchDryRun(b, "dry-run count with seen_within and update_status leaves, 1M vehicles", fleetStateFilter, handFleetState, 5*time.Millisecond, 0)
}

// scanNames is the baseline of completion and lint: the distinct package names, part numbers and
// attribute keys of the fleet, with how many vehicles have each, by looking at every vehicle.
func scanNames() (pkgs, parts, keys map[string]int) {
	pkgs, parts, keys = map[string]int{}, map[string]int{}, map[string]int{}
	for i := range bench.vehicles {
		v := &bench.vehicles[i]
		for _, p := range v.Packages {
			pkgs[p.Name]++
		}
		for _, c := range v.Components {
			parts[c]++
		}
		for k := range v.Attrs {
			keys[k]++
		}
	}
	return pkgs, parts, keys
}

// BenchmarkComplete1M: completion at three kinds of places of a filter over the 1M-vehicle fleet's
// vocabulary (package names, that package's versions, part numbers, attribute values). Budget: ≤ 5 ms
// for the slowest.
func BenchmarkComplete1M(b *testing.B) {
	benchFleet(b)
	cases := []struct{ src, first string }{
		{`vin_matches "^WDD" AND has_package "nav-e`, "nav-engine"},
		{`has_package "nav-engine" >= "3.`, ""},
		{`has_component "0261`, ""},
		{`attr "year" == `, ""},
		{`attr "region" IN ("EU", `, ""},
	}
	var slowest time.Duration
	for _, c := range cases {
		got, err := dsl.Complete(c.src, len(c.src), dsl.CompleteOptions{Fleet: bench.idx})
		if err != nil || len(got.Items) == 0 {
			b.Fatalf("%s: %v, %d items", c.src, err, len(got.Items))
		}
		if c.first != "" && got.Items[0].Label != c.first {
			b.Fatalf("%s: first item %q, want %q", c.src, got.Items[0].Label, c.first)
		}
		d := median(21, func() { dsl.Complete(c.src, len(c.src), dsl.CompleteOptions{Fleet: bench.idx}) })
		b.Logf("complete %-45q %3d items in %.3f ms", c.src, len(got.Items), ms(d))
		slowest = max(slowest, d)
	}
	scan := median(3, func() { scanNames() })
	for b.Loop() {
		dsl.Complete(cases[0].src, len(cases[0].src), dsl.CompleteOptions{Fleet: bench.idx})
	}
	b.ReportMetric(ms(slowest), "slowest-ms")
	b.ReportMetric(ms(scan), "scan-ms")
	budget.Report(b, budget.Line{Name: "filter completion, 1M vehicles (slowest of 5 cursor places)", Figure: ms(slowest), Unit: "ms",
		Budget: 5, Ratio: float64(scan) / float64(slowest), Baseline: "scan of the vehicles for the names"})
}

// lintFilter has a misspelt package, part number and attribute key, a VIN prefix nobody has and a
// contradiction: every warning lint gives, each with its nearest name from the fleet.
const lintFilter = `has_package "nav-engin" >= "3.0.0" AND has_component "0261S19243" AND attr "yaer" >= 2020 AND vin_matches "^WDDX9" AND (attr "year" > 2030 AND attr "year" < 2000) AND has_package "^nav" "^9\."`

// BenchmarkLint1M: lint of a filter with six warnings against the 1M-vehicle fleet. Budget: ≤ 5 ms.
func BenchmarkLint1M(b *testing.B) {
	benchFleet(b)
	res := dsl.Lint(lintFilter, dsl.LintOptions{Fleet: bench.idx})
	if !res.Valid || len(res.Warnings) != 6 {
		b.Fatalf("lint: valid %v, %d warnings: %+v", res.Valid, len(res.Warnings), res.Warnings)
	}
	for _, w := range res.Warnings {
		b.Logf("warning %d:%d: %s", w.Line, w.Column, w.Message)
	}
	lint := median(21, func() { dsl.Lint(lintFilter, dsl.LintOptions{Fleet: bench.idx}) })
	scan := median(3, func() { scanNames() })
	for b.Loop() {
		dsl.Lint(lintFilter, dsl.LintOptions{Fleet: bench.idx})
	}
	b.ReportMetric(ms(lint), "lint-ms")
	b.ReportMetric(ms(scan), "scan-ms")
	budget.Report(b, budget.Line{Name: "filter lint with fleet warnings, 1M vehicles", Figure: ms(lint), Unit: "ms",
		Budget: 5, Ratio: float64(scan) / float64(lint), Baseline: "scan of the vehicles for the names"})
}
