package store

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// DBBlobs keeps blobs in the store itself, as chunks written through ordinary transactions, so that it
// works on every backend and every server sharing the database serves every blob. Keys, all under
// blob/ (a backend may give the family a table of its own: the values are opaque bytes up to
// BlobChunkSize, read by exact key and listed by prefix):
//
//	blob/m/<sha256 hex>          manifest: size (8 bytes), stored at (8, Unix ns), chunk size (4), data id
//	blob/d/<data id>/<n, 8 hex>  the n-th chunk of the content (every chunk but the last is full)
//	blob/u/<data id>             an upload under way: the time of its last write (8 bytes, Unix ns);
//	                             0 once abandoned (failed, or the blob deleted): Clean removes its chunks
//
// An upload writes its chunks under a fresh data id as they arrive (a few per transaction), and the
// manifest last, in the transaction that removes its upload marker: a blob is visible whole or not at
// all, and an interrupted upload leaves only a marker that Clean finds. Reading an offset fetches the
// window of blobWindow chunks it falls in (one query on PostgreSQL), a sequential read also the next
// windows in the background, and recently read chunks are cached (they never change under a data id).
type DBBlobs struct {
	db    *DB
	chunk int
	cache *chunkCache

	mu       sync.Mutex
	inflight map[windowRef]*chunkFetch // windows being fetched (ReadAt, window)
}

// blobCacheChunks is how many recently read chunks DBBlobs keeps in memory (32 MiB).
const blobCacheChunks = 128

// BlobChunkSize is the size of DBBlobs' chunks.
const BlobChunkSize = 256 << 10

// blobChunksPerTxn is how many chunks an upload writes per transaction (2 MiB: far below Badger's
// transaction limit, few enough commits for a fast upload).
const blobChunksPerTxn = 8

// BlobUploadIdle is how long an upload may go without writing before Clean takes it for dead (other
// servers on the same database may be uploading while one starts).
const BlobUploadIdle = 15 * time.Minute

const (
	pBlobManifest = "blob/m/"
	pBlobData     = "blob/d/"
	pBlobUpload   = "blob/u/"
)

// BlobPrefix is the key family of DBBlobs.
const BlobPrefix = "blob/"

// NewDBBlobs returns the blob store inside db. db should be a handle without a hook (DB.With).
func NewDBBlobs(db *DB) *DBBlobs {
	return &DBBlobs{db: db, chunk: BlobChunkSize, cache: newChunkCache(blobCacheChunks), inflight: map[windowRef]*chunkFetch{}}
}

// Kind is "db".
func (b *DBBlobs) Kind() string { return "db" }

type manifest struct {
	size   int64
	stored time.Time
	chunk  int
	id     string
}

func (m manifest) encode() []byte {
	v := make([]byte, 20, 20+len(m.id))
	binary.BigEndian.PutUint64(v, uint64(m.size))
	binary.BigEndian.PutUint64(v[8:], uint64(m.stored.UnixNano()))
	binary.BigEndian.PutUint32(v[16:], uint32(m.chunk))
	return append(v, m.id...)
}

func decodeManifest(v []byte) (manifest, error) {
	if len(v) < 21 {
		return manifest{}, fmt.Errorf("blob manifest of %d bytes", len(v))
	}
	m := manifest{
		size:   int64(binary.BigEndian.Uint64(v)),
		stored: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))),
		chunk:  int(binary.BigEndian.Uint32(v[16:])),
		id:     string(v[20:]),
	}
	if m.chunk <= 0 || m.size < 0 {
		return manifest{}, fmt.Errorf("blob manifest: chunk size %d, size %d", m.chunk, m.size)
	}
	return m, nil
}

func chunkKey(id string, n int64) []byte {
	return fmt.Appendf(nil, "%s%s/%08x", pBlobData, id, n)
}

