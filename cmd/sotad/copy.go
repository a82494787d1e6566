package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sota/store"
)

// copyUsage is the head of `sotad copy --help`.
const copyUsage = `Usage: sotad copy --from STORE --to STORE [--to-blob-store local|db] [--from-blob-dir DIR]

Copies everything a store holds (fleet, filters, packages and their binaries, update requests,
updates and transfer sessions, campaigns, data plans, accounts and tokens, policy tables, audit log,
signing keys and metadata, webhooks) into an empty store, and prints what it copied. It is how a
single-machine installation moves to PostgreSQL, and how a backup is taken (and restored):

  sotad copy --from badger:./data --to postgres://sota@db:5432/sota?sslmode=require
  sotad copy --from badger:./data --to badger:/backups/2026-12-06

A STORE is badger:<dir> (the --data directory of a server on Badger) or a PostgreSQL URL as --store
takes it (search_path=SCHEMA picks the schema; the tables are created or migrated first, in a database
that exists). Stop the servers of both stores first: a running server holds its Badger directory, and
writes made during a copy may be missing from it. The target must be empty: copy refuses a store that
holds anything.

Package binaries go where a server on the target keeps them by default: files in <dir>/blobs for
a Badger target, chunks in the database for PostgreSQL (--to-blob-store changes it, to match the
target server's --blob-store). Binaries are read from the source's database and, for badger:<dir>,
from <dir>/blobs; a PostgreSQL server that kept them as files (--blob-store local) has them in its
--data/blobs: name that with --from-blob-dir.

Flags:
`

// copyFamilies names the key families whose counts copy prints, in print order (longest prefix wins,
// so the names of the families follow each domain's key layout).
var copyFamilies = []struct{ prefix, name string }{
	{"fleet/v/", "vehicles"},
	{"fleet/p/", "packages"},
	{"fleet/c/", "components"},
	{"fleet/f/", "filters"},
	{"fleet/pf/", "package filters"},
	{"fleet/d/", "package dependencies"},
	{"core/bin/", "binary records"},
	{"core/req/", "update requests"},
	{"core/upd/", "updates"},
	{"core/xfer/", "transfer sessions"},
	{"core/camp/", "campaigns"},
	{"core/plan/", "data plans"},
	{"core/cycle/", "billing cycles"},
	{"core/act/", "DDI action ids"},
	{"core/wh/", "webhooks"},
	{"core/whd/", "webhook deliveries"},
	{"auth/account/", "accounts"},
	{"auth/session/", "sessions"},
	{"auth/token/", "API tokens"},
	{"auth/device/", "device tokens"},
	{"auth/gateway/", "gateway tokens"},
	{"auth/audit/", "audit entries"},
	{"policy/tables/", "policy tables"},
	{"tuf/", "signing keys and metadata"},
}

