package store_test

// One conformance suite of the store API, run on both backends: Badger in a temporary directory and
// PostgreSQL in a fresh schema (skipped with a message when no server answers; SOTA_REQUIRE_POSTGRES=1
// makes that a failure). Whatever a domain may rely on is here: get/set/delete, byte order of scans
// for any prefix, atomicity, conflicts, snapshots, batches, sequences, hooks and limits.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/store"
)

// eachBackend runs f on a fresh store of each backend.
func eachBackend(t *testing.T, f func(t *testing.T, db *store.DB)) {
	for _, kind := range []string{"badger", "postgres"} {
		t.Run(kind, func(t *testing.T) { f(t, storetest.OpenKind(t, kind)) })
	}
}

const (
	vinA = "1HGCM82633A004352"
	vinB = "1HGCM82633A004353"
	vinC = "WDD2030461A123456"
	reqA = "6f1c2a8e-3b9d-4c4e-9a6b-0d2f5e7a9c11"
	reqB = "6f1c2a8e-3b9d-4c4e-9a6b-0d2f5e7a9c12"
)

// conformanceKeys are keys of every family of the PostgreSQL tables and of kv, keys of a family that
// do not fit its table (too few segments, a short request id), bytes 0x00 and 0xff, and segments that
// are prefixes of one another.
func conformanceKeys() []string {
	return []string{
		"auth/account/alice", "auth/account/bob", "policy/tables/x",
		"fleet/v/" + vinA, "fleet/v/" + vinB, "fleet/v/" + vinC, "fleet/v/1HG", "fleet/v/1HG\xff", "fleet/v/1HG/odd",
		"fleet/p/nav/1.0.0", "fleet/pf/nav/1.0.0/f1",
		"core/upd/" + vinA + "/u1", "core/upd/" + vinA + "/u2", "core/upd/" + vinB + "/u1", "core/upd/" + vinA + "x/u1",
		"core/upd/" + vinA, "core/upd/short", "core/upd/1HG-x/u1", "core/upd/1HG/u1", "core/upd/1HG.x/u\x00", "core/upd/" + vinA + "/u\xff/x",
		"core/rs/" + reqA + "/pending/" + vinA, "core/rs/" + reqA + "/pending/" + vinB, "core/rs/" + reqA + "/installed/" + vinC,
		"core/rs/" + reqB + "/pending/" + vinA, "core/rs/short/pending/" + vinA, "core/rs/short-x/pending/" + vinA, "core/rs/" + reqA + "/pend/" + vinA,
		"core/req/" + reqA, "core/req/" + reqB, "core/req/x",
		"core/xfer/" + vinA + "/u1", "core/act/1", "core/act/10", "core/act/9", "core/actx",
		"core/seq/action", "core/plan/p1", "core", "core0", "\x00", "\xff", "\xff\xff/a", "fleet/v\xff",
	}
}

// value is the value the suite stores under key: families of keys without values get none.
func value(key string) []byte {
	if bytes.HasPrefix([]byte(key), []byte("core/rs/")) {
		return nil
	}
	return []byte("v:" + key + "\x00\xff")
}

func fill(t *testing.T, db *store.DB, keys []string) {
	require.NoError(t, db.Update(func(x store.Txn) error {
		for _, k := range keys {
			if err := x.Set([]byte(k), value(k)); err != nil {
				return err
			}
		}
		return nil
	}))
}

func scanKeys(t *testing.T, db *store.DB, prefix string) (keys, vals []string) {
	require.NoError(t, db.View(func(x store.Txn) error {
		return x.Iterate([]byte(prefix), func(k, v []byte) error {
			if string(k) == "meta/schema" { // Badger's own record
				return nil
			}
			keys = append(keys, string(k))
			vals = append(vals, string(v))
			return nil
		})
	}))
	var only []string
	require.NoError(t, db.View(func(x store.Txn) error {
		return x.IterateKeys([]byte(prefix), func(k []byte) error {
			if string(k) != "meta/schema" {
				only = append(only, string(k))
			}
			return nil
		})
	}))
	require.Equal(t, keys, only, "IterateKeys(%q) yields the keys of Iterate", prefix)
	return keys, vals
}

