package engine

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"strings"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
)

// Binary is the record of a package's uploaded bytes.
type Binary struct {
	Name       string    `json:"name"`
	Version    string    `json:"version"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	UploadedAt time.Time `json:"uploadedAt"`
	// FileName is the file name given at upload (FileNameOf); signed image targets name the binary
	// <name>/<version>/<FileName>.
	FileName string `json:"fileName,omitempty"`
	// SHA1 and MD5 are computed at upload too (hawkBit DDI devices check them); a binary recorded
	// before they were gets them on first use (Artifact).
	SHA1 string `json:"sha1,omitempty"`
	MD5  string `json:"md5,omitempty"`
}

// FileNameOf is the file name a binary is recorded under: the uploaded file's base name when it is
// 1-200 letters, digits or ".-_+" not starting with a dot, else <name>-<version>.
func FileNameOf(id resolver.PackageID, given string) string {
	given = filepath.Base(strings.ReplaceAll(given, "\\", "/"))
	ok := given != "" && len(given) <= 200 && given[0] != '.'
	for i := 0; ok && i < len(given); i++ {
		c := given[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '+'
	}
	if ok {
		return given
	}
	return id.Name + "-" + id.Version
}

// sums are the digests of one blob.
type sums struct{ sha256, sha1, md5 string }

// errTooLarge stops an upload that exceeds the size limit.
var errTooLarge = errors.New("upload exceeds the size limit")

// uploadReader counts and hashes (sha1, md5) what the blob store reads of an upload, and fails it once
// it exceeds max bytes.
type uploadReader struct {
	r      io.Reader
	n, max int64
	h1, h5 hash.Hash
	err    error // the first error reading r
}

func (u *uploadReader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	u.n += int64(n)
	if u.n > u.max {
		return 0, errTooLarge
	}
	u.h1.Write(p[:n])
	u.h5.Write(p[:n])
	if err != nil && err != io.EOF && u.err == nil {
		u.err = err
	}
	return n, err
}

// put streams r into the blob store while hashing it (sha256, sha1, md5). With want set, a different
// sha256 is 400 checksum_mismatch and nothing is kept. It returns the digests and the size.
func (s *Service) put(r io.Reader, want string, max int64) (sums, int64, error) {
	u := &uploadReader{r: r, max: max, h1: sha1.New(), h5: md5.New()}
	info, err := s.blob.Put(u, want)
	var mm *store.BlobMismatchError
	switch {
	case errors.As(err, &mm):
		return sums{}, 0, errs.New(errs.Invalid, "checksum_mismatch", "Checksum mismatch: the uploaded file has sha256 %s, not %s", mm.Got, mm.Want)
	case errors.Is(err, errTooLarge):
		return sums{}, 0, errs.New(errs.TooLarge, "body_too_large", "Package binary exceeds %d bytes", max)
	case err != nil && u.err != nil:
		return sums{}, 0, errs.InvalidEntity("Upload interrupted: %v", u.err)
	case err != nil:
		return sums{}, 0, fmt.Errorf("store the binary: %w", err)
	}
	return sums{info.SHA256, hex.EncodeToString(u.h1.Sum(nil)), hex.EncodeToString(u.h5.Sum(nil))}, info.Size, nil
}

// openBlob opens a stored blob; the caller closes it.
func (s *Service) openBlob(sum string) (store.BlobReader, error) {
	r, _, err := s.blob.Open(sum)
	return r, err
}

// digest reads a stored blob and returns its digests.
func (s *Service) digest(sha256sum string) (sums, error) {
	f, err := s.openBlob(sha256sum)
	if err != nil {
		return sums{}, err
	}
	defer f.Close()
	h, h1, h5 := sha256.New(), sha1.New(), md5.New()
	if _, err := io.Copy(io.MultiWriter(h, h1, h5), f); err != nil {
		return sums{}, err
	}
	return sums{hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(h1.Sum(nil)), hex.EncodeToString(h5.Sum(nil))}, nil
}

// gcBlobs removes stored blobs no binary record refers to and that were stored more than grace ago
// (an upload stores its blob before its record commits), and what interrupted uploads left.
func (s *Service) gcBlobs(used map[string]bool, grace time.Duration, now time.Time) (int, error) {
	var old []string
	err := s.blob.List(func(b store.BlobInfo) error {
		if !used[b.SHA256] && now.Sub(b.Stored) >= grace {
			old = append(old, b.SHA256)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, sum := range old {
		ok, err := s.blob.Delete(sum, now.Add(-grace))
		if err != nil {
			return removed, err
		}
		if ok {
			removed++
		}
	}
	if _, err := s.blob.Clean(); err != nil {
		return removed, err
	}
	return removed, nil
}

// ValidSHA256 reports whether s is 64 hex digits.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (s *Service) binary(t store.Txn, id resolver.PackageID) (Binary, bool, error) {
	v, err := t.Get(binKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Binary{}, false, nil
	}
	if err != nil {
		return Binary{}, false, err
	}
	var b Binary
	if err := decode(v, &b); err != nil {
		return Binary{}, false, err
	}
	return b, true, nil
}

// Binary returns the binary record of a package version; ok is false when none was uploaded.
func (s *Service) Binary(id resolver.PackageID) (b Binary, ok bool, err error) {
	err = s.db.View(func(t store.Txn) error {
		b, ok, err = s.binary(t, id)
		return err
	})
	return b, ok, err
}

// OpenBinary opens the uploaded bytes of a package version: 404 missing_binary when there are none.
// The caller closes the reader.
func (s *Service) OpenBinary(id resolver.PackageID) (store.BlobReader, Binary, error) {
	b, ok, err := s.Binary(id)
	if err != nil {
		return nil, b, err
	}
	if !ok {
		return nil, b, errs.New(errs.NotFound, "missing_binary", "No binary uploaded for package %s", id)
	}
	f, err := s.openBlob(b.SHA256)
	if err != nil {
		return nil, b, fmt.Errorf("binary of %s: %w", id, err)
	}
	return f, b, nil
}

// CollectBlobs removes stored blobs that no package refers to any more (left by deleted packages or
// replaced uploads) and that are older than a minute, and what interrupted uploads left behind. It
// returns how many blobs were removed.
func (s *Service) CollectBlobs() (int, error) {
	used := map[string]bool{}
	err := s.db.View(func(t store.Txn) error {
		if err := s.transferBlobs(t, used); err != nil { // payloads of transfers in progress
			return err
		}
		return t.Iterate([]byte(pBin), func(_, v []byte) error {
			var b Binary
			if err := decode(v, &b); err != nil {
				return err
			}
			used[b.SHA256] = true
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	return s.gcBlobs(used, time.Minute, time.Now()) // blob times are wall-clock times
}

// setBinary records a package's binary in the caller's transaction.
func (s *Service) setBinary(t store.Txn, b Binary) error {
	return t.Set(binKey(resolver.PackageID{Name: b.Name, Version: b.Version}), encode(&b))
}

// PackageURI is where a package's binary is downloaded.
func PackageURI(id resolver.PackageID) string {
	return "/api/v1/packages/" + id.Name + "/" + id.Version + "/download"
}

// Upload is the input of UploadBinary besides the bytes: an optional expected sha256 (hex) and optional
// package metadata (nil leaves it as it is).
type Upload struct {
	Checksum    string
	FileName    string // the uploaded file's name (FileNameOf)
	Description *string
	Vendor      *string
}

// UploadBinary is PACKAGE_ADD_SOTASERVER: r is streamed into content-addressed storage while hashed;
// a given checksum that differs is 400 checksum_mismatch and nothing is kept. The size and hash, and
// the given description or vendor, are recorded in the resolver's package (created when missing) and
// in the binary record in one transaction.
func (s *Service) UploadBinary(id resolver.PackageID, r io.Reader, in Upload) (Binary, error) {
	if err := resolver.ValidPackageID(id); err != nil {
		return Binary{}, err
	}
	if in.Checksum != "" && !ValidSHA256(in.Checksum) {
		return Binary{}, errs.InvalidEntity("checksum must be 64 hex digits of sha256, not %q", in.Checksum)
	}
	info := resolver.UploadInfo{Description: in.Description, Vendor: in.Vendor}
	if err := resolver.ValidateUploadInfo(info); err != nil {
		return Binary{}, err
	}
	if sg := s.signingHook(); sg != nil {
		if err := sg.CheckReplace(id); err != nil {
			return Binary{}, err
		}
	}
	sum, size, err := s.put(r, in.Checksum, s.opt.MaxUpload)
	if err != nil {
		return Binary{}, err
	}
	b := Binary{Name: id.Name, Version: id.Version, SHA256: sum.sha256, SHA1: sum.sha1, MD5: sum.md5, Size: size,
		UploadedAt: s.now(), FileName: FileNameOf(id, in.FileName)}
	err = s.resUpdate(func(t *engineTx, x *resolver.Tx) error {
		if err := x.PackageUploaded(id, info); err != nil {
			return err
		}
		return s.setBinary(t, b)
	})
	return b, err
}
