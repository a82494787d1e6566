package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	. "sota/store"
)

// eachBlobStore runs f on a fresh blob store of each kind: local files, and db chunks on each backend.
func eachBlobStore(t *testing.T, f func(t *testing.T, b BlobStore, db *DB)) {
	t.Run("local", func(t *testing.T) {
		local, err := NewLocalBlobs(filepath.Join(t.TempDir(), "blobs"))
		require.NoError(t, err)
		f(t, local, nil)
	})
	for _, kind := range []string{"badger", "postgres"} {
		t.Run("db/"+kind, func(t *testing.T) {
			db := storetest.OpenKind(t, kind)
			f(t, NewDBBlobs(db), db)
		})
	}
}

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// failingReader returns its bytes, then an error: an upload cut short.
type failingReader struct{ r io.Reader }

var errCut = errors.New("connection reset")

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errCut
	}
	return n, err
}

func listBlobs(t *testing.T, b BlobStore) []string {
	var sums []string
	require.NoError(t, b.List(func(i BlobInfo) error { sums = append(sums, i.SHA256); return nil }))
	return sums
}

// TestBlobStoresKeepContentByDigest: both kinds store what they are given under its sha256, serve any
// byte range of it (across chunk boundaries for db), keep one copy of the same content, and keep
// nothing of a mismatching or interrupted upload.
func TestBlobStoresKeepContentByDigest(t *testing.T) {
	eachBlobStore(t, func(t *testing.T, b BlobStore, db *DB) {
		if db == nil {
			assert.Equal(t, "local", b.Kind())
		} else {
			assert.Equal(t, "db", b.Kind())
		}
		big := randomBytes(1, 3*BlobChunkSize+12345) // a partial last chunk
		info, err := b.Put(bytes.NewReader(big), "")
		require.NoError(t, err)
		assert.Equal(t, hexSum(big), info.SHA256)
		assert.Equal(t, int64(len(big)), info.Size)

		r, got, err := b.Open(info.SHA256)
		require.NoError(t, err)
		assert.Equal(t, int64(len(big)), got.Size)
		all, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(big, all), "sequential read gives the content")
		for _, c := range []struct{ off, n int }{{0, 10}, {BlobChunkSize - 5, 10}, {BlobChunkSize, BlobChunkSize}, {100, 2*BlobChunkSize + 7}, {len(big) - 3, 3}} {
			p := make([]byte, c.n)
			n, err := r.ReadAt(p, int64(c.off))
			require.NoError(t, err, "offset %d", c.off)
			assert.Equal(t, c.n, n)
			assert.True(t, bytes.Equal(big[c.off:c.off+c.n], p), "bytes at %d+%d", c.off, c.n)
		}
		p := make([]byte, 10)
		n, err := r.ReadAt(p, int64(len(big)-4))
		assert.Equal(t, 4, n)
		assert.ErrorIs(t, err, io.EOF, "a read past the end is short with EOF")
		pos, err := r.Seek(int64(2*BlobChunkSize+1), io.SeekStart)
		require.NoError(t, err)
		rest, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(big[pos:], rest))
		require.NoError(t, r.Close())

		again, err := b.Put(bytes.NewReader(big), strings.ToUpper(info.SHA256))
		require.NoError(t, err, "the expected digest compares case-insensitively")
		assert.Equal(t, info.SHA256, again.SHA256)
		empty, err := b.Put(bytes.NewReader(nil), "")
		require.NoError(t, err)
		er, einfo, err := b.Open(empty.SHA256)
		require.NoError(t, err)
		assert.Zero(t, einfo.Size)
		e, _ := io.ReadAll(er)
		assert.Empty(t, e)
		er.Close()

		_, err = b.Put(bytes.NewReader([]byte("other")), info.SHA256)
		var mm *BlobMismatchError
		require.ErrorAs(t, err, &mm)
		assert.Equal(t, hexSum([]byte("other")), mm.Got)
		_, err = b.Put(failingReader{bytes.NewReader(randomBytes(2, BlobChunkSize*9))}, "")
		assert.ErrorIs(t, err, errCut)
		assert.ElementsMatch(t, []string{info.SHA256, empty.SHA256}, listBlobs(t, b), "one copy each; nothing of the failed uploads")
		_, err = b.Stat(hexSum([]byte("other")))
		assert.ErrorIs(t, err, ErrNotFound)
		_, _, err = b.Open(hexSum([]byte("other")))
		assert.ErrorIs(t, err, ErrNotFound)
		assertNoUploadLeft(t, b, db)
	})
}