func expected(keys []string, prefix string) []string {
	var out []string
	for _, k := range keys {
		if bytes.HasPrefix([]byte(k), []byte(prefix)) {
			out = append(out, k)
		}
	}
	sort.Strings(out) // Go compares strings bytewise, as the store orders keys
	return out
}

func TestGetSetDeleteHas(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		keys := conformanceKeys()
		fill(t, db, keys)
		require.NoError(t, db.View(func(x store.Txn) error {
			for _, k := range keys {
				v, err := x.Get([]byte(k))
				require.NoError(t, err, k)
				assert.Equal(t, string(value(k)), string(v), k)
				ok, err := x.Has([]byte(k))
				require.NoError(t, err)
				assert.True(t, ok, k)
			}
			_, err := x.Get([]byte("core/upd/" + vinC + "/none"))
			assert.ErrorIs(t, err, store.ErrNotFound)
			_, err = x.Get([]byte("nothing"))
			assert.ErrorIs(t, err, store.ErrNotFound)
			ok, err := x.Has([]byte("fleet/v/" + vinA + "0"))
			require.NoError(t, err)
			assert.False(t, ok)
			return nil
		}))
		require.NoError(t, db.Update(func(x store.Txn) error {
			for _, k := range keys {
				if err := x.Delete([]byte(k)); err != nil {
					return err
				}
			}
			// what the transaction wrote, it reads back
			require.NoError(t, x.Set([]byte("fleet/v/"+vinA), []byte("again")))
			v, err := x.Get([]byte("fleet/v/" + vinA))
			require.NoError(t, err)
			assert.Equal(t, "again", string(v))
			_, err = x.Get([]byte("core/upd/" + vinA + "/u1"))
			assert.ErrorIs(t, err, store.ErrNotFound, "deleted in this transaction")
			return nil
		}))
		got, _ := scanKeys(t, db, "")
		assert.Equal(t, []string{"fleet/v/" + vinA}, got)
	})
}

func TestIterateIsInByteOrderForEveryPrefix(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		keys := conformanceKeys()
		fill(t, db, keys)
		for _, p := range []string{"", "core/", "core", "c", "core/upd/", "core/upd/" + vinA, "core/upd/" + vinA + "/",
			"core/upd/1HG", "core/upd/" + vinA + "/u", "fleet/", "fleet/v/", "fleet/v/1HG", "fleet/v/1HG/", "fleet/v/" + vinA,
			"core/rs/", "core/rs/" + reqA + "/", "core/rs/" + reqA + "/pend", "core/rs/" + reqA[:10], "core/rs/" + reqA + "/pending/",
			"core/act/", "core/act/1", "core/a", "core/req/", "\xff", "\xff\xff", "auth/", "nothing/",
			"core/upd/1HG-x/", "core/upd/1HG/", "core/rs/short/", "core/rs/short/pending/", "core/rs/" + reqA + "/pending/" + vinA} {
			got, vals := scanKeys(t, db, p)
			want := expected(keys, p)
			require.Equal(t, want, got, "keys with prefix %q", p)
			for i, k := range got {
				assert.Equal(t, string(value(k)), vals[i], "value of %q", k)
			}
		}
		// inside a read-write transaction a scan sees the transaction's own writes and deletes
		require.NoError(t, db.Update(func(x store.Txn) error {
			require.NoError(t, x.Set([]byte("core/upd/"+vinA+"/u0"), []byte("new")))
			require.NoError(t, x.Delete([]byte("core/upd/"+vinA+"/u2")))
			var got []string
			require.NoError(t, x.IterateKeys([]byte("core/upd/"+vinA+"/"), func(k []byte) error { got = append(got, string(k)); return nil }))
			assert.Equal(t, []string{"core/upd/" + vinA + "/u0", "core/upd/" + vinA + "/u1", "core/upd/" + vinA + "/u\xff/x"}, got)
			return nil
		}))
		// an error of the function ends the scan with that error
		stop := errors.New("stop")
		n := 0
		err := db.View(func(x store.Txn) error {
			return x.IterateKeys(nil, func([]byte) error { n++; return stop })
		})
		assert.ErrorIs(t, err, stop)
		assert.Equal(t, 1, n)
	})
}

