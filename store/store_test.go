package store

import (
	"errors"
	"testing"

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
