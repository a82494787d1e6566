package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"sota/store"
)

// CatchUp's probes (changes.go): with the background poller all but off, many callers at once on A
// catch up while B and A itself keep writing; every write B acknowledged before a CatchUp is applied
// on A when it returns, whether a probe found nothing new or a poll had to read it.
func TestCatchUpProbesSeeEveryAcknowledgedWrite(t *testing.T) {
	dbs, _ := replicas(t, 2, store.Options{FeedInterval: time.Hour})
	a, b := dbs[0], dbs[1]
	ra := subscribe(a, "x/")
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if g%4 == 0 { // A's own writes: rows the probes pass over
					if !assert.NoError(t, a.Update(func(t store.Txn) error { return t.Set([]byte(fmt.Sprintf("y/%d/%d", g, i)), nil) })) {
						return
					}
				}
				key := fmt.Sprintf("x/%d/%d", g, i)
				if g%2 == 0 {
					if !assert.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte(key), []byte("v")) })) {
						return
					}
				}
				if !assert.NoError(t, a.CatchUp(ctx)) {
					return
				}
				if g%2 == 0 {
					assert.True(t, ra.has(key), "%s acknowledged before CatchUp", key)
				}
			}
		}()
	}
	wg.Wait()
	assert.Len(t, ra.snapshot(), 160)
}
