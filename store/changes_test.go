package store_test

// The change feed on PostgreSQL (changes.go): two handles on one schema stand for two replicas.
// Skipped with a message without a server; SOTA_REQUIRE_POSTGRES=1 makes that a failure.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/store"
)

// replicas opens n handles on one fresh PostgreSQL schema with the given options.
func replicas(t *testing.T, n int, o store.Options) ([]*store.DB, string) {
	t.Helper()
	url := storetest.SpecKind(t, "postgres", t.TempDir())
	var out []*store.DB
	for i := 0; i < n; i++ {
		db, err := store.OpenURL(context.Background(), url, o)
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		out = append(out, db)
	}
	return out, url
}

// recorder collects what a subscription was handed.
type recorder struct {
	mu      sync.Mutex
	keys    map[string]int
	reloads int
	fail    bool
}

func subscribe(db *store.DB, prefix string) *recorder {
	r := &recorder{keys: map[string]int{}}
	db.Subscribe(prefix, func(keys [][]byte) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail {
			return errors.New("the store cannot be read")
		}
		if keys == nil {
			r.reloads++
		}
		for _, k := range keys {
			r.keys[string(k)]++
		}
		return nil
	})
	return r
}

func (r *recorder) has(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys[key] > 0
}

func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, n := range r.keys {
		out[k] = n
	}
	return out
}

var ctx = context.Background()

// TestFeedHandsOtherReplicasWritesToSubscribers: sets and deletes of one replica reach the other's
// subscribers of the matching prefix at its CatchUp, and a replica is not handed its own writes.
func TestFeedHandsOtherReplicasWritesToSubscribers(t *testing.T) {
	dbs, _ := replicas(t, 2, store.Options{FeedInterval: -1})
	a, b := dbs[0], dbs[1]
	ra, rb := subscribe(a, "x/"), subscribe(b, "x/")
	other := subscribe(a, "fleet/v/")

	require.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte("x/2"), []byte("v")) }))
	require.NoError(t, b.Update(func(t store.Txn) error {
		if err := t.Set([]byte("x/1"), []byte("v")); err != nil {
			return err
		}
		if err := t.Set([]byte("y/1"), []byte("v")); err != nil {
			return err
		}
		if err := t.Set([]byte("fleet/v/1HGCM82633A004352"), []byte("v")); err != nil { // the vehicles table
			return err
		}
		return t.Delete([]byte("x/2"))
	}))
	w := b.NewBatch()
	require.NoError(t, w.Set([]byte("x/batch"), []byte("v")))
	require.NoError(t, w.Flush())
	require.NoError(t, a.Update(func(t store.Txn) error { return t.Set([]byte("x/own"), []byte("v")) }))

	require.NoError(t, a.CatchUp(ctx))
	assert.Equal(t, map[string]int{"x/1": 1, "x/2": 2, "x/batch": 1}, ra.snapshot(), "a's subscriber of x/ gets b's writes and deletes, not its own")
	assert.Equal(t, map[string]int{"fleet/v/1HGCM82633A004352": 1}, other.snapshot())
	require.NoError(t, a.CatchUp(ctx))
	assert.Equal(t, 1, ra.snapshot()["x/1"], "an entry is handed over once")

	require.NoError(t, b.CatchUp(ctx))
	assert.Equal(t, map[string]int{"x/own": 1}, rb.snapshot())
}