// A scan's function may read and write in the same transaction (as the domains' cascades do), and a
// scan longer than a page still yields every key once, in order.
func TestIterateWhileReadingAndWriting(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		const n = 3000
		require.NoError(t, db.Update(func(x store.Txn) error {
			for i := 0; i < n; i++ {
				if err := x.Set([]byte(fmt.Sprintf("core/upd/%s/%05d", vinA, i)), []byte{byte(i)}); err != nil {
					return err
				}
			}
			return nil
		}))
		require.NoError(t, db.Update(func(x store.Txn) error {
			i := 0
			return x.Iterate([]byte("core/upd/"+vinA+"/"), func(k, v []byte) error {
				require.Equal(t, fmt.Sprintf("core/upd/%s/%05d", vinA, i), string(k))
				got, err := x.Get(k)
				require.NoError(t, err)
				require.Equal(t, v, got)
				i++
				if err := x.Set([]byte(fmt.Sprintf("auth/copy/%05d", i)), v); err != nil {
					return err
				}
				return x.Delete(k)
			})
		}))
		keys, _ := scanKeys(t, db, "core/upd/")
		assert.Empty(t, keys)
		keys, _ = scanKeys(t, db, "auth/copy/")
		assert.Len(t, keys, n)
	})
}

func TestFailedUpdateLeavesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		require.NoError(t, db.Update(func(x store.Txn) error { return x.Set([]byte("fleet/v/"+vinA), []byte("kept")) }))
		boom := errors.New("boom")
		err := db.Update(func(x store.Txn) error {
			// more writes than a backend buffers, so that some reached the database before the error
			for i := 0; i < 5000; i++ {
				if err := x.Set([]byte(fmt.Sprintf("core/upd/%s/%05d", vinB, i)), []byte("x")); err != nil {
					return err
				}
			}
			require.NoError(t, x.Set([]byte("fleet/v/"+vinA), []byte("changed")))
			require.NoError(t, x.Set([]byte("auth/x"), []byte("x")))
			return boom
		})
		assert.ErrorIs(t, err, boom)
		keys, vals := scanKeys(t, db, "")
		assert.Equal(t, []string{"fleet/v/" + vinA}, keys, "the failed transaction left nothing behind")
		assert.Equal(t, []string{"kept"}, vals)
	})
}

// Concurrent read-modify-writes of one key: Update runs a transaction that lost again, so N
// increments by N goroutines end at N.
func TestConcurrentIncrementsAllCount(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		const workers, each = 8, 10
		key := []byte("core/req/" + reqA)
		var runs atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					errs <- db.Update(func(x store.Txn) error {
						runs.Add(1)
						v, err := x.Get(key)
						if err != nil && !errors.Is(err, store.ErrNotFound) {
							return err
						}
						n := 0
						if len(v) > 0 {
							fmt.Sscan(string(v), &n)
						}
						return x.Set(key, []byte(fmt.Sprint(n+1)))
					})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		var v []byte
		require.NoError(t, db.View(func(x store.Txn) error { var err error; v, err = x.Get(key); return err }))
		assert.Equal(t, fmt.Sprint(workers*each), string(v))
		t.Logf("%d increments took %d runs", workers*each, runs.Load())
	})
}

// A transaction that conflicts every time it runs ends in ErrConflict after MaxAttempts runs, and
// writes nothing.
func TestPersistentConflictIsErrConflict(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		key := []byte("fleet/v/" + vinA)
		require.NoError(t, db.Update(func(x store.Txn) error { return x.Set(key, []byte("0")) }))
		runs := 0
		err := db.Update(func(x store.Txn) error {
			runs++
			if _, err := x.Get(key); err != nil {
				return err
			}
			// another transaction changes the key this one read, and commits first
			done := make(chan error)
			go func() { done <- db.Update(func(y store.Txn) error { return y.Set(key, []byte(fmt.Sprint(runs))) }) }()
			if err := <-done; err != nil {
				return err
			}
			if err := x.Set(key, []byte("mine")); err != nil {
				return err
			}
			return x.Set([]byte("auth/mine"), []byte("x"))
		})
		assert.ErrorIs(t, err, store.ErrConflict)
		assert.Equal(t, store.MaxAttempts, runs)
		require.NoError(t, db.View(func(x store.Txn) error {
			v, err := x.Get(key)
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprint(store.MaxAttempts), string(v), "the other transactions' writes stand")
			ok, err := x.Has([]byte("auth/mine"))
			require.NoError(t, err)
			assert.False(t, ok)
			return nil
		}))
	})
}

