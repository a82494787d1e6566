// Package store persists the server's data, in an embedded Badger database (the default) or in
// PostgreSQL (the SQL that CockroachDB and YugabyteDB also run).
//
// It knows bytes and keys, not HTTP and not the domain: the domain packages encode their records
// and choose their keys through the small Txn interface below, which carries no backend types. Both
// backends give the same answers to the same calls:
//
//   - Update runs its function in one serializable read-write transaction and commits it durably (an
//     answered write survives kill -9); a transaction that lost to a concurrent one is run again, up to
//     MaxAttempts times, so the function must have no effect outside the transaction (ErrConflict
//     after that). View runs in a read-only snapshot.
//   - Iterate and IterateKeys yield keys in byte order, for any prefix (also one ending mid-segment or
//     spanning several key families).
//   - A Batch writes many keys outside one transaction (bulk import), durable at Flush.
//
// Key layout (each domain documents its own keys next to its code):
//
//	meta/schema                 schema version (uint32, big endian; Badger only, PostgreSQL has
//	                            schema_migrations)
//	fleet/...                   resolver records (resolver/store.go)
//	core/...                    engine records (engine/store.go)
//	auth/...                    accounts, sessions, tokens, audit log (auth)
//	policy/...                  SDL master tables (policy)
//	tuf/...                     signed metadata and keys (signing)
//
// On PostgreSQL the hot key families live in tables whose primary key is the key's segments
// (postgres.go, tables); every other key is a row of the kv table. The schema is created and migrated
// at open by the versioned migrations in migrations/.
//
// Several processes (replicas) may share one PostgreSQL store: every committed write also lists its
// keys in the change feed (changes.go), which each process polls to keep its memory fresh
// (Subscribe) and catches up with before the requests that must see every acknowledged write
// (CatchUp).
package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("store: key not found")

// ErrConflict is returned by Update when its transaction still conflicted with concurrent ones after
// MaxAttempts runs (a Badger conflict, a PostgreSQL serialization failure or deadlock).
var ErrConflict = errors.New("store: transaction conflict")

// ErrTooBig is returned when a single transaction outgrows the backend's limits; callers split the work.
var ErrTooBig = errors.New("store: transaction too big")

// ErrLocked is Open's answer when another process (a running sotad) holds the store's directory lock.
var ErrLocked = errors.New("the store is in use by another process (a running sotad?)")

// MaxAttempts is how many times Update runs a function whose transaction conflicted.
const MaxAttempts = 30

// backoff is the pause before run i+2 of a conflicted transaction: random, so that the transactions
// that conflicted do not meet again, and growing up to 32 ms.
func backoff(i int) time.Duration {
	return time.Duration(rand.Int64N(int64(time.Millisecond) << min(i, 5)))
}

// Txn is a read or read-write transaction.
type Txn interface {
	Get(key []byte) ([]byte, error)
	Has(key []byte) (bool, error)
	Set(key, value []byte) error
	Delete(key []byte) error
	// Iterate calls fn for every key with the prefix, in key order, until fn returns an error.
	// The slices are only valid during the call.
	Iterate(prefix []byte, fn func(key, value []byte) error) error
	// IterateKeys is Iterate without loading values.
	IterateKeys(prefix []byte, fn func(key []byte) error) error
}

// Batch writes many keys outside a single transaction (bulk import); Flush makes them durable.
type Batch interface {
	Set(key, value []byte) error
	Delete(key []byte) error
	Flush() error
	Cancel()
}

// backend is one storage engine under DB.
type backend interface {
	// update runs fn once in a read-write transaction; a conflict is ErrConflict.
	update(fn func(Txn) error) error
	view(fn func(Txn) error) error
	newBatch() Batch
	maxBatchCount() int64
	gc()
	size() (int64, int64)
	diskSize() int64
	close() error
}

// DB is the store handle.
type DB struct {
	b    backend
	hook *Hook // set on a handle from With
}

// Hook is work done once, in the transaction of the first write that commits through a handle from
// DB.With: the API's audit-log entry of an admin call goes into the same transaction as the change,
// whichever domain makes it. Safe for concurrent transactions: one claims the hook at a time, and a
// transaction that fails to commit releases it for the next.
type Hook struct {
	fn func(Txn) error

	mu              sync.Mutex
	claimed, commit bool
}

// NewHook returns a hook that runs fn in a transaction.
func NewHook(fn func(Txn) error) *Hook { return &Hook{fn: fn} }

func (h *Hook) lock()   { h.mu.Lock() }
func (h *Hook) unlock() { h.mu.Unlock() }

// Committed reports whether the hook has run in a transaction that committed.
func (h *Hook) Committed() bool {
	h.lock()
	defer h.unlock()
	return h.commit
}

func (h *Hook) claim() bool {
	h.lock()
	defer h.unlock()
	if h.claimed || h.commit {
		return false
	}
	h.claimed = true
	return true
}

func (h *Hook) settle(committed bool) {
	h.lock()
	h.claimed, h.commit = false, h.commit || committed
	h.unlock()
}

// With returns a handle on the same store whose first committing Update also runs h, after the
// caller's function succeeded and in its transaction. Reads, batches and the other handles are
// unaffected. The handle must not be closed.
func (d *DB) With(h *Hook) *DB {
	if h == nil {
		return d
	}
	return &DB{b: d.b, hook: h}
}

