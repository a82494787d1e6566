package store_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	. "sota/store"
)

// TestCopyKeysCopiesEveryKeyAndCountsFamilies: every key and value arrives in the target, in write
// batches larger than one transaction, counted under the longest family that prefixes it; the
// store's own meta/ keys and the skipped families are left out, and Empty tells a fresh store from a
// used one. Between every pair of backends.
func TestCopyKeysCopiesEveryKeyAndCountsFamilies(t *testing.T) {
	for _, c := range [][2]string{{"badger", "badger"}, {"badger", "postgres"}, {"postgres", "badger"}} {
		t.Run(c[0]+" to "+c[1], func(t *testing.T) { testCopyKeys(t, storetest.OpenKind(t, c[0]), storetest.OpenKind(t, c[1])) })
	}
}

func testCopyKeys(t *testing.T, src, dst *DB) {
	for _, d := range []*DB{src, dst} {
		empty, err := d.Empty()
		require.NoError(t, err)
		assert.True(t, empty, "a fresh store holds only its meta/ keys")
	}
	const n = 30000
	b := src.NewBatch()
	for i := 0; i < n; i++ {
		require.NoError(t, b.Set(fmt.Appendf(nil, "fleet/v/%08d", i), bytes.Repeat([]byte{byte(i)}, 100)))
	}
	require.NoError(t, b.Set([]byte("fleet/vx"), []byte("not a vehicle")))
	require.NoError(t, b.Set([]byte("fleet/p/nav/1.0.0"), []byte("package")))
	require.NoError(t, b.Set([]byte("blob/m/abc"), []byte("skipped")))
	require.NoError(t, b.Flush())
	empty, err := src.Empty()
	require.NoError(t, err)
	assert.False(t, empty)

	var calls int
	c, err := CopyKeys(dst, src, []string{BlobPrefix}, []string{"fleet/", "fleet/v/", "fleet/p/"}, func(CopyCounts) { calls++ })
	require.NoError(t, err)
	assert.Equal(t, int64(n+2), c.Keys)
	assert.Equal(t, int64(n*100+len("not a vehicle")+len("package")), c.Bytes)
	assert.Equal(t, map[string]int64{"fleet/v/": n, "fleet/p/": 1, "fleet/": 1}, c.Family)
	assert.Equal(t, 1, calls, "progress after 100000 keys, and at the end")

	var keys int
	require.NoError(t, dst.View(func(t Txn) error {
		return t.Iterate(nil, func(k, v []byte) error {
			if bytes.HasPrefix(k, []byte("meta/")) { // the target's own
				return nil
			}
			keys++
			var i int
			if _, err := fmt.Sscanf(string(k), "fleet/v/%08d", &i); err == nil && !bytes.Equal(v, bytes.Repeat([]byte{byte(i)}, 100)) {
				return fmt.Errorf("%s has another value", k)
			}
			return nil
		})
	}))
	assert.Equal(t, n+2, keys)
	var ok bool
	require.NoError(t, dst.View(func(t Txn) (err error) { ok, err = t.Has([]byte("blob/m/abc")); return err }))
	assert.False(t, ok, "skipped family")
}

// TestCopyBlobsBetweenKinds: blobs move from files to database chunks and back, byte for byte, and a
// blob the target has already is not copied again.
func TestCopyBlobsBetweenKinds(t *testing.T) {
	local, err := NewLocalBlobs(filepath.Join(t.TempDir(), "blobs"))
	require.NoError(t, err)
	db := NewDBBlobs(storetest.OpenKind(t, storetest.Kind()))
	back, err := NewLocalBlobs(filepath.Join(t.TempDir(), "blobs"))
	require.NoError(t, err)
	a, b := randomBytes(7, BlobChunkSize*2+5), []byte("small")
	for _, content := range [][]byte{a, b} {
		_, err := local.Put(bytes.NewReader(content), "")
		require.NoError(t, err)
	}
	n, size, err := CopyBlobs(db, local, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	assert.Equal(t, int64(len(a)+len(b)), size)
	n, _, err = CopyBlobs(db, local, nil)
	require.NoError(t, err)
	assert.Zero(t, n, "already there")
	_, _, err = CopyBlobs(back, db, nil)
	require.NoError(t, err)
	for _, content := range [][]byte{a, b} {
		r, info, err := back.Open(hexSum(content))
		require.NoError(t, err)
		got := make([]byte, info.Size)
		_, err = r.ReadAt(got, 0)
		r.Close()
		require.NoError(t, err)
		assert.Equal(t, content, got)
	}
}
