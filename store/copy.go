package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// metaPrefix holds what a store writes for itself at open (the schema version): never copied.
const metaPrefix = "meta/"

// Empty reports whether the store holds nothing but what every store writes at open.
func (d *DB) Empty() (bool, error) {
	empty := true
	err := d.View(func(t Txn) error {
		return t.IterateKeys(nil, func(k []byte) error {
			if bytes.HasPrefix(k, []byte(metaPrefix)) {
				return nil
			}
			empty = false
			return errEnough
		})
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return empty, err
}

// CopyCounts are the keys and value bytes CopyKeys copied, by family.
type CopyCounts struct {
	Keys, Bytes int64
	// Family holds the keys copied under each family given to CopyKeys (the longest that is a prefix
	// of the key); keys under none of them count under "".
	Family map[string]int64
}

// CopyKeys copies every key of src into dst in write batches, except the store's own meta/ keys and
// the keys under skip (blob chunks, which are copied through the blob stores), counting them per
// family. progress, when set, is called every progressEvery keys and at the end. dst should be empty
// (Empty); keys it holds already are overwritten.
func CopyKeys(dst, src *DB, skip, families []string, progress func(CopyCounts)) (CopyCounts, error) {
	c := CopyCounts{Family: map[string]int64{}}
	fams := append([]string(nil), families...)
	sort.Slice(fams, func(i, j int) bool { return len(fams[i]) > len(fams[j]) }) // longest first
	skip = append([]string{metaPrefix}, skip...)
	b := dst.NewBatch()
	err := src.View(func(t Txn) error {
		return t.Iterate(nil, func(k, v []byte) error {
			ks := string(k)
			for _, p := range skip {
				if strings.HasPrefix(ks, p) {
					return nil
				}
			}
			// the batch may keep the slices until it flushes; the iterator's are only valid now
			if err := b.Set([]byte(ks), append([]byte(nil), v...)); err != nil {
				return err
			}
			fam := ""
			for _, p := range fams {
				if strings.HasPrefix(ks, p) {
					fam = p
					break
				}
			}
			c.Family[fam]++
			c.Keys++
			c.Bytes += int64(len(v))
			if progress != nil && c.Keys%progressEvery == 0 {
				progress(c)
			}
			return nil
		})
	})
	if err != nil {
		b.Cancel()
		return c, fmt.Errorf("copy keys: %w", err)
	}
	if err := b.Flush(); err != nil {
		return c, fmt.Errorf("copy keys: %w", err)
	}
	if progress != nil {
		progress(c)
	}
	return c, nil
}

const progressEvery = 100000

// CopyBlobs puts every blob of src into dst (verifying each digest as it is written) unless dst has
// it already, and returns how many blobs and bytes it copied. progress, when set, is called after
// every blob.
func CopyBlobs(dst, src BlobStore, progress func(blobs, bytes int64)) (n, size int64, err error) {
	err = src.List(func(info BlobInfo) error {
		if _, err := dst.Stat(info.SHA256); err == nil {
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		r, _, err := src.Open(info.SHA256)
		if err != nil {
			return err
		}
		defer r.Close()
		got, err := dst.Put(io.NewSectionReader(r, 0, info.Size), info.SHA256)
		if err != nil {
			return fmt.Errorf("blob %s: %w", info.SHA256, err)
		}
		n++
		size += got.Size
		if progress != nil {
			progress(n, size)
		}
		return nil
	})
	if err != nil {
		return n, size, fmt.Errorf("copy blobs: %w", err)
	}
	return n, size, nil
}