// runCopy runs `sotad copy`.
func runCopy(args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sotad copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the store to copy: badger:<dir> or a postgres:// URL (required)")
	to := fs.String("to", "", "the empty store to copy into: badger:<dir> or a postgres:// URL (required)")
	fromBlobDir := fs.String("from-blob-dir", "", "also copy the binaries under this blobs directory (<data>/blobs of a server that ran with --blob-store local on PostgreSQL)")
	toBlobs := fs.String("to-blob-store", "", "where the target keeps package binaries: local (files in the badger:<dir>) or db (default: local for Badger, db for PostgreSQL)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), copyUsage)
		fs.PrintDefaults()
	}
	if err := parseSubcommand(fs, args, stdout, "copy"); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		fs.Usage()
		return errUsage
	}
	src, err := parseStoreSpec(*from)
	if err != nil {
		return fmt.Errorf("copy --from: %w", err)
	}
	dst, err := parseStoreSpec(*to)
	if err != nil {
		return fmt.Errorf("copy --to: %w", err)
	}
	if src.same(dst) {
		return errors.New("copy: --from and --to name the same store")
	}
	dstKind := dst.defaultBlobStore()
	switch *toBlobs {
	case "":
	case "db":
		dstKind = "db"
	case "local":
		if dst.dir == "" {
			return errors.New("copy --to-blob-store local: a PostgreSQL target has no directory for files; its servers' binaries are in the database (db)")
		}
		dstKind = "local"
	default:
		return fmt.Errorf("copy --to-blob-store must be local or db, not %q", *toBlobs)
	}
	if *fromBlobDir != "" {
		if _, err := os.Stat(filepath.Join(*fromBlobDir, "sha256")); err != nil {
			return fmt.Errorf("copy --from-blob-dir %s: not a blobs directory (one with sha256/ in it): %w", *fromBlobDir, err)
		}
	}
	if src.dir != "" {
		if _, err := os.Stat(filepath.Join(src.dir, "MANIFEST")); err != nil {
			return fmt.Errorf("copy --from %s: not the directory of a Badger store (the --data directory of a server): %w", src, err)
		}
	}
	if dst.dir != "" {
		// the copy may hold password and token hashes and signing keys: for this user only
		if err := os.MkdirAll(dst.dir, 0o700); err != nil {
			return fmt.Errorf("copy --to %s: %w", dst, err)
		}
	}

	sdb, err := src.open()
	if err != nil {
		return fmt.Errorf("copy --from %s: %w", src, err)
	}
	defer sdb.Close()
	ddb, err := dst.open()
	if err != nil {
		return fmt.Errorf("copy --to %s: %w", dst, err)
	}
	defer ddb.Close()

	// what the source holds: keys, and binaries in its files and in its database
	srcBlobs := []store.BlobStore{store.NewDBBlobs(sdb)}
	if src.dir != "" {
		if _, err := os.Stat(filepath.Join(src.dir, "blobs")); err == nil {
			local, err := store.NewLocalBlobs(filepath.Join(src.dir, "blobs"))
			if err != nil {
				return fmt.Errorf("copy --from %s: %w", src, err)
			}
			srcBlobs = append(srcBlobs, local)
		}
	}
	if *fromBlobDir != "" {
		local, err := store.NewLocalBlobs(*fromBlobDir)
		if err != nil {
			return fmt.Errorf("copy --from-blob-dir %s: %w", *fromBlobDir, err)
		}
		srcBlobs = append(srcBlobs, local)
	}
	empty, err := sdb.Empty()
	if err != nil {
		return fmt.Errorf("copy --from %s: %w", src, err)
	}
	if empty {
		return fmt.Errorf("copy --from %s: the store holds nothing (is it the --data directory of a server?)", src)
	}
	// the target must be empty: no keys, no binary files
	empty, err = ddb.Empty()
	if err != nil {
		return fmt.Errorf("copy --to %s: %w", dst, err)
	}
	var dstBlobs store.BlobStore = store.NewDBBlobs(ddb)
	if dst.dir != "" {
		dir := filepath.Join(dst.dir, "blobs")
		if empty {
			n, err := countFiles(filepath.Join(dir, "sha256"))
			if err != nil {
				return fmt.Errorf("copy --to %s: %w", dst, err)
			}
			empty = n == 0
		}
		if dstKind == "local" && empty {
			if dstBlobs, err = store.NewLocalBlobs(dir); err != nil {
				return fmt.Errorf("copy --to %s: %w", dst, err)
			}
		}
	}
	if !empty {
		return fmt.Errorf("copy --to %s: the target store is not empty; copy only fills an empty store (a new directory, or a new database)", dst)
	}

	start := time.Now()
	fmt.Fprintf(stderr, "copying %s to %s\n", src, dst)
	prefixes := make([]string, len(copyFamilies))
	for i, f := range copyFamilies {
		prefixes[i] = f.prefix
	}
	last := time.Now()
	counts, err := store.CopyKeys(ddb, sdb, []string{store.BlobPrefix}, prefixes, func(c store.CopyCounts) {
		if time.Since(last) >= time.Second {
			fmt.Fprintf(stderr, "  %d keys (%s) copied, %s\n", c.Keys, bytesText(c.Bytes), time.Since(start).Round(time.Second))
			last = time.Now()
		}
	})
	if err != nil {
		return fmt.Errorf("copy: %w (the target holds part of the source: empty it before copying again)", err)
	}
	var blobs, blobBytes int64
	for _, sb := range srcBlobs {
		n, size, err := store.CopyBlobs(dstBlobs, sb, func(n, size int64) {
			if time.Since(last) >= time.Second {
				fmt.Fprintf(stderr, "  %d binaries (%s) copied, %s\n", blobs+n, bytesText(blobBytes+size), time.Since(start).Round(time.Second))
				last = time.Now()
			}
		})
		blobs, blobBytes = blobs+n, blobBytes+size
		if err != nil {
			return fmt.Errorf("copy: %w (the target holds part of the source: empty it before copying again)", err)
		}
	}
	elapsed := time.Since(start)

	fmt.Fprintf(stdout, "Copied %s to %s in %s:\n", src, dst, elapsed.Round(time.Millisecond))
	for _, f := range copyFamilies {
		fmt.Fprintf(stdout, "  %-26s %d\n", f.name, counts.Family[f.prefix])
	}
	fmt.Fprintf(stdout, "  %-26s %d (%s, %s blob store)\n", "binaries", blobs, bytesText(blobBytes), dstBlobs.Kind())
	fmt.Fprintf(stdout, "  %-26s %d\n", "other keys (indexes, ...)", counts.Family[""])
	fmt.Fprintf(stdout, "  %-26s %d (%s)\n", "keys in all", counts.Keys, bytesText(counts.Bytes))
	return nil
}

// storeSpec is a STORE argument of sotad copy.
type storeSpec struct {
	dir string // badger:<dir>, absolute
	url string // a PostgreSQL URL
}

func parseStoreSpec(s string) (storeSpec, error) {
	switch {
	case strings.HasPrefix(s, "badger:"):
		dir := strings.TrimPrefix(s, "badger:")
		if dir == "" {
			return storeSpec{}, fmt.Errorf("%q names no directory (badger:<dir>)", s)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return storeSpec{}, err
		}
		return storeSpec{dir: abs}, nil
	case strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://"):
		return storeSpec{url: s}, nil
	}
	return storeSpec{}, fmt.Errorf("%q is not a store: badger:<dir> or a postgres:// URL", s)
}

func (s storeSpec) same(o storeSpec) bool {
	return s.dir != "" && s.dir == o.dir || s.url != "" && s.url == o.url
}

// String names the store without a password.
func (s storeSpec) String() string {
	if s.dir != "" {
		return "badger:" + s.dir
	}
	if u, err := url.Parse(s.url); err == nil {
		return u.Redacted()
	}
	return "postgres://…"
}

func (s storeSpec) defaultBlobStore() string {
	if s.dir != "" {
		return "local"
	}
	return "db"
}

// open opens the store without background garbage collection.
func (s storeSpec) open() (*store.DB, error) {
	if s.url != "" {
		// the schema is created or migrated first, as a server does at start
		return store.OpenURL(context.Background(), s.url, store.Options{})
	}
	db, err := store.Open(s.dir, store.Options{GCInterval: -1})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("the store is in use by a running sotad: stop it first (a copy reads and writes stores that no server is changing)")
	}
	return db, err
}

// countFiles counts the regular files under dir (none when it does not exist).
func countFiles(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	return n, err
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