// View reads one snapshot: a write committed meanwhile is not seen, by Get or by a scan.
func TestViewIsASnapshot(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		fill(t, db, []string{"fleet/v/" + vinA, "auth/a"})
		require.NoError(t, db.View(func(x store.Txn) error {
			v, err := x.Get([]byte("fleet/v/" + vinA))
			require.NoError(t, err)
			require.NoError(t, db.Update(func(y store.Txn) error {
				if err := y.Set([]byte("fleet/v/"+vinA), []byte("changed")); err != nil {
					return err
				}
				if err := y.Set([]byte("fleet/v/"+vinB), []byte("new")); err != nil {
					return err
				}
				return y.Delete([]byte("auth/a"))
			}))
			again, err := x.Get([]byte("fleet/v/" + vinA))
			require.NoError(t, err)
			assert.Equal(t, v, again)
			var keys []string
			require.NoError(t, x.IterateKeys(nil, func(k []byte) error { keys = append(keys, string(k)); return nil }))
			assert.Contains(t, keys, "auth/a")
			assert.NotContains(t, keys, "fleet/v/"+vinB)
			assert.Error(t, x.Set([]byte("auth/b"), nil), "a read-only transaction refuses writes")
			return nil
		}))
		keys, _ := scanKeys(t, db, "")
		assert.NotContains(t, keys, "auth/a")
		assert.Contains(t, keys, "fleet/v/"+vinB)
	})
}

func TestBatchOf100kKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		const n = 100_000
		b := db.NewBatch()
		for i := 0; i < n; i++ {
			// a vehicle's update and the request's status index, as a queued request writes them
			vin := fmt.Sprintf("1HGCM82633A%06d", i)
			require.NoError(t, b.Set([]byte("core/upd/"+vin+"/"+reqA), []byte{byte(i)}))
			if i%2 == 0 {
				require.NoError(t, b.Set([]byte("core/rs/"+reqA+"/pending/"+vin), nil))
			}
		}
		require.NoError(t, b.Set([]byte("core/upd/1HGCM82633A000007/"+reqA), []byte("last write wins")))
		require.NoError(t, b.Delete([]byte("core/upd/1HGCM82633A000008/"+reqA)))
		require.NoError(t, b.Flush())
		count, prev := 0, []byte(nil)
		require.NoError(t, db.View(func(x store.Txn) error {
			return x.Iterate([]byte("core/upd/"), func(k, v []byte) error {
				require.True(t, bytes.Compare(prev, k) < 0, "%q after %q", k, prev)
				prev = append(prev[:0], k...)
				count++
				return nil
			})
		}))
		assert.Equal(t, n-1, count)
		st := 0
		require.NoError(t, db.View(func(x store.Txn) error {
			return x.IterateKeys([]byte("core/rs/"+reqA+"/pending/"), func([]byte) error { st++; return nil })
		}))
		assert.Equal(t, n/2, st)
		require.NoError(t, db.View(func(x store.Txn) error {
			v, err := x.Get([]byte("core/upd/1HGCM82633A000007/" + reqA))
			require.NoError(t, err)
			assert.Equal(t, "last write wins", string(v))
			_, err = x.Get([]byte("core/upd/1HGCM82633A000008/" + reqA))
			assert.ErrorIs(t, err, store.ErrNotFound)
			return nil
		}))
		// deletes in a batch
		b = db.NewBatch()
		for i := 0; i < n; i += 2 {
			require.NoError(t, b.Delete([]byte(fmt.Sprintf("core/rs/%s/pending/1HGCM82633A%06d", reqA, i))))
		}
		require.NoError(t, b.Flush())
		st = 0
		require.NoError(t, db.View(func(x store.Txn) error {
			return x.IterateKeys([]byte("core/rs/"), func([]byte) error { st++; return nil })
		}))
		assert.Zero(t, st)
	})
}

