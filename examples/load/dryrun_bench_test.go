package load_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"sota/api"
	"sota/auth"
	"sota/dsl"
	"sota/examples"
	"sota/internal/budget"
	"sota/resolver"
	"sota/store"
)

// The dry-run budget of ARCHITECTURE.md ("Dry runs at the limit"): POST /resolve/dry-run through the
// real HTTP server over the 1,000,000 imported vehicles, for the filter shapes that were slow, each
// against a hand-written Go loop with regexp over the same vehicles that computes the same counts
// (matched, already installed, unresolved: the install list solved once per set of installed versions
// of the closure's packages, as a careful hand-written loop would). They run in a fresh process
// restarted from the imported store, which also holds the vehicles in memory for the loops.

// dryRunRoot is the package of the dry runs: its dependency closure is three levels deep
// (ota-client -> libcurl -> openssl -> glibc, and ca-certificates).
var dryRunRoot = resolver.PackageID{Name: "ota-client", Version: "2.1.0"}

type dryRunShape struct {
	name, expression string
	indexed          bool // every leaf is answered by the index, no regex check of candidates
	hand             func(v *dsl.Vehicle) bool
}

var (
	reX9      = regexp.MustCompile(`X.*9$`)
	reWDD     = regexp.MustCompile(`(?i)^wdd`)
	reOpen    = regexp.MustCompile(`^open`)
	reThree   = regexp.MustCompile(`^3`)
	reW       = regexp.MustCompile(`^W`)
	reBMS     = regexp.MustCompile(`^BMS`)
	reInfix   = regexp.MustCompile(`.*4BV.*`)
	reBoth    = regexp.MustCompile(`^1FT.*9$`)
	reAlt     = regexp.MustCompile(`^(WDD|SAJ).*(7|X)$`)
	reOdd     = regexp.MustCompile(`[13579]$`)
	reYear    = regexp.MustCompile(`^.{9}M`)
	dryShapes = []dryRunShape{
		{`vin_matches "X.*9$"`, `vin_matches "X.*9$"`, false, func(v *dsl.Vehicle) bool { return reX9.MatchString(v.VIN) }},
		{`vin_matches "(?i)^wdd"`, `vin_matches "(?i)^wdd"`, false, func(v *dsl.Vehicle) bool { return reWDD.MatchString(v.VIN) }},
		{`has_package "^open" "^3"`, `has_package "^open" "^3"`, true, func(v *dsl.Vehicle) bool {
			for _, p := range v.Packages {
				if reOpen.MatchString(p.Name) && reThree.MatchString(p.Version) {
					return true
				}
			}
			return false
		}},
		{`NOT vin_matches "^W"`, `NOT vin_matches "^W"`, true, func(v *dsl.Vehicle) bool { return !reW.MatchString(v.VIN) }},
		{`has_component "^BMS"`, `has_component "^BMS"`, true, func(v *dsl.Vehicle) bool {
			for _, c := range v.Components {
				if reBMS.MatchString(c) {
					return true
				}
			}
			return false
		}},
		{"every vehicle, a package with a three-level dependency closure", `TRUE`, true, func(*dsl.Vehicle) bool { return true }},
		// More shapes of regex leaves on VINs: an infix, both anchors and alternations (few gram
		// candidates, checked by the byte DFA), a class suffix half the fleet matches and a
		// position (many candidates, answered from the VIN positions).
		{`vin_matches ".*4BV.*"`, `vin_matches ".*4BV.*"`, false, func(v *dsl.Vehicle) bool { return reInfix.MatchString(v.VIN) }},
		{`vin_matches "^1FT.*9$"`, `vin_matches "^1FT.*9$"`, false, func(v *dsl.Vehicle) bool { return reBoth.MatchString(v.VIN) }},
		{`vin_matches "^(WDD|SAJ).*(7|X)$"`, `vin_matches "^(WDD|SAJ).*(7|X)$"`, false, func(v *dsl.Vehicle) bool { return reAlt.MatchString(v.VIN) }},
		{`vin_matches "[13579]$"`, `vin_matches "[13579]$"`, false, func(v *dsl.Vehicle) bool { return reOdd.MatchString(v.VIN) }},
		{`vin_matches "^.{9}M"`, `vin_matches "^.{9}M"`, false, func(v *dsl.Vehicle) bool { return reYear.MatchString(v.VIN) }},
	}
)