// DefaultGCInterval is how often the value log is garbage-collected when Options.GCInterval is zero.
const DefaultGCInterval = 5 * time.Minute

// Options tunes Open and OpenStore.
type Options struct {
	InMemory bool // Badger, for benchmarks only; tests use a temporary directory
	// GCInterval is how often Badger's value-log garbage collection runs (DefaultGCInterval when
	// zero, never when negative). Without it Badger's value log keeps every overwritten value and the
	// data directory only grows. PostgreSQL reclaims space itself (autovacuum).
	GCInterval time.Duration
	// FeedInterval is how often a PostgreSQL store polls the change feed (changes.go;
	// DefaultFeedInterval when zero, never in the background when negative: CatchUp only).
	FeedInterval time.Duration
	// FeedRetention is how long change-feed rows are kept (DefaultFeedRetention when zero).
	FeedRetention time.Duration

	tune func(badgerOptions) badgerOptions // tests: smaller files and memtables
}

// IsURL reports whether spec names a PostgreSQL store (postgres:// or postgresql://).
func IsURL(spec string) bool {
	return strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://")
}

// OpenStore opens the store a --store value names: "badger" (or empty) for Badger in dataDir,
// "badger:<dir>" for Badger in dir, or a PostgreSQL URL (postgres://user:pass@host:port/db?…),
// whose schema is created or migrated first.
func OpenStore(spec, dataDir string, o Options) (*DB, error) {
	switch {
	case spec == "" || spec == "badger":
		return Open(dataDir, o)
	case strings.HasPrefix(spec, "badger:"):
		return Open(strings.TrimPrefix(spec, "badger:"), o)
	case IsURL(spec):
		return OpenURL(context.Background(), spec, o)
	}
	return nil, fmt.Errorf("store %q: want badger, badger:<dir> or a postgres:// URL", spec)
}

// CheckSpec reports whether spec is a store OpenStore accepts, without opening it.
func CheckSpec(spec string) error {
	if spec == "" || spec == "badger" || strings.HasPrefix(spec, "badger:") && len(spec) > len("badger:") {
		return nil
	}
	if IsURL(spec) {
		_, err := parsePoolConfig(spec)
		return err
	}
	return fmt.Errorf("store %q: want badger, badger:<dir> or a postgres:// URL", spec)
}

// Close stops background work, flushes and closes the store.
func (d *DB) Close() error { return d.b.close() }

// Update runs fn in a read-write transaction and commits it durably. A transaction that conflicted
// with a concurrent one runs again (fn must have no effect outside the transaction), at most
// MaxAttempts times; then the answer is ErrConflict.
func (d *DB) Update(fn func(Txn) error) error {
	var err error
	for i := 0; i < MaxAttempts; i++ {
		if err = d.updateOnce(fn); !errors.Is(err, ErrConflict) {
			return err
		}
		time.Sleep(backoff(i))
	}
	return err
}

func (d *DB) updateOnce(fn func(Txn) error) error {
	h, claimed := d.hook, false
	err := d.b.update(func(t Txn) error {
		if err := fn(t); err != nil {
			return err
		}
		if h != nil && h.claim() {
			claimed = true
			return h.fn(t)
		}
		return nil
	})
	if claimed {
		h.settle(err == nil)
	}
	return err
}

// View runs fn in a read-only snapshot.
func (d *DB) View(fn func(Txn) error) error { return d.b.view(fn) }

// NewBatch starts a bulk write.
func (d *DB) NewBatch() Batch { return d.b.newBatch() }

// MaxBatchCount is the number of writes a caller may safely put in one Update.
func (d *DB) MaxBatchCount() int64 { return d.b.maxBatchCount() }

// Sequence returns a monotonically increasing number persisted under key.
func (d *DB) Sequence(key string) (uint64, error) {
	var n uint64
	err := d.Update(func(t Txn) error {
		n = 0
		v, err := t.Get([]byte(key))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		n++
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, n)
		return t.Set([]byte(key), b)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// GC runs Badger's value-log garbage collection until no value-log file is worth rewriting (Open
// runs it every Options.GCInterval). On PostgreSQL it does nothing: autovacuum reclaims dead rows.
func (d *DB) GC() { d.b.gc() }

// Size reports the bytes of the store: Badger's LSM tree and value log; PostgreSQL's tables with
// their indexes and TOAST (second figure 0).
func (d *DB) Size() (lsm, vlog int64) { return d.b.size() }

// DiskSize returns the bytes of the store's files as they are on disk now (Size is Badger's estimate,
// refreshed about once a minute); on PostgreSQL the same as Size.
func (d *DB) DiskSize() int64 { return d.b.diskSize() }

// Backend names the store's backend: "badger" or "postgres".
func (d *DB) Backend() string {
	if _, ok := d.b.(*pgBackend); ok {
		return "postgres"
	}
	return "badger"
}

// GetMany reads several keys in t: values[i] is the value of keys[i], nil when it does not exist (an
// existing empty value is an empty, non-nil slice). On PostgreSQL the reads go out together, one
// round trip per getManyChunk keys instead of one per key (a replica applying the change feed reads
// every key another replica changed); elsewhere it is Get for each key.
func GetMany(t Txn, keys [][]byte) ([][]byte, error) {
	if m, ok := t.(interface {
		getMany(keys [][]byte) ([][]byte, error)
	}); ok {
		return m.getMany(keys)
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := t.Get(k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
