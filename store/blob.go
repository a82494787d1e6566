package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// BlobStore keeps package binaries by the sha256 of their content (64 lower-case hex digits). Two
// implementations: LocalBlobs (files in the data directory) and DBBlobs (chunks in the store itself,
// so that every server on a shared database serves every blob). Blobs are immutable; putting content
// that is already stored keeps one copy.
type BlobStore interface {
	// Kind is "local" or "db".
	Kind() string
	// Put streams r into the store while hashing it and returns the blob's sha256 and size. With want
	// set (hex sha256), content with another digest is not kept and the error is a *BlobMismatchError.
	// An error reading r is returned wrapped and keeps nothing.
	Put(r io.Reader, want string) (BlobInfo, error)
	// Open opens a blob for reading from any offset (ErrNotFound when missing). The caller closes it.
	Open(sum string) (BlobReader, BlobInfo, error)
	// Stat describes a blob (ErrNotFound when missing).
	Stat(sum string) (BlobInfo, error)
	// Delete removes a blob if it was stored (put, or put again) before the given time, so that a
	// collector that listed it as old does not remove content an upload has just stored again; the
	// zero time removes it whatever its age. It reports whether it removed something.
	Delete(sum string, storedBefore time.Time) (bool, error)
	// List calls fn for every stored blob, in digest order, until fn returns an error.
	List(fn func(BlobInfo) error) error
	// Clean removes what interrupted uploads left behind (a server killed mid-upload) and that no
	// upload still under way can be writing. It returns how many uploads it removed.
	Clean() (int, error)
}

// BlobReader reads a stored blob sequentially (with Seek) or at any offset; it is safe to call ReadAt
// concurrently.
type BlobReader interface {
	io.ReadSeekCloser
	io.ReaderAt
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	SHA256 string
	Size   int64
	// Stored is when the content was last put (a collector spares recently stored blobs whose record
	// is not committed yet).
	Stored time.Time
}

// BlobMismatchError is Put's answer when the content's sha256 is not the one expected.
type BlobMismatchError struct{ Want, Got string }

func (e *BlobMismatchError) Error() string {
	return fmt.Sprintf("blob has sha256 %s, not %s", e.Got, e.Want)
}

// ValidBlobSum reports whether s is a blob digest: 64 lower-case hex digits.
func ValidBlobSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func checkSum(sum string) error {
	if !ValidBlobSum(sum) {
		return fmt.Errorf("blob digest %q is not 64 lower-case hex digits", sum)
	}
	return nil
}

// LocalBlobs keeps blobs as files: <dir>/sha256/<first two hex>/<hex>. Uploads stream into <dir>/tmp
// and are renamed into place once their digest is known.
type LocalBlobs struct {
	dir string
	// open holds the temporary files of the uploads under way in this process (Clean spares them).
	open sync.Map
	// mu orders the end of a Put (found or renamed into place, and its time) against Delete's check
	// of the time and removal, so that a collector never removes content a Put has just stored.
	mu sync.Mutex
}

// NewLocalBlobs makes the directories of a local blob store in dir (for sotad: <data>/blobs).
func NewLocalBlobs(dir string) (*LocalBlobs, error) {
	for _, d := range []string{filepath.Join(dir, "tmp"), filepath.Join(dir, "sha256")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob directory: %w", err)
		}
	}
	return &LocalBlobs{dir: dir}, nil
}

// Kind is "local".
func (b *LocalBlobs) Kind() string { return "local" }

// Dir is the directory the blobs are stored in.
func (b *LocalBlobs) Dir() string { return b.dir }

// Path is the file of a blob.
func (b *LocalBlobs) Path(sum string) string {
	return filepath.Join(b.dir, "sha256", sum[:2], sum)
}

// Clean removes every temporary file that no upload of this process is writing: the blob directory
// belongs to one server (the Badger store's lock, or one sotad per --data with PostgreSQL).
func (b *LocalBlobs) Clean() (int, error) {
	left, err := os.ReadDir(filepath.Join(b.dir, "tmp"))
	if err != nil {
		return 0, fmt.Errorf("blob directory: %w", err)
	}
	n := 0
	for _, e := range left {
		p := filepath.Join(b.dir, "tmp", e.Name())
		if _, busy := b.open.Load(p); busy {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return n, fmt.Errorf("remove a left-over upload: %w", err)
		}
		n++
	}
	return n, nil
}

// Put streams r into a temporary file, then renames it to its digest.
func (b *LocalBlobs) Put(r io.Reader, want string) (BlobInfo, error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "upload-*")
	if err != nil {
		return BlobInfo{}, err
	}
	tmp := f.Name()
	b.open.Store(tmp, true)
	defer b.open.Delete(tmp)
	defer os.Remove(tmp) // a no-op after the rename
	h := sha256.New()
	n, rerr := io.Copy(io.MultiWriter(f, h), onlyReader{r})
	err = rerr
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr != nil {
		return BlobInfo{}, fmt.Errorf("read blob: %w", rerr)
	}
	if err != nil {
		return BlobInfo{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && !strings.EqualFold(want, sum) {
		return BlobInfo{}, &BlobMismatchError{Want: strings.ToLower(want), Got: sum}
	}
	dst := b.Path(sum)
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := os.Stat(dst); err == nil {
		// same content already stored: it counts as stored now (see Delete)
		return BlobInfo{SHA256: sum, Size: n, Stored: now}, os.Chtimes(dst, now, now)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return BlobInfo{}, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return BlobInfo{}, err
	}
	return BlobInfo{SHA256: sum, Size: n, Stored: now}, nil
}

// onlyReader hides a reader's WriterTo, so that io.Copy reports the reader's errors as its own.
type onlyReader struct{ io.Reader }

// Open opens the blob's file.
func (b *LocalBlobs) Open(sum string) (BlobReader, BlobInfo, error) {
	if err := checkSum(sum); err != nil {
		return nil, BlobInfo{}, err
	}
	f, err := os.Open(b.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, BlobInfo{}, fmt.Errorf("blob %s: %w", sum, ErrNotFound)
	}
	if err != nil {
		return nil, BlobInfo{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, BlobInfo{}, err
	}
	return f, BlobInfo{SHA256: sum, Size: st.Size(), Stored: st.ModTime()}, nil
}

// Stat describes the blob's file.
func (b *LocalBlobs) Stat(sum string) (BlobInfo, error) {
	if err := checkSum(sum); err != nil {
		return BlobInfo{}, err
	}
	st, err := os.Stat(b.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return BlobInfo{}, fmt.Errorf("blob %s: %w", sum, ErrNotFound)
	}
	if err != nil {
		return BlobInfo{}, err
	}
	return BlobInfo{SHA256: sum, Size: st.Size(), Stored: st.ModTime()}, nil
}

// Delete removes the blob's file if its modification time is before storedBefore (or always).
func (b *LocalBlobs) Delete(sum string, storedBefore time.Time) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	info, err := b.Stat(sum)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !storedBefore.IsZero() && !info.Stored.Before(storedBefore) {
		return false, nil
	}
	err = os.Remove(b.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// List walks the blob files in digest order; files whose name is not a digest are skipped.
func (b *LocalBlobs) List(fn func(BlobInfo) error) error {
	return filepath.WalkDir(filepath.Join(b.dir, "sha256"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !ValidBlobSum(d.Name()) {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) { // removed meanwhile
			return nil
		}
		if err != nil {
			return err
		}
		return fn(BlobInfo{SHA256: d.Name(), Size: info.Size(), Stored: info.ModTime()})
	})
}

// uploadID is a random name for an upload under way.
func uploadID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
