package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Badger only (these tests look at its files and its directory lock; conformance_test.go runs the
// store API on both backends).

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
