package engine

import (
	"context"
	"encoding/json"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"sota/examples/load"
	"sota/internal/budget"
	"sota/internal/memlimit"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

// queueBenchVehicles is the fleet of BenchmarkQueue1M.
const queueBenchVehicles = 1_000_000

// benchPackage is a new release every vehicle of the example fleet gets: its one filter is TRUE and
// it needs openssl >=3.0.13, so vehicles with an older openssl also install openssl 3.x first and
// the install lists differ between vehicles, as in a real rollout.
var benchPackage = resolver.PackageID{Name: "fleet-agent", Version: "9.0.0"}

// BenchmarkQueue1M: queue an update for 1,000,000 matching vehicles (resolve + persist) on a server
// started with the example fleet in its store (the fleet is imported, then the store is reopened and
// the fleet index rebuilt), once on Badger (synchronous writes) and once on PostgreSQL when
// SOTA_TEST_PG_URL names a server (storetest.BenchKinds). Budget: ≤ 60 s on either store.
//
// Baseline, in the same run: writing the same records raw, twice, the faster counting; the ratio is
// baseline time / queue time, so 1 would mean no overhead. On Badger: the raw batched write of the
// same keys and values (two keys per vehicle, the same install lists, the same batch size, under a
// scratch prefix) into the same store, without resolve and request bookkeeping (the queue then also
// has the baseline's records in its store). On PostgreSQL: a COPY (pgx CopyFrom) of the same rows
// (the update records and the status index rows) into two scratch tables shaped like the store's
// updates and update_status tables, primary keys included, in the same database, dropped afterwards.
//
// Memory: the peak RSS during the queuing (VmHWM, reset before it) against the 2 GB RSS budget of a
// million-vehicle server, and the peak Go heap growth while queuing.
//
// GET /update_requests/:id with the 1,000,000 updates of that request: the request with its counts
// encoded as the API answers it, median of 200, ≤ 10 ms (counts are maintained, not scanned);
// baseline: counting the request's updates by a scan of their status index, what the read would cost
// without the maintained counts.
func BenchmarkQueue1M(b *testing.B) { storetest.BenchKinds(b, benchQueue1M) }

func benchQueue1M(b *testing.B, kind string) {
	// the queuing process runs with sotad's soft memory limit, so that its peak RSS is what sotad's would be
	if _, err := memlimit.Apply(memlimit.Default); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dir := b.TempDir()
	db, err := storetest.OpenDirKind(b, kind, dir+"/db")
	if err != nil {
		b.Fatal(err)
	}
	res, err := resolver.New(db)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := load.Catalogue(res); err != nil {
		b.Fatal(err)
	}
	if _, err := load.Fleet(ctx, res, 42, queueBenchVehicles, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := res.CreatePackage(benchPackage, resolver.PackageInfo{Description: "Fleet agent", Vendor: "ACME"}); err != nil {
		b.Fatal(err)
	}
	if err := res.SetRangeDependency(benchPackage, "openssl", ">=3.0.13"); err != nil {
		b.Fatal(err)
	}
	if _, err := res.CreateFilter("everyone", "TRUE"); err != nil {
		b.Fatal(err)
	}
	if _, err := res.Associate(benchPackage, "everyone"); err != nil {
		b.Fatal(err)
	}
	b.Logf("example fleet of %d vehicles imported in %.1f s", res.Index().Len(), time.Since(start).Seconds())

	// The baseline: what the queue will write (resolved here, not timed), written raw into the same
	// store under a scratch prefix, twice (the machine is shared; the faster run counts).
	targets, err := res.Resolve(ctx, benchPackage)
	if err != nil {
		b.Fatal(err)
	}
	if len(targets) != queueBenchVehicles {
		b.Fatalf("the package resolves to %d vehicles, want %d", len(targets), queueBenchVehicles)
	}
	withDeps := 0
	for _, t := range targets {
		if len(t.Install) > 1 {
			withDeps++
		}
	}
	binaries := installPackages(targets) // a launch refuses install lists without binaries
	var raw1, raw2 time.Duration
	if kind == "postgres" {
		raw1 = rawCopy(b, storetest.SpecKind(b, kind, dir+"/db"), targets)
		raw2 = rawCopy(b, storetest.SpecKind(b, kind, dir+"/db"), targets)
	} else {
		raw1 = rawWrite(b, db, "bench/1/", targets, DefaultBatchSize)
		raw2 = rawWrite(b, db, "bench/2/", targets, DefaultBatchSize)
	}
	baseline := min(raw1, raw2)
	targets = nil

	// Queue on a server started with the fleet (and the baseline's records) in its store: restart,
	// which rebuilds the fleet index from the store.
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	res = nil
	runtime.GC()
	start = time.Now()
	if db, err = storetest.OpenDirKind(b, kind, dir+"/db"); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if res, err = resolver.New(db); err != nil {
		b.Fatal(err)
	}
	b.Logf("restarted with the fleet in %.1f s", time.Since(start).Seconds())
	s, err := New(db, res, Options{DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range binaries {
		if _, err := s.UploadBinary(p, strings.NewReader("binary of "+p.String()), Upload{}); err != nil {
			b.Fatal(err)
		}
	}
	resolveStart := time.Now()
	if _, err := res.Resolve(ctx, benchPackage); err != nil {
		b.Fatal(err)
	}
	resolveTime := time.Since(resolveStart)

	runtime.GC()
	resetPeakRSS := budget.ResetPeakRSS()
	heap := startHeapSampler()
	queueStart := time.Now()
	r, err := s.QueueUpdate(ctx, NewRequest{PackageID: benchPackage})
	elapsed := time.Since(queueStart)
	heapPeak, heapBefore := heap.stop()
	if err != nil {
		b.Fatal(err)
	}
	peakRSS, rssKind := peakRSS(resetPeakRSS)
	if r.Vehicles != queueBenchVehicles {
		b.Fatalf("queued %d vehicles, want %d", r.Vehicles, queueBenchVehicles)
	}
	got, err := s.Request(r.ID)
	if err != nil {
		b.Fatal(err)
	}
	if got.Counts.Pending != queueBenchVehicles {
		b.Fatalf("%d pending updates stored, want %d", got.Counts.Pending, queueBenchVehicles)
	}
	runtime.GC()
	heapAfter := heapObjects()

	// GET /update_requests/:id: the maintained counts against a scan of the status index
	gets := make([]time.Duration, 200)
	for i := range gets {
		t0 := time.Now()
		got, err := s.Request(r.ID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(got); err != nil {
			b.Fatal(err)
		}
		gets[i] = time.Since(t0)
	}
	slices.Sort(gets)
	getTime := gets[len(gets)/2]
	scanStart := time.Now()
	scanned := 0
	err = db.View(func(t store.Txn) error {
		for _, st := range Statuses {
			if err := t.IterateKeys(rsPrefix(r.ID, st), func([]byte) error { scanned++; return nil }); err != nil {
				return err
			}
		}
		return nil
	})
	scanTime := time.Since(scanStart)
	if err != nil || scanned != queueBenchVehicles {
		b.Fatalf("the scan counted %d updates (%v)", scanned, err)
	}
	for b.Loop() { // the measurement above is the benchmark; one queue per run
	}

	b.Logf("%s: queued %d vehicles (%d with openssl first) in %.1f s (%.0f vehicles/s); resolve alone %.2f s; raw write of the same records %.1f s and %.1f s",
		kind, r.Vehicles, withDeps, elapsed.Seconds(), float64(r.Vehicles)/elapsed.Seconds(), resolveTime.Seconds(), raw1.Seconds(), raw2.Seconds())
	b.Logf("GET /update_requests/:id median %.3f ms (scan of the status index %.0f ms)", ms(getTime), ms(scanTime))
	b.Logf("memory while queuing: peak RSS %.0f MiB (%s); Go heap %.0f MiB live before, peak %.0f MiB (+%.0f MiB, garbage included), %.0f MiB live after",
		mib(peakRSS), rssKind, mib(heapBefore), mib(heapPeak), mib(heapPeak-heapBefore), mib(heapAfter))
	b.ReportMetric(resolveTime.Seconds(), "resolve-s")
	b.ReportMetric(baseline.Seconds(), "raw-write-s")
	b.ReportMetric(mib(heapPeak-heapBefore), "heap-growth-MiB")
	queueName, rawName := "queue an update for 1,000,000 vehicles (resolve + persist)", "raw Badger batch write of the same records into the same store"
	rssName := "peak RSS while queuing 1,000,000 vehicles (server with the 1M fleet loaded)"
	getName, scanName := "GET /update_requests/:id with 1,000,000 updates (request with its counts, encoded)", "counting its updates by a scan of the status index"
	if kind == "postgres" {
		queueName, rawName = "queue an update for 1,000,000 vehicles with the PostgreSQL store (loopback)", "raw COPY of the same rows into scratch tables of the same shape"
		rssName = "peak RSS while queuing 1,000,000 vehicles with the PostgreSQL store"
		getName += " on PostgreSQL"
	}
	budget.Report(b, budget.Line{Name: queueName, Figure: elapsed.Seconds(),
		Unit: "s", Budget: 60, Ratio: baseline.Seconds() / elapsed.Seconds(), Baseline: rawName})
	budget.Report(b, budget.Line{Name: rssName, Figure: mib(peakRSS), Unit: "MiB", Budget: 2048})
	budget.Report(b, budget.Line{Name: getName, Figure: ms(getTime), Unit: "ms", Budget: 10,
		Ratio: ms(scanTime) / ms(getTime), Baseline: scanName})
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// rawWrite writes what queuing writes per vehicle (the update record and the status index key),
// under prefix, in batches of batchSize, and returns how long it took.
func rawWrite(b *testing.B, db *store.DB, prefix string, targets []resolver.Target, batchSize int) time.Duration {
	req := newUUIDs(1)[0]
	key := func(k []byte) []byte { return append([]byte(prefix), k...) }
	now := time.Now().UnixNano()
	start := time.Now()
	for i := 0; i < len(targets); i += batchSize {
		wb := db.NewBatch()
		for _, t := range targets[i:min(i+batchSize, len(targets))] {
			rec := updRec{Req: req, Status: Pending, Created: now, Updated: now}
			if len(t.Install) > 1 {
				rec.Install = t.Install
			}
			if err := wb.Set(key(updKey(t.VIN, updateIDFor(req, t.VIN))), encodeUpd(&rec)); err != nil {
				b.Fatal(err)
			}
			if err := wb.Set(key(rsKey(req, Pending, t.VIN)), nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// rawCopy is the baseline of the queue on PostgreSQL: the rows queuing writes per vehicle (the update
// record and the status index row, with the same install lists) copied with COPY into two scratch
// tables shaped like the store's updates and update_status (primary keys included) in the store's
// schema (url), which are dropped afterwards. It returns how long the copies took.
func rawCopy(b *testing.B, url string, targets []resolver.Target) time.Duration {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"CREATE TABLE bench_updates (vin BYTEA NOT NULL, update_id BYTEA NOT NULL, record BYTEA NOT NULL, PRIMARY KEY (vin, update_id))",
		"CREATE TABLE bench_update_status (request_id BYTEA NOT NULL, status BYTEA NOT NULL, vin BYTEA NOT NULL, PRIMARY KEY (request_id, status, vin))",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	defer conn.Exec(ctx, "DROP TABLE bench_updates, bench_update_status")
	req := newUUIDs(1)[0]
	now := time.Now().UnixNano()
	start := time.Now()
	i := 0
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"bench_updates"}, []string{"vin", "update_id", "record"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(targets) {
				return nil, nil
			}
			t := targets[i]
			i++
			rec := updRec{Req: req, Status: Pending, Created: now, Updated: now}
			if len(t.Install) > 1 {
				rec.Install = t.Install
			}
			return []any{[]byte(t.VIN), []byte(updateIDFor(req, t.VIN)), encodeUpd(&rec)}, nil
		}))
	if err != nil || n != int64(len(targets)) {
		b.Fatalf("copy of the update rows: %d rows, %v", n, err)
	}
	i = 0
	n, err = conn.CopyFrom(ctx, pgx.Identifier{"bench_update_status"}, []string{"request_id", "status", "vin"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(targets) {
				return nil, nil
			}
			i++
			return []any{[]byte(req), []byte(Pending), []byte(targets[i-1].VIN)}, nil
		}))
	if err != nil || n != int64(len(targets)) {
		b.Fatalf("copy of the status rows: %d rows, %v", n, err)
	}
	return time.Since(start)
}

// peakRSS is VmHWM when it was reset before the measurement, else the process's Maxrss (which then
// includes the fleet import).
func peakRSS(wasReset bool) (uint64, string) {
	if wasReset {
		if kb, err := budget.StatusKB("VmHWM"); err == nil {
			return uint64(kb) << 10, "VmHWM reset before queuing"
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return uint64(ru.Maxrss) << 10, "Maxrss of the process, fleet import included"
}

// heapSampler polls the live heap every 10 ms without stopping the world and keeps the peak.
type heapSampler struct {
	done   chan struct{}
	wg     sync.WaitGroup
	before uint64
	peak   uint64
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{}), before: heapObjects()}
	h.peak = h.before
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-tk.C:
				h.peak = max(h.peak, heapObjects())
			}
		}
	}()
	return h
}

// stop ends the sampling and returns the peak and the heap before.
func (h *heapSampler) stop() (peak, before uint64) {
	close(h.done)
	h.wg.Wait()
	return max(h.peak, heapObjects()), h.before
}
