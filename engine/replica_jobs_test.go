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

// resendLog collects what the resends of each replica handed their transport.
type resendLog struct {
	mu sync.Mutex
	by map[string][]Resend
}

func (l *resendLog) sender(name string) func(Resend) {
	return func(r Resend) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.by == nil {
			l.by = map[string][]Resend{}
		}
		l.by[name] = append(l.by[name], r)
	}
}

func (l *resendLog) take() map[string][]Resend {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.by
	l.by = nil
	return out
}

// A chunk sent over a transport that awaits its ack (RVI) is resent by one replica at a time, the
// holder of job/resends, whichever replica sent it; a dead holder's resends are taken over once its
// lease expired; after the last resend the transfer is aborted; an ack moves the wait to the next
// chunk, and a replica that died between an ack and the next chunk leaves the next chunk to the
// resends.
func TestResendsRunOnOneReplicaAndMoveWhenItDies(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	a := replica(t, db, dir, Options{Now: c.Now})
	b := replica(t, db, dir, Options{Now: c.Now})
	p := pkg("nav", "2.0.0")
	require.NoError(t, a.res.PutVehicle(vinA))
	everyone(t, a, p)
	queueDirect(t, a, p, 10, nil, vinA)
	q, err := a.Queue(vinA)
	require.NoError(t, err)
	id := q[0].ID
	_, err = a.StartTransfer(vinA, id, 4)
	require.NoError(t, err)

	// the timeout is measured by the engines' clock, which the test moves; the lease lives 1 s
	const timeout = time.Minute
	o := ResendOptions{Timeout: timeout, Resends: 2, Poll: 100 * time.Millisecond}
	log := &resendLog{}
	ctx := context.Background()
	rounds := func(scs ...string) { // a round of each replica named, at once
		var wg sync.WaitGroup
		for _, n := range scs {
			s := map[string]*Service{"a": a, "b": b}[n]
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.runResends(ctx, o, log.sender(n))
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
	}
	ch, ok, err := b.NextChunkAwaitingAck(vinA, id, timeout) // b sends chunk 1
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, ch.Index)
	_, err = a.runResends(ctx, o, log.sender("a")) // a takes job/resends
	require.NoError(t, err)
	rounds("a", "b")
	assert.Empty(t, log.take(), "nothing is due before the timeout")

	c.Add(timeout)
	for i := 0; i < 3; i++ {
		rounds("a", "b")
	}
	assert.Equal(t, map[string][]Resend{"a": {{VIN: vinA, UpdateID: id, Index: 1, Attempt: 1}}}, log.take(),
		"the holder resends chunk 1 once; b, which sent it, does not")

	// a dies: its lease holds b off until it expires, then b resends, once
	c.Add(timeout)
	rounds("b")
	assert.Empty(t, log.take(), "a's lease has not expired")
	time.Sleep(leaseTTL(o.Poll) + 100*time.Millisecond)
	rounds("b")
	rounds("b")
	assert.Equal(t, map[string][]Resend{"b": {{VIN: vinA, UpdateID: id, Index: 1, Attempt: 2}}}, log.take())

	// no ack after the last resend: abort, and nothing is awaited any more
	c.Add(timeout)
	rounds("b")
	assert.Equal(t, map[string][]Resend{"b": {{VIN: vinA, UpdateID: id, Index: 1, Attempt: 2, Abort: true}}}, log.take())
	c.Add(timeout)
	rounds("b")
	assert.Empty(t, log.take())

	// the vehicle starts again: chunk 1 acknowledged, chunk 2 sent and awaited
	_, err = a.AckChunks(vinA, id, []int{1})
	require.NoError(t, err)
	ch, ok, err = a.NextChunkAwaitingAck(vinA, id, timeout)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 2, ch.Index)
	c.Add(timeout)
	rounds("b")
	assert.Equal(t, map[string][]Resend{"b": {{VIN: vinA, UpdateID: id, Index: 2, Attempt: 1}}}, log.take())

	// chunk 2 acknowledged on a replica that died before sending chunk 3: the resends send it
	_, err = a.AckChunks(vinA, id, []int{2})
	require.NoError(t, err)
	c.Add(timeout)
	rounds("b")
	assert.Equal(t, map[string][]Resend{"b": {{VIN: vinA, UpdateID: id, Index: 3, Attempt: 0}}}, log.take())

	// every chunk acknowledged and nothing sent since: finish
	st, err := a.TransferStatus(vinA, id)
	require.NoError(t, err)
	var all []int
	for i := 1; i <= st.ChunksCount; i++ {
		all = append(all, i)
	}
	_, err = a.AckChunks(vinA, id, all)
	require.NoError(t, err)
	c.Add(timeout)
	rounds("a", "b")
	assert.Equal(t, map[string][]Resend{"b": {{VIN: vinA, UpdateID: id, Index: 0}}}, log.take())

	// an update that ended is not resent
	ch, ok, err = a.NextChunkAwaitingAck(vinA, id, timeout)
	require.NoError(t, err)
	assert.False(t, ok, "every chunk is acknowledged")
	_, err = a.ChunkAt(vinA, id, 1)
	require.NoError(t, err)
	require.NoError(t, a.update(func(tx store.Txn) error { // as if chunk 1 were awaited again
		return tx.Set(awaitKey(vinA, id), encodeAwait(awaitRec{Index: 1, Due: c.Now().UnixNano()}))
	}))
	_, err = a.DeviceCancel(vinA, id)
	require.NoError(t, err)
	rounds("a", "b")
	assert.Empty(t, log.take(), "a canceled update is not resent")
	require.NoError(t, db.View(func(tx store.Txn) error {
		_, err := tx.Get(awaitKey(vinA, id))
		assert.ErrorIs(t, err, store.ErrNotFound, "its wait is dropped")
		return nil
	}))
}