// assertNoUploadLeft checks that no temporary data of an upload remains.
func assertNoUploadLeft(t *testing.T, b BlobStore, db *DB) {
	t.Helper()
	switch s := b.(type) {
	case *LocalBlobs:
		left, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
		require.NoError(t, err)
		assert.Empty(t, left)
	case *DBBlobs:
		var keys []string
		require.NoError(t, db.View(func(t Txn) error {
			return t.IterateKeys([]byte(BlobPrefix), func(k []byte) error {
				if !bytes.HasPrefix(k, []byte("blob/m/")) {
					keys = append(keys, string(k))
				}
				return nil
			})
		}))
		var want int
		require.NoError(t, s.List(func(i BlobInfo) error { want += int((i.Size + BlobChunkSize - 1) / BlobChunkSize); return nil }))
		assert.Len(t, keys, want, "only the chunks of stored blobs: %v", keys)
	}
}

// TestBlobDeleteSparesRecentlyStored: Delete with a time removes only blobs stored before it, and
// putting the same content again counts as storing it now; a deleted blob is gone with its chunks.
func TestBlobDeleteSparesRecentlyStored(t *testing.T) {
	eachBlobStore(t, func(t *testing.T, b BlobStore, db *DB) {
		content := randomBytes(3, BlobChunkSize+1)
		info, err := b.Put(bytes.NewReader(content), "")
		require.NoError(t, err)
		removed, err := b.Delete(info.SHA256, info.Stored.Add(-time.Second))
		require.NoError(t, err)
		assert.False(t, removed, "stored after the limit")
		time.Sleep(10 * time.Millisecond)
		limit := time.Now()
		time.Sleep(10 * time.Millisecond)
		_, err = b.Put(bytes.NewReader(content), "")
		require.NoError(t, err)
		removed, err = b.Delete(info.SHA256, limit)
		require.NoError(t, err)
		assert.False(t, removed, "stored again after the limit")
		removed, err = b.Delete(info.SHA256, time.Time{})
		require.NoError(t, err)
		assert.True(t, removed)
		_, err = b.Stat(info.SHA256)
		assert.ErrorIs(t, err, ErrNotFound)
		removed, err = b.Delete(info.SHA256, time.Time{})
		require.NoError(t, err)
		assert.False(t, removed, "nothing left to remove")
		assert.Empty(t, listBlobs(t, b))
		assertNoUploadLeft(t, b, db)
	})
}

