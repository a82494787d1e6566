package engine

import (
	"context"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// BenchmarkQueue1M: queue an update for 1,000,000 matching vehicles (resolve + persist into the real
// Badger store with synchronous writes) on a server started with the example fleet in its store (the
// fleet is imported, then the store is reopened and the fleet index rebuilt). Budget: ≤ 60 s. Baseline, in the same run: the raw batched
// write of the same keys and values (two keys per vehicle, the same install lists, the same batch
// size, under a scratch prefix) into the same store, without resolve and request bookkeeping, twice
// before the restart, the faster counting; the ratio is baseline time / queue time, so 1 would mean
// no overhead (the queue then also has the baseline's records in its store). Memory: the peak RSS during the queuing (VmHWM,
// reset before it) against the 2 GB RSS budget of a million-vehicle server, and the peak Go heap
// growth while queuing.
func BenchmarkQueue1M(b *testing.B) {
	// the queuing process runs with sotad's soft memory limit, so that its peak RSS is what sotad's would be
	if _, err := memlimit.Apply(memlimit.Default); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dir := b.TempDir()
	db, err := storetest.OpenDir(b, dir+"/db")
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
	raw1 := rawWrite(b, db, "bench/1/", targets, DefaultBatchSize)
	raw2 := rawWrite(b, db, "bench/2/", targets, DefaultBatchSize)
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
	if db, err = storetest.OpenDir(b, dir+"/db"); err != nil {
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
	for b.Loop() { // the measurement above is the benchmark; one queue per run
	}

	b.Logf("queued %d vehicles (%d with openssl first) in %.1f s (%.0f vehicles/s); resolve alone %.2f s; raw write of the same records %.1f s and %.1f s",
		r.Vehicles, withDeps, elapsed.Seconds(), float64(r.Vehicles)/elapsed.Seconds(), resolveTime.Seconds(), raw1.Seconds(), raw2.Seconds())
	b.Logf("memory while queuing: peak RSS %.0f MiB (%s); Go heap %.0f MiB live before, peak %.0f MiB (+%.0f MiB, garbage included), %.0f MiB live after",
		mib(peakRSS), rssKind, mib(heapBefore), mib(heapPeak), mib(heapPeak-heapBefore), mib(heapAfter))
	b.ReportMetric(resolveTime.Seconds(), "resolve-s")
	b.ReportMetric(baseline.Seconds(), "raw-write-s")
	b.ReportMetric(mib(heapPeak-heapBefore), "heap-growth-MiB")
	budget.Report(b, budget.Line{Name: "queue an update for 1,000,000 vehicles (resolve + persist)", Figure: elapsed.Seconds(),
		Unit: "s", Budget: 60, Ratio: baseline.Seconds() / elapsed.Seconds(), Baseline: "raw Badger batch write of the same records into the same store"})
	budget.Report(b, budget.Line{Name: "peak RSS while queuing 1,000,000 vehicles (server with the 1M fleet loaded)", Figure: mib(peakRSS),
		Unit: "MiB", Budget: 2048})
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