// TestFeedHasNoEntryOfARolledBackWrite: a transaction that fails writes no feed row; a transaction
// that conflicted and ran again writes one.
func TestFeedHasNoEntryOfARolledBackWrite(t *testing.T) {
	dbs, url := replicas(t, 2, store.Options{FeedInterval: -1})
	a, b := dbs[0], dbs[1]
	ra := subscribe(a, "")
	boom := errors.New("boom")
	err := b.Update(func(t store.Txn) error {
		if err := t.Set([]byte("x/rolledback"), []byte("v")); err != nil {
			return err
		}
		if err := t.Delete([]byte("x/other")); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	// many increments of one counter from both replicas: conflicts, each retried until it commits
	var wg sync.WaitGroup
	for _, db := range dbs {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					_, err := db.Sequence("x/counter")
					assert.NoError(t, err)
				}
			}()
		}
	}
	wg.Wait()
	require.NoError(t, a.CatchUp(ctx))
	assert.False(t, ra.has("x/rolledback"))
	assert.False(t, ra.has("x/other"))

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var rows, rolled int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM changes WHERE 'x/counter'::bytea = ANY(keys)`).Scan(&rows))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM changes WHERE 'x/rolledback'::bytea = ANY(keys)`).Scan(&rolled))
	assert.Equal(t, 80, rows, "one row per committed increment, none of the runs that conflicted")
	assert.Zero(t, rolled)
	assert.Equal(t, 40, ra.snapshot()["x/counter"], "a is handed b's 40 increments")
}

// TestFeedAppliesOutOfOrderCommits: a row whose seq was taken before another's but that commits after
// it is still handed over (the gap below the newer row is looked at again).
func TestFeedAppliesOutOfOrderCommits(t *testing.T) {
	dbs, url := replicas(t, 2, store.Options{FeedInterval: -1})
	a, b := dbs[0], dbs[1]
	ra := subscribe(a, "x/")
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)

	slow, err := conn.Begin(ctx)
	require.NoError(t, err)
	var slowSeq int64
	require.NoError(t, slow.QueryRow(ctx, `INSERT INTO changes (keys, origin) VALUES (ARRAY['x/slow'::bytea], 'another') RETURNING seq`).Scan(&slowSeq))
	require.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte("x/fast"), []byte("v")) }))
	require.NoError(t, a.CatchUp(ctx))
	assert.True(t, ra.has("x/fast"))
	assert.False(t, ra.has("x/slow"), "not committed yet")
	require.NoError(t, slow.Commit(ctx))
	require.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte("x/later"), []byte("v")) }))
	require.NoError(t, a.CatchUp(ctx))
	assert.Equal(t, map[string]int{"x/fast": 1, "x/slow": 1, "x/later": 1}, ra.snapshot())

	// a replica opened while a transaction holds a seq below the head also gets it once it commits
	slow, err = conn.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, slow.QueryRow(ctx, `INSERT INTO changes (keys, origin) VALUES (ARRAY['x/slow2'::bytea], 'another') RETURNING seq`).Scan(&slowSeq))
	require.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte("x/fast2"), []byte("v")) }))
	c, err := store.OpenURL(ctx, url, store.Options{FeedInterval: -1})
	require.NoError(t, err)
	defer c.Close()
	rc := subscribe(c, "x/")
	require.NoError(t, slow.Commit(ctx))
	require.NoError(t, c.CatchUp(ctx))
	assert.Equal(t, map[string]int{"x/slow2": 1}, rc.snapshot(), "the new replica's state was loaded after x/fast2; x/slow2 committed after it opened")
}

// TestCatchUpSeesEveryAcknowledgedWrite: writers on one replica, and after each acknowledged write
// a CatchUp on the other hands over its key, with the background poller of both running as well.
func TestCatchUpSeesEveryAcknowledgedWrite(t *testing.T) {
	dbs, _ := replicas(t, 2, store.Options{FeedInterval: 5 * time.Millisecond})
	a, b := dbs[0], dbs[1]
	ra := subscribe(a, "x/")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				key := fmt.Sprintf("x/%d/%d", g, i)
				if !assert.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte(key), []byte("v")) })) {
					return
				}
				if !assert.NoError(t, a.CatchUp(ctx)) {
					return
				}
				assert.True(t, ra.has(key), "%s acknowledged before CatchUp", key)
			}
		}()
	}
	wg.Wait()
	assert.Len(t, ra.snapshot(), 200)
}