// dryRunEnv names the store the dry-run child process opens (see TestDryRunChild).
const dryRunEnv = "SOTA_BENCH_DRYRUN_DATA"

// dryRunResult is one shape's figures, as the child process reports them on stdout.
type dryRunResult struct {
	Shape          string
	Matched        int
	Already        int
	Unresolved     int
	HTTP, Loop     time.Duration
	ServerElapsed  float64 // the answer's elapsedMs
	IndexBytesPerV float64 `json:",omitempty"`
}

// TestDryRunChild is not a test: it is the process BenchmarkDryRun1M starts. Without dryRunEnv it
// does nothing.
func TestDryRunChild(t *testing.T) {
	dir := os.Getenv(dryRunEnv)
	if dir == "" {
		return
	}
	// The loops' copy of the fleet is not the server's memory: no soft limit for this process.
	debug.SetMemoryLimit(math.MaxInt64)
	// Badger: these 1M-vehicle benchmarks measure the embedded default (the directory is shared
	// with a child process, which storetest's per-process schemas cannot follow)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := resolver.New(db)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := api.New(api.Config{AuthNone: true}, api.Deps{Auth: auth.New(db), Resolver: rs, Filters: rs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	// The same vehicles, in memory, for the loops.
	var fleet []dsl.Vehicle
	rs.Index().ReadView(func(v resolver.View) {
		fleet = make([]dsl.Vehicle, 0, v.Len())
		v.Universe().Iterate(func(id uint32) bool {
			fleet = append(fleet, *v.Vehicle(id))
			return true
		})
	})
	g := catalogueGraph(t)
	for _, sh := range dryShapes {
		var r dryRunResult
		r.Shape = sh.name
		var loop dryRunResult
		handLoop := func() { loop = handDryRun(fleet, sh.hand, g) }
		var answer resolver.DryRunResult
		post := func() { answer = postDryRun(t, srv.URL, sh.expression) }
		post()
		handLoop()
		if answer.Matched != loop.Matched || answer.AlreadyInstalled != loop.Already || answer.UnresolvedCount != loop.Unresolved {
			t.Fatalf("%s: the dry run answers matched %d, already installed %d, unresolved %d; the loop %d, %d, %d",
				sh.name, answer.Matched, answer.AlreadyInstalled, answer.UnresolvedCount, loop.Matched, loop.Already, loop.Unresolved)
		}
		if answer.Matched == 0 || len(answer.Sample) == 0 {
			t.Fatalf("%s: nothing to dry-run: %+v", sh.name, answer)
		}
		r.Matched, r.Already, r.Unresolved = answer.Matched, answer.AlreadyInstalled, answer.UnresolvedCount
		r.Loop = medianOf(3, handLoop)
		r.HTTP = medianOf(15, post)
		r.ServerElapsed = answer.ElapsedMs
		b, _ := json.Marshal(r)
		fmt.Printf("dryrun-result %s\n", b)
	}
}

func medianOf(n int, fn func()) time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		fn()
		ds[i] = time.Since(start)
	}
	slices.Sort(ds)
	return ds[n/2]
}