// TestBlobCleanRemovesInterruptedUploads: what a server killed mid-upload left is removed by Clean;
// an upload that is still being written (by this process, or recently by another server on the same
// database) is spared.
func TestBlobCleanRemovesInterruptedUploads(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		b, err := NewLocalBlobs(t.TempDir())
		require.NoError(t, err)
		kept, err := b.Put(strings.NewReader("kept"), "")
		require.NoError(t, err)
		left := filepath.Join(b.Dir(), "tmp", "upload-123")
		require.NoError(t, os.WriteFile(left, []byte("half an upload"), 0o600))
		busy := filepath.Join(b.Dir(), "tmp", "upload-busy")
		require.NoError(t, os.WriteFile(busy, []byte("being written"), 0o600))
		MarkUploading(b, busy)
		n, err := b.Clean()
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.NoFileExists(t, left)
		assert.FileExists(t, busy)
		assert.FileExists(t, b.Path(kept.SHA256))
	})
	eachBackend(t, func(t *testing.T, db *DB) {
		b := NewDBBlobs(db)
		kept, err := b.Put(bytes.NewReader(randomBytes(4, 2*BlobChunkSize)), "")
		require.NoError(t, err)
		write := func(id string, at time.Time) {
			require.NoError(t, db.Update(func(t Txn) error {
				for n := int64(0); n < 3; n++ {
					if err := t.Set(fmt.Appendf(nil, "blob/d/%s/%08x", id, n), []byte("chunk")); err != nil {
						return err
					}
				}
				ns := int64(0)
				if !at.IsZero() {
					ns = at.UnixNano()
				}
				return t.Set([]byte("blob/u/"+id), binary.BigEndian.AppendUint64(nil, uint64(ns)))
			}))
		}
		write("dead", time.Now().Add(-BlobUploadIdle-time.Minute))
		write("abandoned", time.Time{})
		write("live", time.Now())
		n, err := b.Clean()
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		var keys []string
		require.NoError(t, db.View(func(t Txn) error {
			return t.IterateKeys([]byte(BlobPrefix), func(k []byte) error {
				id := strings.SplitN(string(k), "/", 4)[2] // blob/<m|d|u>/<digest or data id>
				if id == "live" || id == "dead" || id == "abandoned" || bytes.HasPrefix(k, []byte("blob/u/")) {
					keys = append(keys, string(k))
				}
				return nil
			})
		}))
		assert.Equal(t, []string{"blob/d/live/00000000", "blob/d/live/00000001", "blob/d/live/00000002", "blob/u/live"}, keys)
		r, _, err := b.Open(kept.SHA256)
		require.NoError(t, err)
		all, _ := io.ReadAll(r)
		assert.Equal(t, randomBytes(4, 2*BlobChunkSize), all, "the stored blob is whole")
	})
}

// TestDBBlobsReadAcrossWindows: a blob of several read windows (8 chunks each, fetched together and
// read ahead in the background) reads back the same bytes sequentially in small pieces, from readers
// at random offsets at once, and through a second blob store on the same database whose cache is cold
// (another replica), backwards window by window.
func TestDBBlobsReadAcrossWindows(t *testing.T) {
	for _, kind := range []string{"badger", "postgres"} {
		t.Run(kind, func(t *testing.T) { readAcrossWindows(t, kind) })
	}
}

func readAcrossWindows(t *testing.T, kind string) {
	db := storetest.OpenKind(t, kind)
	b := NewDBBlobs(db)
	big := randomBytes(3, 19*BlobChunkSize+777) // windows of 8, 8 and 3 chunks plus a partial one
	info, err := b.Put(bytes.NewReader(big), "")
	require.NoError(t, err)

	r, _, err := b.Open(info.SHA256)
	require.NoError(t, err)
	var got bytes.Buffer
	_, err = io.CopyBuffer(&got, struct{ io.Reader }{r}, make([]byte, 32<<10))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(big, got.Bytes()), "sequential read in 32 KiB pieces")

	errc := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			rnd := rand.New(rand.NewSource(int64(g)))
			r, _, err := b.Open(info.SHA256)
			if err != nil {
				errc <- err
				return
			}
			for i := 0; i < 40; i++ {
				off := rnd.Intn(len(big))
				p := make([]byte, min(rnd.Intn(3*BlobChunkSize)+1, len(big)-off))
				n, err := r.ReadAt(p, int64(off))
				if err != nil && !(errors.Is(err, io.EOF) && n == len(p)) {
					errc <- fmt.Errorf("reader %d at %d+%d: %v", g, off, len(p), err)
					return
				}
				if !bytes.Equal(big[off:off+len(p)], p[:n]) || n != len(p) {
					errc <- fmt.Errorf("reader %d at %d+%d: wrong bytes (%d read)", g, off, len(p), n)
					return
				}
			}
			errc <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		assert.NoError(t, <-errc)
	}

	cold := NewDBBlobs(db)
	cr, _, err := cold.Open(info.SHA256)
	require.NoError(t, err)
	const w = 8 * BlobChunkSize
	for off := (len(big) / w) * w; off >= 0; off -= w {
		p := make([]byte, min(w, len(big)-off))
		n, err := cr.ReadAt(p, int64(off))
		if !errors.Is(err, io.EOF) {
			require.NoError(t, err)
		}
		require.Equal(t, len(p), n)
		assert.True(t, bytes.Equal(big[off:off+n], p), "window at %d", off)
	}
}
