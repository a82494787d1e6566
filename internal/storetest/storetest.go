// Package storetest opens the store of a test: Badger in a temporary directory, or, with
// SOTA_TEST_STORE=postgres, a fresh schema of the PostgreSQL server at SOTA_TEST_PG_URL (default
// postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable), dropped when the test ends. Without a
// server answering there the test is skipped with a message, or fails when SOTA_REQUIRE_POSTGRES=1.
//
// Every test that needs a store opens it here, so that the whole suite runs on either backend:
//
//	db := storetest.Open(t)                 // a fresh store, closed at the end of the test
//	db, err := storetest.OpenDir(t, dir)    // the store of dir: opened again with the same dir, it is
//	                                        // the same store (restart tests); the caller closes it
//	spec := storetest.Spec(t, dir)          // the --store value of a sotad subprocess with --data dir
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"sota/store"
)

// DefaultPGURL is the PostgreSQL server tests use when SOTA_TEST_PG_URL is unset.
const DefaultPGURL = "postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable"

// Kind is the backend of this run: "badger" or "postgres" (SOTA_TEST_STORE).
func Kind() string {
	if os.Getenv("SOTA_TEST_STORE") == "postgres" {
		return "postgres"
	}
	return "badger"
}

// Postgres reports whether this run's stores are PostgreSQL.
func Postgres() bool { return Kind() == "postgres" }

// Open returns a fresh store of this run's kind, closed when the test ends.
func Open(tb testing.TB) *store.DB { return OpenKind(tb, Kind()) }

// OpenKind returns a fresh store of the given kind ("badger" or "postgres"), closed when the test ends.
func OpenKind(tb testing.TB, kind string) *store.DB {
	tb.Helper()
	var db *store.DB
	var err error
	if kind == "postgres" {
		db, err = store.OpenURL(context.Background(), newSchema(tb), store.Options{})
	} else {
		db, err = store.Open(tb.TempDir(), store.Options{})
	}
	if err != nil {
		tb.Fatalf("open the test store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// OpenDir opens the store of dir: Badger in dir, or on PostgreSQL the schema this process gave dir
// (created at the first open, dropped when that test ends). The caller closes it.
func OpenDir(tb testing.TB, dir string) (*store.DB, error) {
	tb.Helper()
	return OpenDirKind(tb, Kind(), dir)
}

// OpenDirKind is OpenDir on the given kind of store ("badger" or "postgres"), whatever this run's.
func OpenDirKind(tb testing.TB, kind, dir string) (*store.DB, error) {
	tb.Helper()
	if kind != "postgres" {
		return store.Open(dir, store.Options{})
	}
	return store.OpenURL(context.Background(), SpecKind(tb, kind, dir), store.Options{})
}

// Spec is the --store value of a sotad subprocess whose --data is dir: "badger", or the URL of the
// schema of dir (as OpenDir).
func Spec(tb testing.TB, dir string) string {
	tb.Helper()
	return SpecKind(tb, Kind(), dir)
}

// SpecKind is Spec on the given kind of store: "badger", or the URL of the schema of dir.
func SpecKind(tb testing.TB, kind, dir string) string {
	tb.Helper()
	if kind != "postgres" {
		return "badger"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	dirsMu.Lock()
	u, ok := dirs[abs]
	dirsMu.Unlock()
	if ok {
		return u
	}
	u = newSchema(tb)
	dirsMu.Lock()
	dirs[abs] = u
	dirsMu.Unlock()
	tb.Cleanup(func() {
		dirsMu.Lock()
		delete(dirs, abs)
		dirsMu.Unlock()
	})
	return u
}

var (
	dirsMu sync.Mutex
	dirs   = map[string]string{} // data directory -> URL of its schema

	adminOnce sync.Once
	admin     *pgxpool.Pool
	adminErr  error
	adminURL  string
)

// BenchKinds runs bench as one sub-benchmark per store: "badger", then "postgres" when
// SOTA_TEST_PG_URL names a server (or SOTA_REQUIRE_POSTGRES=1, which makes a missing server a
// failure). Without it the PostgreSQL sub-benchmark is skipped with a message: the 1M-vehicle
// benchmarks cost minutes and gigabytes, so they never run against a server nobody named. The
// sub-benchmarks open their stores with OpenDirKind and SpecKind.
func BenchKinds(b *testing.B, bench func(b *testing.B, kind string)) {
	b.Run("badger", func(b *testing.B) { bench(b, "badger") })
	b.Run("postgres", func(b *testing.B) {
		if os.Getenv("SOTA_TEST_PG_URL") == "" && os.Getenv("SOTA_REQUIRE_POSTGRES") != "1" {
			b.Skip("PostgreSQL rows skipped: set SOTA_TEST_PG_URL to a server's URL (e.g. " + DefaultPGURL + ") to measure them")
		}
		server(b)
		bench(b, "postgres")
	})
}

// PGURL is the server tests use: SOTA_TEST_PG_URL, or DefaultPGURL.
func PGURL() string {
	if u := os.Getenv("SOTA_TEST_PG_URL"); u != "" {
		return u
	}
	return DefaultPGURL
}

// server connects to the test server once per process; without one the test skips (or fails with
// SOTA_REQUIRE_POSTGRES=1).
func server(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	adminOnce.Do(func() {
		adminURL = PGURL()
		cfg, err := pgxpool.ParseConfig(adminURL)
		if err != nil {
			adminErr = err
			return
		}
		cfg.MaxConns = 4
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if admin, adminErr = pgxpool.NewWithConfig(ctx, cfg); adminErr == nil {
			if adminErr = admin.Ping(ctx); adminErr != nil {
				admin.Close()
			}
		}
	})
	if adminErr != nil {
		msg := fmt.Sprintf("PostgreSQL is not available at %s (%v); set SOTA_TEST_PG_URL to a server", redacted(adminURL), adminErr)
		if os.Getenv("SOTA_REQUIRE_POSTGRES") == "1" {
			tb.Fatalf("%s (SOTA_REQUIRE_POSTGRES=1)", msg)
		}
		tb.Skipf("%s; skipped (SOTA_REQUIRE_POSTGRES=1 makes this a failure)", msg)
	}
	return admin
}

// newSchema creates an empty schema for one test and returns the URL of a store in it (its
// search_path); the schema is dropped when the test ends.
// NewSchema returns the URL of a fresh schema on the test server (search_path set), dropped when the
// test ends; without a server the test is skipped (fails with SOTA_REQUIRE_POSTGRES=1). For tests
// that need PostgreSQL whatever SOTA_TEST_STORE says (sotad copy between the backends).
func NewSchema(tb testing.TB) string { return newSchema(tb) }

// NewSchemaKept is NewSchema without the drop at the end of the test: the caller drops the schema
// with drop (a benchmark's data shared by the later benchmarks of the test binary, dropped by its
// TestMain).
func NewSchemaKept(tb testing.TB) (url string, drop func()) {
	tb.Helper()
	return createSchema(tb)
}

func newSchema(tb testing.TB) string {
	tb.Helper()
	u, drop := createSchema(tb)
	tb.Cleanup(drop)
	return u
}

func createSchema(tb testing.TB) (string, func()) {
	tb.Helper()
	pool := server(tb)
	b := make([]byte, 8)
	rand.Read(b)
	name := "sotatest_" + hex.EncodeToString(b)
	if _, err := pool.Exec(context.Background(), "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("create schema %s: %v", name, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", name, err)
		}
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		drop()
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String(), drop
}

func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