func postDryRun(t *testing.T, url, expression string) resolver.DryRunResult {
	body, _ := json.Marshal(map[string]any{"package": dryRunRoot, "expression": expression, "sample": 20})
	res, err := http.Post(url+"/api/v1/resolve/dry-run", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out resolver.DryRunResult
	if res.StatusCode != http.StatusOK {
		t.Fatalf("dry run of %s: %s", expression, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// handDryRun is the baseline: one pass over the vehicles with the filter written in Go, counting
// what the dry run counts; the install list is solved once per set of installed versions of the
// names the root can reach (the key built per vehicle), not once per vehicle.
func handDryRun(fleet []dsl.Vehicle, pass func(*dsl.Vehicle) bool, g *catalogue) (r dryRunResult) {
	memo := map[string]bool{} // key -> unresolved
	var key []byte
	for i := range fleet {
		v := &fleet[i]
		if !pass(v) {
			continue
		}
		has := false
		key = key[:0]
		for _, p := range v.Packages {
			if p.Name == dryRunRoot.Name && p.Version == dryRunRoot.Version {
				has = true
				break
			}
			if g.closure[p.Name] {
				key = append(append(append(key, p.Name...), ' '), p.Version...)
				key = append(key, ',')
			}
		}
		if has {
			r.Already++
			continue
		}
		r.Matched++
		bad, ok := memo[string(key)]
		if !ok {
			installed := map[string]string{}
			for _, p := range v.Packages {
				if g.closure[p.Name] {
					installed[p.Name] = p.Version
				}
			}
			_, err := resolver.Solve(g, dryRunRoot, installed)
			bad = err != nil
			memo[string(key)] = bad
		}
		if bad {
			r.Unresolved++
		}
	}
	return r
}

// catalogue is the example catalogue as the solver's graph, with the names dryRunRoot reaches.
type catalogue struct {
	versions map[string][]string
	deps     map[resolver.PackageID][]resolver.Dep
	closure  map[string]bool
}

func catalogueGraph(t *testing.T) *catalogue {
	c := &catalogue{versions: map[string][]string{}, deps: map[resolver.PackageID][]resolver.Dep{}, closure: map[string]bool{}}
	for _, p := range examples.Catalogue().Packages {
		c.versions[p.Name] = append(c.versions[p.Name], p.Version)
		id := resolver.PackageID{Name: p.Name, Version: p.Version}
		for _, d := range p.Dependencies {
			if d.Range == "" {
				c.deps[id] = append(c.deps[id], resolver.Dep{Name: d.Name, Exact: d.Version})
				continue
			}
			r, err := dsl.ParseRange(d.Range)
			if err != nil {
				t.Fatal(err)
			}
			c.deps[id] = append(c.deps[id], resolver.Dep{Name: d.Name, Range: r})
		}
	}
	var visit func(name string)
	visit = func(name string) {
		if c.closure[name] {
			return
		}
		c.closure[name] = true
		for _, v := range c.versions[name] {
			for _, d := range c.deps[resolver.PackageID{Name: name, Version: v}] {
				visit(d.Name)
			}
		}
	}
	visit(dryRunRoot.Name)
	return c
}

func (c *catalogue) Deps(id resolver.PackageID) []resolver.Dep { return c.deps[id] }
func (c *catalogue) Versions(name string) []string             { return c.versions[name] }

// BenchmarkDryRun1M: POST /resolve/dry-run over the 1M imported vehicles for each shape of
// ARCHITECTURE.md's "Dry runs at the limit", in a process restarted from the imported store.
// Budgets: ≤ 15 ms where the index answers every leaf, ≤ 30 ms with regex leaves, and ≥ 10× the
// hand-written loop for every shape.
func BenchmarkDryRun1M(b *testing.B) {
	importFleet(b)
	var results []dryRunResult
	load := loadAverage()
	// The child runs once; a benchmark with sub-benchmarks runs once.
	cmd := exec.Command(os.Args[0], "-test.run=^TestDryRunChild$", "-test.v")
	cmd.Env = append(os.Environ(), dryRunEnv+"="+imported.data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("dry-run process: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if _, res, ok := strings.Cut(l, "dryrun-result "); ok {
			var r dryRunResult
			if err := json.Unmarshal([]byte(res), &r); err != nil {
				b.Fatal(err)
			}
			results = append(results, r)
		}
	}
	if len(results) != len(dryShapes) {
		b.Fatalf("the dry-run process said:\n%s", out)
	}
	// One sub-benchmark a shape, so that each shape's lines are printed whole.
	for i, r := range results {
		b.Run(fmt.Sprintf("shape=%d", i+1), func(b *testing.B) {
			for b.Loop() {
			}
			limit := 30.0
			if dryShapes[i].indexed {
				limit = 15
			}
			ratio := float64(r.Loop) / float64(r.HTTP)
			b.Logf("%s: %d matched (%d already installed, %d unresolved); HTTP %.1f ms (server %.1f ms), hand-written loop %.1f ms; load average before the run: %s",
				r.Shape, r.Matched, r.Already, r.Unresolved, ms(r.HTTP), r.ServerElapsed, ms(r.Loop), load)
			name := fmt.Sprintf("dry run over HTTP, 1M vehicles, %s (%d matched)", r.Shape, r.Matched)
			budget.Report(b, budget.Line{Name: name, Figure: ms(r.HTTP), Unit: "ms", Budget: limit, Ratio: ratio, Baseline: "hand-written loop"})
			budget.Report(b, budget.Line{Name: name + ", speed-up over the hand-written loop", Figure: ratio, Unit: "x", Budget: 10,
				AtLeast: true, Ratio: ratio, Baseline: "hand-written loop"})
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
