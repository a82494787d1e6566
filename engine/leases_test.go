package engine

// Several engines on one store stand for replicas (on PostgreSQL what several sotad processes do;
// on Badger several services in one process, which share the process's leases). cmd/sotad's
// TestThreeReplicasWakeEachVehicleAtMostOncePerInterval runs the same with three real processes.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// replica opens another engine (with its own resolver) over db.
func replica(t *testing.T, db *store.DB, dir string, o Options) *Service {
	t.Helper()
	o.DataDir = dir
	res, err := resolver.New(db)
	require.NoError(t, err)
	s, err := New(db, res, o)
	require.NoError(t, err)
	return s
}

// wakeRecorder receives wake-ups at /<replica> and keeps them per replica, verified.
type wakeRecorder struct {
	mu  sync.Mutex
	key func() []byte
	by  map[string][]Wakeup // replica -> wake-ups
	bad int
}

func newWakeRecorder(t *testing.T) (*wakeRecorder, string) {
	r := &wakeRecorder{by: map[string][]Wakeup{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var wk Wakeup
		r.mu.Lock()
		defer r.mu.Unlock()
		if json.Unmarshal(b, &wk) != nil {
			r.bad++
			return
		}
		r.by[req.URL.Path[1:]] = append(r.by[req.URL.Path[1:]], wk)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *wakeRecorder) take() map[string][]Wakeup {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.by
	r.by = map[string][]Wakeup{}
	return out
}

func TestReplicasSplitTheWakeupShardsAndWakeEachVehicleOnce(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	rec, url := newWakeRecorder(t)
	o := Options{Now: c.Now, ReconnectInterval: time.Hour, Blobs: nil}

	oa := o
	oa.WakeupURL = url + "/a"
	a := replica(t, db, dir, oa)
	const n = 200
	vins := make([]string, n)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDD%014d", i+1)
	}
	// valid from in an hour: nothing to wake while the replicas agree on their shards
	from := c.Now().Add(time.Hour)
	p := pkg("nav", "2.0.0")
	r := &UpdateRequest{ID: newUUIDs(1)[0], Kind: KindInstall, PackageID: &p, Priority: 10, ValidFrom: &from, CreatedAt: a.now()}
	var ts []resolver.Target
	for _, v := range vins {
		ts = append(ts, resolver.Target{VIN: v, Install: []resolver.PackageID{p}})
	}
	require.NoError(t, a.persist(r, ts))
	ob := o
	ob.WakeupURL = url + "/b"
	b := replica(t, db, dir, ob)
	require.NotEqual(t, a.Holder(), b.Holder())

	// leases of 3 s (a scheduler interval of 1 s): a round on a busy machine must not outlive them,
	// or the shards move between the rounds this test counts
	const interval = time.Second
	scA, scB := &Scheduler{s: a, interval: interval}, &Scheduler{s: b, interval: interval}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		scA.RunOnce(ctx)
		scB.RunOnce(ctx)
	}
	sa, sb := scA.Shards(), scB.Shards()
	assert.Len(t, sa, WakeupShards/2, "two live replicas take half of the shards each")
	assert.Len(t, sb, WakeupShards/2)
	for _, i := range sa {
		assert.NotContains(t, sb, i, "shard %d held by both", i)
	}
	assert.Empty(t, rec.take(), "nothing to wake before the updates are valid")

	// Both replicas run rounds at once: every vehicle is woken once, by the replica of its shard.
	c.Add(2 * time.Hour)
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		for _, sc := range []*Scheduler{scA, scB} {
			wg.Add(1)
			go func() { defer wg.Done(); sc.RunOnce(ctx) }()
		}
		wg.Wait()
	}
	got := rec.take()
	count := map[string]int{}
	for name, ws := range got {
		held := map[string][]int{"a": sa, "b": sb}[name]
		for _, w := range ws {
			count[w.VIN]++
			assert.True(t, wire.VerifyWakeup(a.PublicKey(), w), "signed with the store's key")
			assert.Contains(t, held, wakeupShard(w.VIN), "%s woken by %s, which does not hold its shard", w.VIN, name)
		}
	}
	assert.NotEmpty(t, got["a"], "replica a woke its vehicles")
	assert.NotEmpty(t, got["b"], "replica b woke its vehicles")
	for _, v := range vins {
		assert.Equal(t, 1, count[v], "%s woken once within the reconnect interval", v)
	}

	// b dies (its rounds stop, its leases are not released): once they expire a takes every shard,
	// and wakes b's vehicles when the reconnect interval is over, still once each.
	time.Sleep(leaseTTL(interval) + 100*time.Millisecond)
	scA.RunOnce(ctx)
	assert.Len(t, scA.Shards(), WakeupShards, "the surviving replica holds every shard")
	assert.Empty(t, rec.take(), "within the reconnect interval nobody is woken again")
	c.Add(2 * time.Hour)
	scA.RunOnce(ctx)
	scA.RunOnce(ctx)
	got = rec.take()
	assert.Empty(t, got["b"])
	count = map[string]int{}
	for _, w := range got["a"] {
		count[w.VIN]++
	}
	for _, v := range vins {
		assert.Equal(t, 1, count[v], "%s woken once after the takeover", v)
	}
}

