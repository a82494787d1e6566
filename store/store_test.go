package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// MustOpen opens a store in a temporary directory that is removed after the test.
func MustOpen(tb testing.TB) *DB {
	tb.Helper()
	d, err := Open(tb.TempDir(), Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { d.Close() })
	return d
}

func TestUpdateIsAtomicAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, Options{})
	require.NoError(t, err)
	require.NoError(t, d.Update(func(x Txn) error { return x.Set([]byte("a/1"), []byte("one")) }))
	boom := errors.New("boom")
	err = d.Update(func(x Txn) error {
		require.NoError(t, x.Set([]byte("a/2"), []byte("two")))
		return boom
	})
	assert.ErrorIs(t, err, boom)
	require.NoError(t, d.Close())

	d, err = Open(dir, Options{})
	require.NoError(t, err)
	defer d.Close()
	var keys []string
	require.NoError(t, d.View(func(x Txn) error {
		return x.Iterate([]byte("a/"), func(k, v []byte) error { keys = append(keys, string(k)+"="+string(v)); return nil })
	}))
	assert.Equal(t, []string{"a/1=one"}, keys, "the failed transaction left nothing behind")
	_, err = func() ([]byte, error) {
		var v []byte
		err := d.View(func(x Txn) error { var e error; v, e = x.Get([]byte("a/2")); return e })
		return v, err
	}()
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestSequenceIsMonotonicAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, Options{})
	require.NoError(t, err)
	a, _ := d.Sequence("seq/x")
	b, _ := d.Sequence("seq/x")
	require.NoError(t, d.Close())
	d, err = Open(dir, Options{})
	require.NoError(t, err)
	defer d.Close()
	c, _ := d.Sequence("seq/x")
	assert.Equal(t, []uint64{1, 2, 3}, []uint64{a, b, c})
}

// TestValueLogGarbageIsCollected overwrites large values again and again (they live in the value
// log, not the LSM tree) and checks that the periodic collection keeps the data directory near the
// live data instead of everything ever written.
func TestValueLogGarbageIsCollected(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir, Options{GCInterval: 20 * time.Millisecond, tune: func(o badger.Options) badger.Options {
		return o.WithValueLogFileSize(4 << 20).WithMemTableSize(1 << 20).WithNumLevelZeroTables(2).WithValueThreshold(1 << 16)
	}})
	require.NoError(t, err)
	defer d.Close()
	value := make([]byte, 2<<20) // above Badger's value threshold: stored in the value log
	const keys, rounds = 2, 40
	small := make([]byte, 100)
	for r := 0; r < rounds; r++ {
		for k := 0; k < keys; k++ {
			value[0] = byte(r)
			require.NoError(t, d.Update(func(x Txn) error { return x.Set([]byte(fmt.Sprintf("big/%d", k)), value) }))
		}
		// small records rewritten alongside, as a server's updates and sessions are: they fill
		// memtables, whose flushes and compactions tell the collector what the big ones left behind
		for b := 0; b < 2000; b += 200 {
			require.NoError(t, d.Update(func(x Txn) error {
				for i := b; i < b+200; i++ {
					if err := x.Set([]byte(fmt.Sprintf("small/%d", i)), small); err != nil {
						return err
					}
				}
				return nil
			}))
		}
	}
	written := int64(keys * rounds * len(value))
	var vlog int64
	require.Eventually(t, func() bool {
		vlog = valueLogBytes(t, dir)
		return vlog < written/4
	}, 20*time.Second, 50*time.Millisecond, "value log should shrink well below the %d bytes written", written)
	t.Logf("wrote %d MiB, value log now %d MiB", written>>20, vlog>>20)
	require.NoError(t, d.View(func(x Txn) error {
		v, err := x.Get([]byte("big/1"))
		require.NoError(t, err)
		assert.Equal(t, byte(rounds-1), v[0], "the live value survives collection")
		return nil
	}))
}

// valueLogBytes sums the value-log files on disk.
func valueLogBytes(t *testing.T, dir string) int64 {
	files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	require.NoError(t, err)
	var n int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			n += st.Size()
		}
	}
	return n
}

// A second Open of a store in use (a running sotad) says so, instead of Badger's lock error only.
func TestOpenOfAStoreInUseIsErrLocked(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	require.NoError(t, err)
	_, err = Open(dir, Options{})
	assert.ErrorIs(t, err, ErrLocked)
	require.NoError(t, db.Close())
	again, err := Open(dir, Options{})
	require.NoError(t, err, "the lock goes with the first handle")
	require.NoError(t, again.Close())
}

// A hook runs once, in the first transaction through its handle that commits, after the caller's
// function succeeded; a failed transaction writes nothing of it and leaves it for the next.
func TestHookRunsOnceInTheCommittingTransaction(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runs := 0
	h := NewHook(func(tx Txn) error { runs++; return tx.Set([]byte("audit/"+string(rune('0'+runs))), []byte("x")) })
	d := db.With(h)
	if err := d.Update(func(tx Txn) error { return errors.New("refused") }); err == nil {
		t.Fatal("want the caller's error")
	}
	if runs != 0 || h.Committed() {
		t.Fatalf("a failed change ran the hook: runs=%d", runs)
	}
	if err := db.Update(func(tx Txn) error { return tx.Set([]byte("other"), []byte("1")) }); err != nil {
		t.Fatal(err)
	}
	if runs != 0 {
		t.Fatal("the hook ran through another handle")
	}
	for i := 0; i < 2; i++ {
		if err := d.Update(func(tx Txn) error { return tx.Set([]byte("change"), []byte{byte(i)}) }); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 1 || !h.Committed() {
		t.Fatalf("runs=%d committed=%v", runs, h.Committed())
	}
	n := 0
	_ = db.View(func(tx Txn) error {
		return tx.IterateKeys([]byte("audit/"), func([]byte) error { n++; return nil })
	})
	if n != 1 {
		t.Fatalf("%d hook records stored", n)
	}
}
