package engine

// Blob collection and RVI resends with several replicas on one store: each is leased work, run by one
// replica at a time and taken over by another once a dead replica's lease expired (two engines on
// one store stand for replicas, as in leases_test.go).

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/store"
)

// With the db blob store (shared by every replica) one replica at a time collects blobs: the holder
// of job/blobs. When it dies the other takes the collection over once the lease expired.
func TestBlobCollectionOfTheDBBlobStoreRunsOnOneReplicaAtATime(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	blobs := store.NewDBBlobs(db)
	a := replica(t, db, dir, Options{Blobs: blobs})
	b := replica(t, db, dir, Options{Blobs: blobs})
	scA, scB := &Scheduler{s: a}, &Scheduler{s: b}
	ctx := context.Background()
	const rounds = 6
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for _, sc := range []*Scheduler{scA, scB} {
			wg.Add(1)
			go func() { defer wg.Done(); sc.RunOnce(ctx) }()
		}
		wg.Wait()
	}
	ca, cb := scA.Collections(), scB.Collections()
	assert.Equal(t, rounds, ca+cb, "each round collected once: a %d, b %d", ca, cb)
	assert.True(t, ca == 0 || cb == 0, "one replica holds the collection: a %d, b %d", ca, cb)

	// the holder dies (its rounds stop, its lease is not released): the other takes over once the
	// lease expired, and not before
	holder, other := scA, scB
	if cb > 0 {
		holder, other = scB, scA
	}
	other.RunOnce(ctx)
	assert.Equal(t, 0, other.Collections(), "the lease has not expired")
	time.Sleep(leaseTTL(0) + 100*time.Millisecond)
	other.RunOnce(ctx)
	other.RunOnce(ctx)
	assert.Equal(t, 2, other.Collections(), "the survivor collects")
	holder.RunOnce(ctx) // back from a pause: the lease is the survivor's now
	assert.Equal(t, rounds, holder.Collections())
}

// With blobs in local files every replica has its own to collect: each collects in every round,
// whoever holds job/blobs, and removes its own unreferenced files.
func TestEachReplicaCollectsItsOwnLocalBlobs(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	var scs []*Scheduler
	var orphans []string
	for i := 0; i < 2; i++ {
		s := replica(t, db, t.TempDir(), Options{})
		lb, ok := s.blob.(*store.LocalBlobs)
		require.True(t, ok)
		info, err := lb.Put(strings.NewReader("left by a deleted package "+s.Holder()), "")
		require.NoError(t, err)
		old := time.Now().Add(-time.Hour)
		require.NoError(t, os.Chtimes(lb.Path(info.SHA256), old, old))
		orphans = append(orphans, lb.Path(info.SHA256))
		scs = append(scs, &Scheduler{s: s})
	}
	ctx := context.Background()
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		for _, sc := range scs {
			wg.Add(1)
			go func() { defer wg.Done(); sc.RunOnce(ctx) }()
		}
		wg.Wait()
	}
	for i, sc := range scs {
		assert.Equal(t, 3, sc.Collections(), "replica %d collects in every round", i)
		_, err := os.Stat(orphans[i])
		assert.ErrorIs(t, err, os.ErrNotExist, "replica %d removed its unreferenced file", i)
	}
}
