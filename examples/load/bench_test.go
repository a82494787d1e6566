package load_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sota/api"
	"sota/auth"
	"sota/examples"
	"sota/examples/load"
	"sota/internal/budget"
	"sota/internal/memlimit"
	"sota/resolver"
	"sota/store"
)

// The benchmarks of the import budget of ARCHITECTURE.md: bulk import of 1,000,000 example vehicles
// (5 components and 20 packages each) through the real import path (POST /api/v1/fleet/import on
// the real server, into Badger), a restart with them (open the store, rebuild the fleet index) in a
// fresh process, and the peak RSS of both processes. They run in their own test binary so that the
// RSS is that of a server, not of the in-memory benchmarks of package resolver. The import runs once
// per process and the later benchmarks reuse its store.

const benchVehicles = 1_000_000

type importState struct {
	once    sync.Once
	root    string // temporary directory: the JSON lines file and the store
	data    string
	lines   int64 // bytes of the JSON lines
	elapsed time.Duration
	decode  time.Duration // the baseline: reading and decoding the same lines, nothing stored
	result  resolver.ImportResult
	err     error
	cpu     time.Duration // CPU time of the process during the import
	stages  []string      // peak RSS after each stage
	load    string        // load average before the import
}

var imported importState

func TestMain(m *testing.M) {
	// the importing process and the restarted one run with sotad's soft memory limit, so that their
	// peak RSS is what sotad's would be
	if _, err := memlimit.Apply(memlimit.Default); err != nil {
		panic(err)
	}
	code := m.Run()
	if imported.root != "" {
		os.RemoveAll(imported.root)
	}
	os.Exit(code)
}

// importFleet imports the benchmark fleet once: the catalogue first (so that the packages are
// known, as in production), then the JSON lines, generated to a file beforehand so that generating
// them is not timed, streamed to POST /api/v1/fleet/import.
func importFleet(b *testing.B) {
	b.Helper()
	imported.once.Do(func() {
		imported.err = func() error {
			root, err := os.MkdirTemp("", "sota-import-bench-")
			if err != nil {
				return err
			}
			imported.root, imported.data = root, filepath.Join(root, "data")
			file := filepath.Join(root, "fleet.jsonl")
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(f, 1<<20)
			if err := examples.WriteJSONL(w, 42, benchVehicles); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if imported.lines, err = f.Seek(0, io.SeekCurrent); err != nil {
				return err
			}
			f.Close()
			imported.stage("generated the lines")
			imported.decode, err = decodeOnly(file)
			if err != nil {
				return err
			}
			imported.stage("decoded them (baseline)")

			// Badger: these 1M-vehicle benchmarks measure the embedded default (the directory is shared
			// with a child process, which storetest's per-process schemas cannot follow)
			db, err := store.Open(imported.data, store.Options{})
			if err != nil {
				return err
			}
			defer db.Close()
			rs, err := resolver.New(db)
			if err != nil {
				return err
			}
			if _, err := load.Catalogue(rs); err != nil {
				return err
			}
			h, _, err := api.New(api.Config{AuthNone: true}, api.Deps{Auth: auth.New(db), Resolver: rs, Filters: rs})
			if err != nil {
				return err
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			in, err := os.Open(file)
			if err != nil {
				return err
			}
			defer in.Close()
			imported.load = loadAverage()
			cpu0, start := cpuTime(), time.Now()
			res, err := http.Post(srv.URL+"/api/v1/fleet/import", "application/x-ndjson", in)
			if err != nil {
				return err
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				return err
			}
			imported.elapsed, imported.cpu = time.Since(start), cpuTime()-cpu0
			imported.stage("imported")
			if res.StatusCode != http.StatusOK {
				return fmt.Errorf("import: %s %s", res.Status, body)
			}
			if err := json.Unmarshal(body, &imported.result); err != nil {
				return err
			}
			if r := imported.result; r.Vehicles != benchVehicles || r.ForeignPackages != 0 {
				return fmt.Errorf("import answered %+v", r)
			}
			_, total, err := rs.ListVehicles(resolver.VehicleQuery{}, resolver.Page{Limit: 1})
			if err != nil {
				return err
			}
			if total != benchVehicles || rs.Index().Len() != benchVehicles {
				return fmt.Errorf("after the import the store lists %d vehicles, the index %d", total, rs.Index().Len())
			}
			return nil
		}()
	})
	if imported.err != nil {
		b.Fatal(imported.err)
	}
}

// decodeOnly is the baseline of the import: the same lines read and decoded into the import type,
// nothing validated or stored.
func decodeOnly(file string) (time.Duration, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var v resolver.ImportVehicle
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return 0, err
		}
		n++
	}
	if n != benchVehicles {
		return 0, fmt.Errorf("decoded %d lines", n)
	}
	return time.Since(start), sc.Err()
}