// TestBatchNewAndExistingKeys: a batch of new keys of every family, then one that overwrites existing
// keys, deletes some and adds new ones among them: the store holds exactly the last write of every
// key.
func TestBatchNewAndExistingKeys(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		want := map[string]string{}
		var keys []string
		for i := range 300 {
			for _, k := range conformanceKeys() {
				keys = append(keys, fmt.Sprintf("%s%03d", k, i))
			}
		}
		b := db.NewBatch()
		for _, k := range keys {
			require.NoError(t, b.Set([]byte(k), value(k)))
			want[k] = string(value(k))
		}
		require.NoError(t, b.Flush())
		check := func() {
			t.Helper()
			got, vals := scanKeys(t, db, "")
			m := map[string]string{}
			for i, k := range got {
				m[k] = vals[i]
			}
			require.Equal(t, len(want), len(m))
			assert.Equal(t, want, m)
		}
		check()

		b = db.NewBatch()
		for i, k := range keys {
			switch {
			case i%7 == 0:
				require.NoError(t, b.Delete([]byte(k)))
				delete(want, k)
			case value(k) != nil:
				require.NoError(t, b.Set([]byte(k), []byte("again:"+k)))
				want[k] = "again:" + k
			}
			if i%5 == 0 { // new keys among the existing ones
				n := k + "/new"
				require.NoError(t, b.Set([]byte(n), value(n)))
				want[n] = string(value(n))
			}
		}
		require.NoError(t, b.Flush())
		check()
	})
}

func TestSequenceIsMonotonicUnderConcurrency(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		const workers, each = 6, 15
		var mu sync.Mutex
		seen := map[uint64]bool{}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				last := uint64(0)
				for i := 0; i < each; i++ {
					n, err := db.Sequence("core/seq/test")
					assert.NoError(t, err)
					assert.Greater(t, n, last, "a caller's numbers increase")
					last = n
					mu.Lock()
					assert.False(t, seen[n], "%d handed out twice", n)
					seen[n] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		assert.Len(t, seen, workers*each)
		n, err := db.Sequence("core/seq/test")
		require.NoError(t, err)
		assert.Equal(t, uint64(workers*each+1), n)
	})
}

// A hook runs once, in the first transaction through its handle that commits, after the caller's
// function succeeded; a failed transaction writes nothing of it and leaves it for the next.
func TestHookRunsOnceInTheCommittingTransaction(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		runs := 0
		h := store.NewHook(func(tx store.Txn) error {
			runs++
			return tx.Set([]byte(fmt.Sprintf("auth/audit/%d", runs)), []byte("x"))
		})
		d := db.With(h)
		require.Error(t, d.Update(func(tx store.Txn) error { return errors.New("refused") }))
		assert.Zero(t, runs, "a failed change ran the hook")
		assert.False(t, h.Committed())
		require.NoError(t, db.Update(func(tx store.Txn) error { return tx.Set([]byte("other"), []byte("1")) }))
		assert.Zero(t, runs, "the hook ran through another handle")
		for i := 0; i < 2; i++ {
			require.NoError(t, d.Update(func(tx store.Txn) error { return tx.Set([]byte("fleet/v/"+vinA), []byte{byte(i)}) }))
		}
		assert.Equal(t, 1, runs)
		assert.True(t, h.Committed())
		keys, _ := scanKeys(t, db, "auth/audit/")
		assert.Equal(t, []string{"auth/audit/1"}, keys)
	})
}

// A transaction may write MaxBatchCount keys; one that writes far more is ErrTooBig and writes
// nothing.
func TestTooBigTransaction(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		limit := int(db.MaxBatchCount())
		require.Greater(t, limit, 10_000)
		write := func(n int) error {
			return db.Update(func(x store.Txn) error {
				for i := 0; i < n; i++ {
					if err := x.Set([]byte(fmt.Sprintf("core/upd/%s/%07d", vinA, i)), []byte("v")); err != nil {
						return err
					}
				}
				return nil
			})
		}
		err := write(2 * limit)
		require.ErrorIs(t, err, store.ErrTooBig)
		keys, _ := scanKeys(t, db, "core/upd/")
		assert.Empty(t, keys)
		require.NoError(t, write(limit/2))
		keys, _ = scanKeys(t, db, "core/upd/")
		assert.Len(t, keys, limit/2)
	})
}

