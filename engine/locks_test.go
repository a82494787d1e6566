package engine

// The cross-replica locks and the split billing-cycle usage, with two engines on one store (on
// PostgreSQL what two sotad processes do; on Badger two services in one process). cmd/sotad's
// TestReplicasQueueOnePackageAtOnceWithoutDuplicates runs the queuing with three real processes.

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

// Two engines queue the same package version at once, round after round (in small batches, with
// different priorities, a cancel of everything between rounds): no vehicle ever has two active
// updates of it, and every vehicle has one.
func TestTwoEnginesQueueOnePackageAtOnceWithoutDuplicates(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	o := Options{BatchSize: 16}
	a := replica(t, db, dir, o)
	const n = 120
	vins := importFleet(t, a, n)
	p := pkg("nav", "2.0.0")
	everyone(t, a, p)
	b := replica(t, db, dir, o)
	ctx := context.Background()
	for round := 0; round < 8; round++ {
		var wg sync.WaitGroup
		reqs := make([]UpdateRequest, 4)
		errs := make([]error, 4)
		for i := range reqs {
			s := []*Service{a, b}[i%2]
			prio := i * 3
			wg.Add(1)
			go func() {
				defer wg.Done()
				reqs[i], errs[i] = s.QueueUpdate(ctx, NewRequest{PackageID: p, Priority: &prio})
			}()
		}
		wg.Wait()
		total := 0
		for i := range reqs {
			require.NoError(t, errs[i])
			total += reqs[i].Vehicles
		}
		assert.Equal(t, n, total, "round %d: the requests queued each vehicle once between them", round)
		for _, s := range []*Service{a, b} {
			for _, v := range vins {
				q, err := s.Queue(v)
				require.NoError(t, err)
				require.Lenf(t, q, 1, "round %d: %s", round, v)
			}
		}
		for i := range reqs {
			_, err := []*Service{b, a}[i%2].Cancel(reqs[i].ID)
			require.NoError(t, err)
		}
	}
}

// A lock's holder that stalled past its lease and lost the lock to another writer writes nothing
// more under it: its next fenced transaction fails, whatever it was about to write.
func TestALockTakenOverFencesItsFormerHolder(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	o := Options{QueueLeaseTTL: 200 * time.Millisecond}
	a := replica(t, db, dir, o)
	b := replica(t, db, dir, o)
	ctx := context.Background()
	la, err := a.lockPackage(ctx, pkg("nav", "1.0.0"))
	require.NoError(t, err)
	la.stop() // a stalls: no more renewals

	start := time.Now()
	lb, err := b.lockPackage(ctx, pkg("NAV", "1.0.0")) // names compare case-insensitively
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "b waited for a's lease to expire")

	err = a.update(func(x store.Txn) error {
		if err := la.check(x); err != nil {
			return err
		}
		return x.Set([]byte("core/lock-test"), []byte("a"))
	})
	assert.ErrorIs(t, err, errLockLost)
	require.NoError(t, b.update(func(x store.Txn) error { return lb.check(x) }))
	lb.unlock()
	la.stop = func() {}
	la.unlock() // a's late release leaves b's successor alone
	lc, err := a.lockPackage(ctx, pkg("nav", "1.0.0"))
	require.NoError(t, err)
	lc.unlock()
	require.NoError(t, db.View(func(x store.Txn) error {
		_, err := x.Get([]byte("core/lock-test"))
		assert.ErrorIs(t, err, store.ErrNotFound, "nothing was written under the lost lock")
		return nil
	}))
}

// Vehicles of one data plan download their transfers chunk by chunk at once through two engines:
// the plan's billing cycle counts every byte exactly (no lost or doubled chunk), the count is spread
// over several usage rows (none takes every chunk), and the room it leaves decides delivery to the
// byte.
func TestConcurrentTransfersOverOnePlanCountEveryByte(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	o := Options{Now: c.Now}
	a := replica(t, db, dir, o)
	const vehicles, size, chunk = 16, 8192, 512
	vins := importFleet(t, a, vehicles+1)
	late := vins[vehicles] // gets a second package only
	vins = vins[:vehicles]
	content := make([]byte, size)
	rand.Read(content)
	nav, radio := pkg("nav", "1.0.0"), pkg("radio", "1.0.0")
	for _, p := range []resolver.PackageID{nav, radio} {
		_, err := a.UploadBinary(p, bytes.NewReader(content), Upload{})
		require.NoError(t, err)
	}
	_, err = a.AddDataPlan("fleet")
	require.NoError(t, err)
	const pool = vehicles*size + size - 1 // after every transfer, one byte short of radio's size
	_, err = a.AddBillingCycle("fleet", c.Now().Add(-time.Hour), pool)
	require.NoError(t, err)
	for _, v := range append([]string{late}, vins...) {
		_, err := a.SetDataPlan(v, "fleet")
		require.NoError(t, err)
	}
	r := queueDirect(t, a, nav, 10, nil, vins...)
	queueDirect(t, a, radio, 10, nil, late)
	b := replica(t, db, dir, o)
	engines := []*Service{a, b}

	_, ok, _, err := b.NextUpdate(late)
	require.NoError(t, err)
	require.True(t, ok, "radio fits the cycle before the transfers")

	var wg sync.WaitGroup
	begin := time.Now()
	for i, v := range vins {
		id := updateIDFor(r.ID, v)
		_, err := engines[i%2].StartTransfer(v, id, chunk)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 1; k <= size/chunk; k++ {
				got, err := engines[(i+k)%2].ChunkAt(v, id, k)
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, content[(k-1)*chunk:k*chunk], got.Data)
			}
		}()
	}
	wg.Wait()
	took := time.Since(begin)
	t.Logf("%d chunks of %d vehicles of one plan through two engines in %v (%.0f chunks/s)",
		vehicles*size/chunk, vehicles, took.Round(time.Millisecond), float64(vehicles*size/chunk)/took.Seconds())

	for _, s := range engines {
		cs, err := s.BillingCycles("fleet", time.Time{}, time.Time{})
		require.NoError(t, err)
		require.Len(t, cs, 1)
		assert.Equal(t, int64(vehicles*size), cs[0].UsedBytes, "every byte served counted once")
	}
	tr, err := b.AddTraffic(late, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(vehicles*size), *tr.UsedBytes)

	rows := 0
	require.NoError(t, db.View(func(x store.Txn) error {
		return x.Iterate([]byte(pUsage+"fleet/"), func(_, v []byte) error {
			rows++
			assert.Less(t, decodeUsage(v), int64(vehicles*size), "a usage row took every chunk")
			return nil
		})
	}))
	assert.Greater(t, rows, 4, "the usage is spread over rows")

	for _, s := range engines {
		_, ok, oversize, err := s.NextUpdate(late)
		require.NoError(t, err)
		assert.False(t, ok, "radio no longer fits: %d bytes are left", pool-vehicles*size)
		assert.True(t, oversize)
	}
	_, err = a.AddBillingCycle("fleet", c.Now().Add(-time.Minute), size)
	require.NoError(t, err)
	_, ok, _, err = b.NextUpdate(late)
	require.NoError(t, err)
	assert.True(t, ok, "a new cycle with room for radio")
}