// BenchmarkImport1M: bulk import of 1M vehicles with packages and components through POST
// /api/v1/fleet/import into Badger. Budget: ≤ 120 s. Baseline: decoding the same JSON lines alone.
func BenchmarkImport1M(b *testing.B) {
	importFleet(b)
	for b.Loop() {
	}
	b.Logf("imported %d vehicles (%.0f MiB of JSON lines) in %.1f s (%.1f s of CPU; load average before: %s); decoding the lines alone takes %.1f s",
		benchVehicles, float64(imported.lines)/(1<<20), imported.elapsed.Seconds(), imported.cpu.Seconds(), imported.load, imported.decode.Seconds())
	b.ReportMetric(float64(benchVehicles)/imported.elapsed.Seconds(), "vehicles/s")
	budget.Report(b, budget.Line{Name: "bulk import of 1M vehicles (5 components, 20 packages each) into Badger",
		Figure: imported.elapsed.Seconds(), Unit: "s", Budget: 120,
		Ratio: imported.decode.Seconds() / imported.elapsed.Seconds(), Baseline: "decoding the JSON lines alone"})
}

// restartEnv names the store a restart child process opens (see TestRestartChild).
const restartEnv = "SOTA_BENCH_RESTART_DATA"

// restartResult is what a restart child process reports on stdout.
type restartResult struct {
	Elapsed  time.Duration
	CPU      time.Duration
	Vehicles int
	PeakKB   int64
}

// TestRestartChild is not a test: it is the process BenchmarkRestart1M starts to restart the way
// sotad does, in a fresh process. Without restartEnv it does nothing.
func TestRestartChild(t *testing.T) {
	dir := os.Getenv(restartEnv)
	if dir == "" {
		return
	}
	var r restartResult
	cpu0, start := cpuTime(), time.Now()
	// Badger: these 1M-vehicle benchmarks measure the embedded default (the directory is shared
	// with a child process, which storetest's per-process schemas cannot follow)
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := resolver.New(db)
	if err != nil {
		t.Fatal(err)
	}
	r.Elapsed, r.CPU = time.Since(start), cpuTime()-cpu0
	r.Vehicles = rs.Index().Len()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if r.PeakKB, err = vmHWM(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	fmt.Printf("restart-result %s\n", b)
}

// BenchmarkRestart1M: a fresh process opens the store of the imported fleet and rebuilds the fleet
// index from it, as sotad does at start. Budgets: ≤ 20 s, and a peak RSS of that process ≤ 2 GB.
func BenchmarkRestart1M(b *testing.B) {
	importFleet(b)
	var r restartResult
	load := loadAverage()
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRestartChild$", "-test.v")
		cmd.Env = append(os.Environ(), restartEnv+"="+imported.data)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("restart process: %v\n%s", err, out)
		}
		_, res, ok := strings.Cut(string(out), "restart-result ")
		if !ok {
			b.Fatalf("restart process said:\n%s", out)
		}
		res, _, _ = strings.Cut(res, "\n")
		if err := json.Unmarshal([]byte(res), &r); err != nil {
			b.Fatal(err)
		}
		if r.Vehicles != benchVehicles {
			b.Fatalf("the rebuilt index has %d vehicles", r.Vehicles)
		}
	}
	b.Logf("restart in %.1f s (%.1f s of CPU; load average before: %s), peak RSS of the restarted process %.0f MiB",
		r.Elapsed.Seconds(), r.CPU.Seconds(), load, float64(r.PeakKB)/1024)
	budget.Report(b, budget.Line{Name: "restart with 1M vehicles (open the store, rebuild the fleet index)",
		Figure: r.Elapsed.Seconds(), Unit: "s", Budget: 20})
	budget.Report(b, budget.Line{Name: "peak RSS of a process restarted with 1M vehicles",
		Figure: float64(r.PeakKB) / 1024, Unit: "MiB", Budget: 2048})
}

// BenchmarkPeakRSS1M: the peak resident set of this process, which generated, decoded and imported
// the 1M fleet (VmHWM of /proc/self/status). Budget: ≤ 2 GB.
func BenchmarkPeakRSS1M(b *testing.B) {
	importFleet(b)
	for b.Loop() {
	}
	kb, err := vmHWM()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("peak RSS after each stage: %s", strings.Join(imported.stages, "; "))
	budget.Report(b, budget.Line{Name: "peak RSS of the process that imported 1M vehicles",
		Figure: float64(kb) / 1024, Unit: "MiB", Budget: 2048})
}

func vmHWM() (int64, error) { return budget.StatusKB("VmHWM") }

// stage notes the peak RSS so far.
func (i *importState) stage(name string) {
	hwm, _ := vmHWM()
	anon, _ := budget.StatusKB("RssAnon")
	file, _ := budget.StatusKB("RssFile")
	i.stages = append(i.stages, fmt.Sprintf("%s: peak %.0f MiB (now %.0f MiB anonymous, %.0f MiB mapped files)",
		name, float64(hwm)/1024, float64(anon)/1024, float64(file)/1024))
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the 1-minute load average of the machine (the benchmarks run on a shared one).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return f[0] + " on " + strconv.Itoa(runtime.NumCPU()) + " CPUs"
}