// TestFeedTruncationMakesALaggingReplicaReload: rows older than the retention go; a replica that had
// not read them is told to reload everything, one that had read them is not.
func TestFeedTruncationMakesALaggingReplicaReload(t *testing.T) {
	dbs, url := replicas(t, 2, store.Options{FeedInterval: -1, FeedRetention: time.Millisecond})
	a, b := dbs[0], dbs[1]
	ra, rb := subscribe(a, "x/"), subscribe(b, "x/")
	require.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte("x/1"), []byte("v")) }))
	require.NoError(t, a.Update(func(t store.Txn) error { return t.Set([]byte("x/2"), []byte("v")) }))
	require.NoError(t, b.CatchUp(ctx)) // b has read everything; a has not
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, b.TrimFeed(ctx))

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var left int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM changes`).Scan(&left))
	assert.Zero(t, left)

	require.NoError(t, a.CatchUp(ctx))
	require.NoError(t, b.CatchUp(ctx))
	assert.Equal(t, 1, ra.reloads, "a missed x/1")
	assert.Zero(t, rb.reloads)
	assert.Equal(t, map[string]int{"x/2": 1}, rb.snapshot())
}

// TestFeedOnBadgerDoesNothing: one process owns a Badger directory; Subscribe and CatchUp are no-ops.
func TestFeedOnBadgerDoesNothing(t *testing.T) {
	db := storetest.OpenKind(t, "badger")
	r := subscribe(db, "")
	require.NoError(t, db.Update(func(t store.Txn) error { return t.Set([]byte("x/1"), []byte("v")) }))
	require.NoError(t, db.CatchUp(ctx))
	assert.Empty(t, r.snapshot())
}

// TestFeedHandsOverAgainWhatASubscriberFailedToApply: a subscriber that cannot apply (its store read
// failed) gets the same keys again at the next poll, with the new ones; CatchUp reports the failure.
func TestFeedHandsOverAgainWhatASubscriberFailedToApply(t *testing.T) {
	dbs, _ := replicas(t, 2, store.Options{FeedInterval: -1})
	a, b := dbs[0], dbs[1]
	ra := subscribe(a, "x/")
	ra.fail = true
	require.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte("x/1"), []byte("v")) }))
	assert.ErrorContains(t, a.CatchUp(ctx), "the store cannot be read")
	assert.Empty(t, ra.snapshot())
	ra.mu.Lock()
	ra.fail = false
	ra.mu.Unlock()
	require.NoError(t, a.CatchUp(ctx), "nothing new: the failed keys alone are handed over again")
	require.NoError(t, b.Update(func(t store.Txn) error { return t.Set([]byte("x/2"), []byte("v")) }))
	require.NoError(t, a.CatchUp(ctx))
	assert.Equal(t, map[string]int{"x/1": 1, "x/2": 1}, ra.snapshot())
}

// BenchmarkCatchUpNothingNew is what a resolve or dry run pays on PostgreSQL for read-your-writes
// when no other process wrote since the last poll (one round trip), next to a point read (Get of a
// missing key in a View) as the baseline.
func BenchmarkCatchUpNothingNew(b *testing.B) {
	if os.Getenv("SOTA_TEST_PG_URL") == "" && os.Getenv("SOTA_REQUIRE_POSTGRES") != "1" {
		b.Skip("PostgreSQL only: set SOTA_TEST_PG_URL to a server's URL (e.g. " + storetest.DefaultPGURL + ") to measure it")
	}
	db := storetest.OpenKind(b, "postgres")
	const n = 1000
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := db.View(func(t store.Txn) error { _, err := t.Get([]byte("x/missing")); return err }); !errors.Is(err, store.ErrNotFound) {
			b.Fatal(err)
		}
	}
	get := time.Since(start) / n
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start = time.Now()
		for j := 0; j < n; j++ {
			if err := db.CatchUp(ctx); err != nil {
				b.Fatal(err)
			}
		}
		per := time.Since(start) / n
		b.ReportMetric(float64(per)/1e3, "µs/catchup")
		b.ReportMetric(float64(get)/1e3, "µs/view-get")
	}
}
