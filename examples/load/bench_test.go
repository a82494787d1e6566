package load_test

import (
	"bufio"
	"context"
	"encoding/binary"
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

	"github.com/jackc/pgx/v5"

	"sota/api"
	"sota/auth"
	"sota/engine"
	"sota/examples"
	"sota/examples/load"
	"sota/internal/budget"
	"sota/internal/memlimit"
	"sota/internal/storetest"
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
	peakKB  int64         // peak RSS of the process when the import was done
	drop    func()        // drops the PostgreSQL schema (nil on Badger)
}

var imported importState

// pgImported is the fleet imported into PostgreSQL (BenchmarkRestart1M/postgres,
// BenchmarkReplicaStart1M); its data is the store's URL.
var pgImported importState

func TestMain(m *testing.M) {
	// the importing process and the restarted one run with sotad's soft memory limit, so that their
	// peak RSS is what sotad's would be
	if _, err := memlimit.Apply(memlimit.Default); err != nil {
		panic(err)
	}
	code := m.Run()
	for _, i := range []*importState{&imported, &pgImported} {
		if i.root != "" {
			os.RemoveAll(i.root)
		}
		if i.drop != nil {
			i.drop()
		}
	}
	os.Exit(code)
}

// importFleet imports the benchmark fleet once: the catalogue first (so that the packages are
// known, as in production), then the JSON lines, generated to a file beforehand so that generating
// them is not timed, streamed to POST /api/v1/fleet/import.
func importFleet(b *testing.B) { importFleetKind(b, "badger") }

// importFleetKind is importFleet into the given kind of store; on PostgreSQL into a schema of the
// server at SOTA_TEST_PG_URL (dropped when b ends), whose URL is pgImported.data.
func importFleetKind(b *testing.B, kind string) {
	b.Helper()
	imported := &imported
	if kind == "postgres" {
		imported = &pgImported
	}
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

			// the store's directory or URL is shared with a child process (BenchmarkRestart1M)
			var db *store.DB
			if kind == "postgres" {
				// the schema outlives this benchmark: BenchmarkReplicaStart1M, later in the run, starts
				// replicas on it; TestMain drops it
				imported.data, imported.drop = storetest.NewSchemaKept(b)
				db, err = store.OpenURL(context.Background(), imported.data, store.Options{})
			} else {
				db, err = store.Open(imported.data, store.Options{})
			}
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
			imported.peakKB, _ = vmHWM()
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
			return writeContacts(db, rs)
		}()
	})
	if imported.err != nil {
		b.Fatal(imported.err)
	}
}