// The manual wake-up (Xmit, POST /update_requests/xmit) of two replicas at once still wakes each
// vehicle once: the last-wake records decide, whoever sends.
func TestConcurrentXmitOfTwoReplicasWakesEachVehicleOnce(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	rec, url := newWakeRecorder(t)
	a := replica(t, db, dir, Options{Now: c.Now, WakeupURL: url + "/a"})
	var vins []string
	for i := 0; i < 150; i++ {
		vins = append(vins, fmt.Sprintf("WDD%014d", i+1))
	}
	queueDirect(t, a, pkg("nav", "2.0.0"), 10, nil, vins...)
	b := replica(t, db, dir, Options{Now: c.Now, WakeupURL: url + "/b"})
	var wg sync.WaitGroup
	var na, nb int
	wg.Add(2)
	go func() { defer wg.Done(); na, err = a.Xmit(context.Background()); assert.NoError(t, err) }()
	go func() { defer wg.Done(); var e error; nb, e = b.Xmit(context.Background()); assert.NoError(t, e) }()
	wg.Wait()
	assert.Equal(t, len(vins), na+nb, "every vehicle woken, by one of the two")
	count := map[string]int{}
	for _, ws := range rec.take() {
		for _, w := range ws {
			count[w.VIN]++
		}
	}
	for _, v := range vins {
		assert.Equal(t, 1, count[v], v)
	}
}

// A request found "queuing" at start is another process's queuing in progress while its lease is
// held, and is aborted (its pending updates canceled) once the lease expires.
func TestStartAbortsAQueuingRequestOnlyOnceItsLeaseExpired(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	a := replica(t, db, dir, Options{})
	r := queueDirect(t, a, pkg("nav", "2.0.0"), 10, nil, vinA, vinB)
	// as if a process queuing r (holder "other") were still at it
	ttl := 600 * time.Millisecond
	ok, err := db.TryLease(context.Background(), leaseQueue+r.ID, "other", ttl)
	require.NoError(t, err)
	require.True(t, ok)
	r.State = StateQueuing
	require.NoError(t, db.Update(func(t store.Txn) error { return t.Set(reqKey(r.ID), encode(r)) }))

	b := replica(t, db, dir, Options{QueueLeaseTTL: 200 * time.Millisecond})
	got, err := b.Request(r.ID)
	require.NoError(t, err)
	assert.Equal(t, StateQueuing, got.State, "the queuing of a live process is left alone at start")
	assert.Equal(t, 2, got.Counts.Pending)

	require.Eventually(t, func() bool {
		got, err := b.Request(r.ID)
		return err == nil && got.State == StateAborted && got.Counts.Pending == 0 && got.Vehicles == 2
	}, 5*time.Second, 20*time.Millisecond, "aborted once the lease expired")
	got, err = b.Request(r.ID)
	require.NoError(t, err)
	assert.Equal(t, Counts{Canceled: 2}, *got.Counts)
	assert.Equal(t, 2, got.Vehicles)

	// a process that restarts finds no lease of a request it was queuing when it died: aborted at once
	r2 := queueDirect(t, a, pkg("radio", "1.0.0"), 10, nil, vinA)
	r2.State = StateQueuing
	require.NoError(t, db.Update(func(t store.Txn) error { return t.Set(reqKey(r2.ID), encode(r2)) }))
	c := replica(t, db, dir, Options{})
	got, err = c.Request(r2.ID)
	require.NoError(t, err)
	assert.Equal(t, StateAborted, got.State)
	assert.True(t, slices.Equal([]int{0, 1}, []int{got.Counts.Pending, got.Counts.Canceled}), "%+v", *got.Counts)
}