func nanos(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

// Put writes r's chunks under a fresh data id, then the manifest.
func (b *DBBlobs) Put(r io.Reader, want string) (BlobInfo, error) {
	id := uploadID()
	marker := []byte(pBlobUpload + id)
	h := sha256.New()
	buf := make([]byte, b.chunk*blobChunksPerTxn)
	var size, n int64
	for {
		k, rerr := io.ReadFull(r, buf)
		if k > 0 {
			h.Write(buf[:k])
			err := b.db.Update(func(t Txn) error {
				for off := 0; off < k; off += b.chunk {
					if err := t.Set(chunkKey(id, n+int64(off/b.chunk)), buf[off:min(off+b.chunk, k)]); err != nil {
						return err
					}
				}
				return t.Set(marker, nanos(time.Now()))
			})
			if err != nil {
				b.abandon(id)
				return BlobInfo{}, err
			}
			size += int64(k)
			n += int64((k + b.chunk - 1) / b.chunk)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			b.abandon(id)
			return BlobInfo{}, fmt.Errorf("read blob: %w", rerr)
		}
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && !strings.EqualFold(want, sum) {
		b.abandon(id)
		return BlobInfo{}, &BlobMismatchError{Want: strings.ToLower(want), Got: sum}
	}
	now := time.Now()
	m := manifest{size: size, stored: now, chunk: b.chunk, id: id}
	dup := false
	err := retryConflict(func() error {
		return b.db.Update(func(t Txn) error {
			key := []byte(pBlobManifest + sum)
			v, err := t.Get(key)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			dup = err == nil
			if dup { // same content already stored: it counts as stored now (see Delete)
				old, err := decodeManifest(v)
				if err != nil {
					return err
				}
				old.stored = now
				if err := t.Set(key, old.encode()); err != nil {
					return err
				}
				return t.Set(marker, nanos(time.Time{}))
			}
			if err := t.Set(key, m.encode()); err != nil {
				return err
			}
			return t.Delete(marker)
		})
	})
	if err != nil {
		b.abandon(id)
		return BlobInfo{}, err
	}
	if dup {
		b.purge(id)
	}
	return BlobInfo{SHA256: sum, Size: size, Stored: now}, nil
}

func retryConflict(fn func() error) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = fn(); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return err
}

// abandon marks an upload's chunks for removal and removes them (Clean finishes what fails here).
func (b *DBBlobs) abandon(id string) {
	if b.db.Update(func(t Txn) error { return t.Set([]byte(pBlobUpload+id), nanos(time.Time{})) }) == nil {
		b.purge(id)
	}
}

// purge removes the chunks of a data id, then its upload marker.
func (b *DBBlobs) purge(id string) error {
	prefix := []byte(pBlobData + id + "/")
	for {
		var keys [][]byte
		err := b.db.View(func(t Txn) error {
			return t.IterateKeys(prefix, func(k []byte) error {
				keys = append(keys, append([]byte(nil), k...))
				if len(keys) == 512 {
					return errEnough
				}
				return nil
			})
		})
		if err != nil && !errors.Is(err, errEnough) {
			return err
		}
		if len(keys) == 0 {
			break
		}
		err = b.db.Update(func(t Txn) error {
			for _, k := range keys {
				if err := t.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return b.db.Update(func(t Txn) error { return t.Delete([]byte(pBlobUpload + id)) })
}

var errEnough = errors.New("enough")

// Clean removes the chunks of abandoned uploads and of uploads idle for BlobUploadIdle.
func (b *DBBlobs) Clean() (int, error) {
	var ids []string
	now := time.Now()
	err := b.db.View(func(t Txn) error {
		return t.Iterate([]byte(pBlobUpload), func(k, v []byte) error {
			var at uint64
			if len(v) == 8 {
				at = binary.BigEndian.Uint64(v)
			}
			if at == 0 || now.Sub(time.Unix(0, int64(at))) >= BlobUploadIdle {
				ids = append(ids, strings.TrimPrefix(string(k), pBlobUpload))
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	for i, id := range ids {
		if err := b.purge(id); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}

func (b *DBBlobs) manifest(sum string) (manifest, error) {
	if err := checkSum(sum); err != nil {
		return manifest{}, err
	}
	var m manifest
	err := b.db.View(func(t Txn) error {
		v, err := t.Get([]byte(pBlobManifest + sum))
		if err != nil {
			return err
		}
		m, err = decodeManifest(v)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return m, fmt.Errorf("blob %s: %w", sum, ErrNotFound)
	}
	return m, err
}

// Stat reads the blob's manifest.
func (b *DBBlobs) Stat(sum string) (BlobInfo, error) {
	m, err := b.manifest(sum)
	if err != nil {
		return BlobInfo{}, err
	}
	return BlobInfo{SHA256: sum, Size: m.size, Stored: m.stored}, nil
}

// Open returns a reader over the blob's chunks.
func (b *DBBlobs) Open(sum string) (BlobReader, BlobInfo, error) {
	m, err := b.manifest(sum)
	if err != nil {
		return nil, BlobInfo{}, err
	}
	at := &chunkReader{b: b, m: m}
	return blobSection{io.NewSectionReader(at, 0, m.size)}, BlobInfo{SHA256: sum, Size: m.size, Stored: m.stored}, nil
}

type blobSection struct{ *io.SectionReader }

func (blobSection) Close() error { return nil }

// Delete removes the manifest (in one transaction, if stored before storedBefore), then the chunks.
func (b *DBBlobs) Delete(sum string, storedBefore time.Time) (bool, error) {
	if err := checkSum(sum); err != nil {
		return false, err
	}
	var id string
	err := retryConflict(func() error {
		id = ""
		return b.db.Update(func(t Txn) error {
			key := []byte(pBlobManifest + sum)
			v, err := t.Get(key)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			m, err := decodeManifest(v)
			if err != nil {
				return err
			}
			if !storedBefore.IsZero() && !m.stored.Before(storedBefore) {
				return nil
			}
			id = m.id
			if err := t.Delete(key); err != nil {
				return err
			}
			return t.Set([]byte(pBlobUpload+m.id), nanos(time.Time{}))
		})
	})
	if err != nil || id == "" {
		return false, err
	}
	return true, b.purge(id)
}

// List iterates the manifests.
func (b *DBBlobs) List(fn func(BlobInfo) error) error {
	var infos []BlobInfo
	err := b.db.View(func(t Txn) error {
		return t.Iterate([]byte(pBlobManifest), func(k, v []byte) error {
			m, err := decodeManifest(v)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			infos = append(infos, BlobInfo{SHA256: strings.TrimPrefix(string(k), pBlobManifest), Size: m.size, Stored: m.stored})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, i := range infos { // outside the transaction: fn may take long (a copy)
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// chunkReader reads a blob at any offset from its chunks.
type chunkReader struct {
	b *DBBlobs
	m manifest

	mu   sync.Mutex
	next int64 // where the last read ended: a read that starts there is sequential
}

// blobWindow is how many chunks are fetched together (2 MiB: one query on PostgreSQL, where a
// query per chunk cost a round trip or three each and left the connection idle while the bytes were
// written out).
const blobWindow = 8

// blobPrefetch is how many windows past the one being read a sequential read fetches in the
// background (each on its own connection), so that a download writes one window while the next
// ones are read from the database.
const blobPrefetch = 2

func (r *chunkReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("blob: negative offset")
	}
	if off >= r.m.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.m.size)
	cs := int64(r.m.chunk)
	first, last := off/cs, (end-1)/cs
	r.mu.Lock()
	sequential := off == r.next
	r.next = end
	r.mu.Unlock()
	if sequential { // read ahead in the background: the next windows are likely wanted next
		for w := last/blobWindow + 1; w <= last/blobWindow+blobPrefetch; w++ {
			r.b.prefetch(r.m, w)
		}
	}
	k := 0
	for n := first; n <= last; n++ {
		c, ok := r.b.cache.get(r.m.id, n)
		if !ok {
			f := r.b.window(r.m, n/blobWindow)
			<-f.done
			if f.err != nil {
				return k, f.err
			}
			c = f.chunks[n%blobWindow]
		}
		pos := off + int64(k) - n*cs
		if pos < 0 || pos > int64(len(c)) {
			return k, fmt.Errorf("blob chunk %d has %d bytes", n, len(c))
		}
		k += copy(p[k:end-off], c[pos:])
	}
	if int64(k) < end-off {
		return k, fmt.Errorf("blob %s: chunks hold fewer bytes than its size", r.m.id)
	}
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

// chunkFetch is a window of chunks being read (or read) from the store.
type chunkFetch struct {
	done   chan struct{}
	chunks [][]byte
	err    error
}

type windowRef struct {
	id string
	w  int64
}

// windowChunks returns the first and last chunk of window w of the blob (first > last past its end).
func windowChunks(m manifest, w int64) (first, last int64) {
	cs := int64(m.chunk)
	first = w * blobWindow
	return first, min(first+blobWindow, (m.size+cs-1)/cs) - 1
}

// prefetch starts fetching window w of the blob in the background unless it is cached, being
// fetched, or past the blob's end.
func (b *DBBlobs) prefetch(m manifest, w int64) {
	first, last := windowChunks(m, w)
	if first > last || b.cache.has(m.id, first) && b.cache.has(m.id, last) {
		return
	}
	b.window(m, w)
}

// window returns the fetch of window w of the blob: the one under way, or a new one started in the
// background.
func (b *DBBlobs) window(m manifest, w int64) *chunkFetch {
	first, last := windowChunks(m, w)
	ref := windowRef{m.id, w}
	b.mu.Lock()
	if f, ok := b.inflight[ref]; ok {
		b.mu.Unlock()
		return f
	}
	f := &chunkFetch{done: make(chan struct{})}
	b.inflight[ref] = f
	b.mu.Unlock()
	go func() {
		f.chunks, f.err = b.getChunks(m.id, first, last)
		for i, c := range f.chunks {
			b.cache.put(m.id, first+int64(i), c)
		}
		b.mu.Lock()
		delete(b.inflight, ref)
		b.mu.Unlock()
		close(f.done)
	}()
	return f
}

// getChunks reads chunks first to last of a data id: on PostgreSQL in one query (the chunks of a
// data id never change, so a single statement's snapshot is enough), elsewhere in one transaction.
func (b *DBBlobs) getChunks(id string, first, last int64) ([][]byte, error) {
	out := make([][]byte, 0, last-first+1)
	if pg, ok := b.db.b.(*pgBackend); ok {
		rows, err := pg.pool.Query(context.Background(), "SELECT value FROM kv WHERE key BETWEEN $1 AND $2 ORDER BY key",
			chunkKey(id, first), chunkKey(id, last))
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var v []byte
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	} else {
		err := b.db.View(func(t Txn) error {
			for n := first; n <= last; n++ {
				v, err := t.Get(chunkKey(id, n))
				if err != nil {
					return fmt.Errorf("blob chunk %d: %w", n, err)
				}
				out = append(out, v)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if int64(len(out)) != last-first+1 {
		return nil, fmt.Errorf("blob %s: %d of chunks %d-%d stored", id, len(out), first, last)
	}
	return out, nil
}

// chunkCache keeps the most recently read chunks (they are immutable under their data id): a
// sequential read in small pieces, or a device's transfer chunks, reads each stored chunk once.
type chunkCache struct {
	mu  sync.Mutex
	max int
	ll  *list.List
	m   map[chunkRef]*list.Element
}

type chunkRef struct {
	id string
	n  int64
}

type cachedChunk struct {
	ref  chunkRef
	data []byte
}

func newChunkCache(max int) *chunkCache {
	return &chunkCache{max: max, ll: list.New(), m: map[chunkRef]*list.Element{}}
}

func (c *chunkCache) get(id string, n int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[chunkRef{id, n}]
	if !ok {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cachedChunk).data, true
}

// has reports whether the chunk is cached (without making it the most recent).
func (c *chunkCache) has(id string, n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[chunkRef{id, n}]
	return ok
}

func (c *chunkCache) put(id string, n int64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref := chunkRef{id, n}
	if e, ok := c.m[ref]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.m[ref] = c.ll.PushFront(&cachedChunk{ref, data})
	for c.ll.Len() > c.max {
		e := c.ll.Back()
		c.ll.Remove(e)
		delete(c.m, e.Value.(*cachedChunk).ref)
	}
}
