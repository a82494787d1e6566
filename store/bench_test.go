package store_test

import (
	"fmt"
	"testing"

	"sota/internal/storetest"
	"sota/store"
)

// BenchmarkPollShapedView is what a device poll reads, on each backend: one View with a Get and a
// scan of one vehicle's two updates, by 32 concurrent callers over 1,000 vehicles. No budget of its
// own (the device poll benchmark of api holds the budget); it tells what the store costs per poll.
func BenchmarkPollShapedView(b *testing.B) {
	storetest.BenchKinds(b, func(b *testing.B, kind string) {
		db := storetest.OpenKind(b, kind)
		const vehicles = 1000
		vin := func(i int) string { return fmt.Sprintf("1HGCM82633A%06d", i) }
		w := db.NewBatch()
		for i := 0; i < vehicles; i++ {
			w.Set([]byte("fleet/v/"+vin(i)), make([]byte, 200))
			for u := 0; u < 2; u++ {
				w.Set([]byte(fmt.Sprintf("core/upd/%s/%036d", vin(i), u)), make([]byte, 60))
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(16) // 32 callers on 2 cores
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				v := vin(i % vehicles)
				n := 0
				err := db.View(func(t store.Txn) error {
					if _, err := t.Get([]byte("fleet/v/" + v)); err != nil {
						return err
					}
					return t.Iterate([]byte("core/upd/"+v+"/"), func(k, v []byte) error { n++; return nil })
				})
				if err != nil || n != 2 {
					b.Fatal(err, n)
				}
			}
		})
	})
}