// What was committed survives closing and opening the store again.
func TestCommittedWritesSurviveReopen(t *testing.T) {
	for _, kind := range []string{"badger", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			t.Setenv("SOTA_TEST_STORE", kind)
			dir := t.TempDir()
			db, err := storetest.OpenDir(t, dir)
			require.NoError(t, err)
			fill(t, db, conformanceKeys())
			a, err := db.Sequence("core/seq/x")
			require.NoError(t, err)
			require.NoError(t, db.Close())
			db, err = storetest.OpenDir(t, dir)
			require.NoError(t, err)
			defer db.Close()
			keys, _ := scanKeys(t, db, "")
			assert.Equal(t, expected(append(conformanceKeys(), "core/seq/x"), ""), keys)
			b, err := db.Sequence("core/seq/x")
			require.NoError(t, err)
			assert.Equal(t, a+1, b)
		})
	}
}

// Badger's directory holds the store's files; the size figures see them.
func TestSizeCountsTheStore(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *store.DB) {
		fill(t, db, conformanceKeys())
		if db.Backend() == "badger" {
			assert.Greater(t, db.DiskSize(), int64(0))
			return
		}
		lsm, _ := db.Size()
		assert.Greater(t, lsm, int64(0))
		assert.Equal(t, lsm, db.DiskSize())
	})
}

// The migrations of a fresh schema: dry run lists them all and changes nothing; stores opened at once
// by several processes apply each once; then nothing is pending.
func TestPostgresMigrations(t *testing.T) {
	t.Setenv("SOTA_TEST_STORE", "postgres")
	url := storetest.Spec(t, t.TempDir())
	ctx := context.Background()
	pending, err := store.PendingMigrations(ctx, url)
	require.NoError(t, err)
	require.Equal(t, store.Migrations(), pending)
	assert.Equal(t, "001_initial.sql", pending[0].Name)
	again, err := store.PendingMigrations(ctx, url)
	require.NoError(t, err)
	assert.Equal(t, pending, again, "a dry run applies nothing")

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.OpenURL(ctx, url, store.Options{})
			if err == nil {
				err = db.Update(func(x store.Txn) error { return x.Set([]byte(fmt.Sprintf("fleet/v/%d", i)), nil) })
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	pending, err = store.PendingMigrations(ctx, url)
	require.NoError(t, err)
	assert.Empty(t, pending)
	applied, err := store.Migrate(ctx, url)
	require.NoError(t, err)
	assert.Empty(t, applied)

	// the store's tables are in the URL's schema (search_path), nowhere else
	db, err := store.OpenURL(ctx, url, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	keys, _ := scanKeys(t, db, "fleet/v/")
	assert.Equal(t, []string{"fleet/v/0", "fleet/v/1", "fleet/v/2", "fleet/v/3"}, keys)
}

func TestOpenStoreSpecs(t *testing.T) {
	dir := t.TempDir()
	db, err := store.OpenStore("badger:"+filepath.Join(dir, "b"), "", store.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = os.Stat(filepath.Join(dir, "b", "MANIFEST"))
	assert.NoError(t, err, "badger:<dir> puts the store in dir")
	db, err = store.OpenStore("badger", filepath.Join(dir, "d"), store.Options{})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = os.Stat(filepath.Join(dir, "d", "MANIFEST"))
	assert.NoError(t, err, "badger puts the store in the data directory")
	_, err = store.OpenStore("mysql://x", dir, store.Options{})
	assert.ErrorContains(t, err, "want badger")
	assert.Error(t, store.CheckSpec("nonsense"))
	assert.NoError(t, store.CheckSpec("postgres://u:p@127.0.0.1:1/db?sslmode=disable&search_path=s"))
	_, err = store.OpenStore("postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=1", dir, store.Options{})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret", "errors do not show the password")
}