// writeContacts gives every vehicle a last contact, as a fleet in service has, so that a restart loads
// one per vehicle: the engine's record core/seen/<VIN> (8 bytes big endian of Unix nanoseconds, what
// engine.Service.Seen writes), written in bulk because a million polls would take an hour. The restart
// child checks that the rebuilt index has a contact for every vehicle, so a change of that record
// fails the benchmark instead of measuring nothing.
func writeContacts(db *store.DB, rs *resolver.Service) error {
	var vins []string
	rs.Index().ReadView(func(v resolver.View) {
		it := v.Universe().Iterator()
		for it.HasNext() {
			vins = append(vins, v.VIN(it.Next()))
		}
	})
	at := time.Now().Add(-time.Hour)
	wb := db.NewBatch()
	for i, vin := range vins {
		ns := at.Add(-time.Duration(i%(30*24*3600)) * time.Second).UnixNano()
		if err := wb.Set([]byte("core/seen/"+vin), binary.BigEndian.AppendUint64(nil, uint64(ns))); err != nil {
			wb.Cancel()
			return err
		}
	}
	return wb.Flush()
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

// restartEnv names the store a restart child process opens (see TestRestartChild): a Badger
// directory, or a PostgreSQL URL.
const restartEnv = "SOTA_BENCH_RESTART_DATA"

// restartResult is what a restart child process reports on stdout.
type restartResult struct {
	Elapsed  time.Duration // open the store, the resolver (fleet index) and the engine
	Resolver time.Duration // of which: open the store and the resolver
	CPU      time.Duration
	Vehicles int
	Seen     int // vehicles with a last contact in the index
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
	var db *store.DB
	var err error
	if strings.HasPrefix(dir, "postgres://") || strings.HasPrefix(dir, "postgresql://") {
		db, err = store.OpenURL(context.Background(), dir, store.Options{})
	} else {
		db, err = store.Open(dir, store.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	rs, err := resolver.New(db)
	if err != nil {
		t.Fatal(err)
	}
	r.Resolver = time.Since(start)
	if _, err := engine.New(db, rs, engine.Options{DataDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	r.Elapsed, r.CPU = time.Since(start), cpuTime()-cpu0
	r.Vehicles = rs.Index().Len()
	r.Seen = int(rs.Index().SeenSince(time.Unix(1, 0)).GetCardinality())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if r.PeakKB, err = vmHWM(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	fmt.Printf("restart-result %s\n", b)
}

// BenchmarkRestart1M: a fresh process opens the store of the imported fleet (every vehicle with a last
// contact), rebuilds the fleet index from it and opens the engine, which feeds the index the contacts,
// as sotad does at start: on Badger, and with SOTA_TEST_PG_URL set on PostgreSQL, whose fleet is
// imported the same way first (storetest.BenchKinds). Budgets: ≤ 20 s on Badger, ≤ 30 s on PostgreSQL
// (a replica's restart), and a peak RSS of that process ≤ 2 GB. Baseline on PostgreSQL, in the same
// run: a raw SELECT of the same rows (every vehicle record, streamed with pgx, nothing decoded),
// before and after the restart, the faster counting.
func BenchmarkRestart1M(b *testing.B) { storetest.BenchKinds(b, benchRestart1M) }

func benchRestart1M(b *testing.B, kind string) {
	importFleetKind(b, kind)
	imported := &imported
	if kind == "postgres" {
		imported = &pgImported
		b.Logf("imported %d vehicles into PostgreSQL through POST /api/v1/fleet/import in %.1f s (%.1f s of CPU in this process; load average before: %s); decoding the lines alone takes %.1f s",
			benchVehicles, imported.elapsed.Seconds(), imported.cpu.Seconds(), imported.load, imported.decode.Seconds())
	}
	var raw1, raw2 time.Duration
	if kind == "postgres" {
		raw1 = rawSelect(b, imported.data)
	}
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
		if r.Vehicles != benchVehicles || r.Seen != benchVehicles {
			b.Fatalf("the rebuilt index has %d vehicles, %d of them with a last contact", r.Vehicles, r.Seen)
		}
	}
	b.Logf("%s: restart in %.1f s, of which %.1f s the store and the fleet index and %.1f s the engine with a contact per vehicle (%.1f s of CPU; load average before: %s), peak RSS of the restarted process %.0f MiB",
		kind, r.Elapsed.Seconds(), r.Resolver.Seconds(), (r.Elapsed - r.Resolver).Seconds(), r.CPU.Seconds(), load, float64(r.PeakKB)/1024)
	if kind == "postgres" {
		raw2 = rawSelect(b, imported.data)
		b.Logf("raw SELECT of the vehicle rows: %.1f s before the restart, %.1f s after", raw1.Seconds(), raw2.Seconds())
		budget.Report(b, budget.Line{Name: "restart with 1M vehicles in PostgreSQL (open the store, rebuild the fleet index, open the engine)",
			Figure: r.Elapsed.Seconds(), Unit: "s", Budget: 30, Ratio: min(raw1, raw2).Seconds() / r.Elapsed.Seconds(),
			Baseline: "raw SELECT streaming the same vehicle rows"})
		budget.Report(b, budget.Line{Name: "peak RSS of a process restarted with 1M vehicles in PostgreSQL",
			Figure: float64(r.PeakKB) / 1024, Unit: "MiB", Budget: 2048})
		return
	}
	budget.Report(b, budget.Line{Name: "restart with 1M vehicles (open the store, rebuild the fleet index, open the engine)",
		Figure: r.Elapsed.Seconds(), Unit: "s", Budget: 20})
	budget.Report(b, budget.Line{Name: "peak RSS of a process restarted with 1M vehicles",
		Figure: float64(r.PeakKB) / 1024, Unit: "MiB", Budget: 2048})
}

// rawSelect streams every row of the vehicles table of the store at url (SELECT vin, record, nothing
// decoded) and returns how long it took.
func rawSelect(b *testing.B, url string) time.Duration {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	rows, err := conn.Query(ctx, "SELECT vin, record FROM vehicles")
	if err != nil {
		b.Fatal(err)
	}
	n, bytes := 0, 0
	for rows.Next() {
		raw := rows.RawValues()
		n++
		bytes += len(raw[0]) + len(raw[1])
	}
	rows.Close()
	if err := rows.Err(); err != nil || n < benchVehicles { // BenchmarkReplicaStart1M adds vehicles
		b.Fatalf("raw SELECT: %d rows, %v", n, err)
	}
	return time.Since(start)
}

// BenchmarkPeakRSS1M: the peak resident set of this process, which generated, decoded and imported
// the 1M fleet (VmHWM of /proc/self/status). Budget: ≤ 2 GB.
func BenchmarkPeakRSS1M(b *testing.B) {
	importFleet(b)
	for b.Loop() {
	}
	kb := imported.peakKB // when the import was done: the PostgreSQL import of BenchmarkRestart1M may follow
	if kb <= 0 {
		b.Fatal("no peak RSS was read after the import")
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
