package engine

import (
	"bytes"
	"io"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/errs"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

// TestBinariesOnEitherBlobStore: uploads, downloads, a chunked transfer, a Range payload read and the
// collection of replaced binaries work the same with package binaries in files (local) and in the
// store (db); a mismatching or oversized upload keeps nothing in either.
func TestBinariesOnEitherBlobStore(t *testing.T) {
	for _, kind := range []string{"local", "db"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			db := storetest.Open(t)
			o := Options{DataDir: dir, MaxUpload: 4 << 20}
			if kind == "db" {
				o.Blobs = store.NewDBBlobs(db)
			}
			res, err := resolver.New(db)
			require.NoError(t, err)
			s, err := New(db, res, o)
			require.NoError(t, err)
			assert.Equal(t, kind, s.blob.Kind())

			content := make([]byte, store.BlobChunkSize*2+777)
			rand.New(rand.NewSource(5)).Read(content)
			p := pkg("maps", "1.0.0")
			b, err := s.UploadBinary(p, bytes.NewReader(content), Upload{})
			require.NoError(t, err)
			assert.Equal(t, int64(len(content)), b.Size)
			f, got, err := s.OpenBinary(p)
			require.NoError(t, err)
			all, err := io.ReadAll(f)
			f.Close()
			require.NoError(t, err)
			assert.True(t, bytes.Equal(content, all), "download gives the uploaded bytes")
			assert.Equal(t, b.SHA256, got.SHA256)

			_, err = s.UploadBinary(pkg("maps", "2.0.0"), strings.NewReader("x"), Upload{Checksum: b.SHA256})
			assert.True(t, errs.Is(err, "checksum_mismatch"), "%v", err)
			_, err = s.UploadBinary(pkg("maps", "3.0.0"), bytes.NewReader(make([]byte, 5<<20)), Upload{})
			assert.True(t, errs.Is(err, "body_too_large"), "%v", err)
			var sums []string
			require.NoError(t, s.blob.List(func(i store.BlobInfo) error { sums = append(sums, i.SHA256); return nil }))
			assert.Equal(t, []string{b.SHA256}, sums, "nothing kept of the refused uploads")

			require.NoError(t, res.PutVehicle(vinA))
			r := queueDirect(t, s, p, 0, nil, vinA)
			id := updateIDFor(r.ID, vinA)
			tr, err := s.StartTransfer(vinA, id, 100000)
			require.NoError(t, err)
			var chunked []byte
			for i := 1; i <= tr.ChunksCount; i++ {
				c, err := s.ChunkAt(vinA, id, i)
				require.NoError(t, err)
				chunked = append(chunked, c.Data...)
			}
			assert.True(t, bytes.Equal(content, chunked), "the transfer's chunks are the binary")
			pl, _, err := s.OpenPayload(vinA, id)
			require.NoError(t, err)
			piece := make([]byte, 1000)
			_, err = pl.ReadAt(piece, store.BlobChunkSize-500)
			require.NoError(t, err)
			assert.Equal(t, content[store.BlobChunkSize-500:store.BlobChunkSize+500], piece, "a Range across a chunk boundary")
			pl.Close()

			// a replacement: the old bytes stay while the transfer is active, then go
			b2, err := s.UploadBinary(p, strings.NewReader("new maps"), Upload{})
			require.NoError(t, err)
			later := time.Now().Add(2 * time.Minute)
			n, err := s.gcBlobs(map[string]bool{b2.SHA256: true, b.SHA256: true}, time.Minute, later)
			require.NoError(t, err)
			assert.Zero(t, n)
			n, err = s.gcBlobs(map[string]bool{b2.SHA256: true}, time.Minute, later)
			require.NoError(t, err)
			assert.Equal(t, 1, n)
			_, err = s.blob.Stat(b.SHA256)
			assert.ErrorIs(t, err, store.ErrNotFound)
			f, _, err = s.OpenBinary(p)
			require.NoError(t, err)
			all, _ = io.ReadAll(f)
			f.Close()
			assert.Equal(t, "new maps", string(all))
		})
	}
}
