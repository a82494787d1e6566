package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sota/examples/load"
	"sota/internal/budget"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

// BenchmarkCopy1M: `sotad copy` of a Badger store holding the example fleet at 1,000,000 vehicles
// (SOTA_BENCH_COPY_VEHICLES) with its catalogue and filters, into a new Badger directory and into a
// fresh PostgreSQL schema (with SOTA_TEST_PG_URL set, as storetest.BenchKinds), against a read-only scan of every key and value
// of the source in the same run. Budget: 120 s, that of importing 1,000,000 vehicles (ARCHITECTURE.md),
// whose writes a copy repeats.
func BenchmarkCopy1M(b *testing.B) {
	n := envInt("SOTA_BENCH_COPY_VEHICLES", 1_000_000)
	base := b.TempDir()
	src := filepath.Join(base, "src")
	db, err := store.Open(src, store.Options{GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	rs, err := resolver.New(db)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := load.All(context.Background(), rs, load.DefaultSeed, n); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	var keys, size int64
	err = db.View(func(t store.Txn) error {
		return t.Iterate(nil, func(k, v []byte) error {
			keys++
			size += int64(len(k) + len(v))
			return nil
		})
	})
	scan := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	old := stdout
	stdout = io.Discard
	defer func() { stdout = old }()
	name := fmt.Sprintf("sotad copy of %s vehicles (example fleet, %d keys, %.0f MiB)", vehiclesText(n), keys, float64(size)/(1<<20))
	for _, to := range []string{"badger", "postgres"} {
		b.Run(to, func(b *testing.B) {
			spec := "badger:" + filepath.Join(base, "copy-"+fmt.Sprint(b.N))
			if to == "postgres" {
				if os.Getenv("SOTA_TEST_PG_URL") == "" && os.Getenv("SOTA_REQUIRE_POSTGRES") != "1" {
					b.Skip("PostgreSQL row skipped: set SOTA_TEST_PG_URL to a server's URL to measure it")
				}
				spec = storetest.NewSchema(b)
			}
			b.ResetTimer()
			t0 := time.Now()
			if err := run([]string{"copy", "--from", "badger:" + src, "--to", spec}, env(nil), io.Discard); err != nil {
				b.Fatal(err)
			}
			d := time.Since(t0)
			b.StopTimer()
			budget.Report(b, budget.Line{Name: name + ", Badger to " + map[string]string{"badger": "Badger", "postgres": "PostgreSQL"}[to],
				Figure: d.Seconds(), Unit: "s", Budget: 120, Ratio: scan.Seconds() / d.Seconds(),
				Baseline: "a read-only scan of every key of the source"})
			b.ReportMetric(float64(keys)/d.Seconds(), "keys/s")
		})
	}
}

func vehiclesText(n int) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return fmt.Sprint(n)
}
