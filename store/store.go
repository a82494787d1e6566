// Package store persists the server's data in an embedded Badger database.
//
// It knows bytes and keys, not HTTP and not the domain: the domain packages encode their records
// and choose their keys through the small Txn interface below, which carries no Badger types so that
// a second backend is an addition. Writes are synchronous (an answered write survives kill -9) and one
// request is one transaction.
//
// Key layout (each domain documents its own keys next to its code):
//
//	meta/schema                 schema version (uint32, big endian)
//	fleet/...                   resolver records (resolver/store.go)
//	core/...                    engine records (engine/store.go)
//	auth/...                    accounts, sessions, tokens, audit log (auth)
//	policy/...                  SDL master tables (policy)
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// SchemaVersion is the layout version written at first open and checked afterwards.
const SchemaVersion uint32 = 1

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("store: key not found")

// ErrConflict is returned by Update when a concurrent transaction committed a write to a key this one
// read; the caller may run the (side-effect free) function again.
var ErrConflict = errors.New("store: transaction conflict")

// ErrTooBig is returned when a single transaction outgrows the backend's limits; callers split the work.
var ErrTooBig = errors.New("store: transaction too big")

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

// ErrLocked is Open's answer when another process (a running sotad) holds the store's directory lock.
var ErrLocked = errors.New("the store is in use by another process (a running sotad?)")

// DB is the store handle.
type DB struct {
	db     *badger.DB
	stopGC chan struct{}
	gcDone chan struct{}
	hook   *Hook // set on a handle from With
	// writes keeps value-log GC apart from writes: Badger's rewrite reads the memtable's highest
	// version without the lock its writers hold (a data race upstream, badger v4.9.6). Writes share
	// it; GC takes it alone, and only when no write is under way.
	writes *sync.RWMutex
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

// Committed reports whether the hook has run in a transaction that committed.
func (h *Hook) Committed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.commit
}

func (h *Hook) claim() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.claimed || h.commit {
		return false
	}
	h.claimed = true
	return true
}

func (h *Hook) settle(committed bool) {
	h.mu.Lock()
	h.claimed, h.commit = false, h.commit || committed
	h.mu.Unlock()
}

// With returns a handle on the same store whose first committing Update also runs h, after the
// caller's function succeeded and in its transaction. Reads, batches and the other handles are
// unaffected. The handle must not be closed.
func (d *DB) With(h *Hook) *DB {
	if h == nil {
		return d
	}
	return &DB{db: d.db, hook: h, writes: d.writes}
}

// DefaultGCInterval is how often the value log is garbage-collected when Options.GCInterval is zero.
const DefaultGCInterval = 5 * time.Minute

// Options tunes Open.
type Options struct {
	InMemory bool // for benchmarks only; tests use a temporary directory
	// GCInterval is how often value-log garbage collection runs (DefaultGCInterval when zero, never
	// when negative). Without it Badger's value log keeps every overwritten value and the data
	// directory only grows.
	GCInterval time.Duration

	tune func(badger.Options) badger.Options // tests: smaller files and memtables
}

// Open opens (creating if needed) the store in dir with synchronous writes.
func Open(dir string, o Options) (*DB, error) {
	if !o.InMemory {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("data directory %s: %w", dir, err)
		}
	}
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(nil).
		WithInMemory(o.InMemory).
		WithNumVersionsToKeep(1).
		WithCompactL0OnClose(true)
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("")
	}
	if o.tune != nil {
		bo = o.tune(bo)
	}
	bdb, err := badger.Open(bo)
	// Badger flattens the flock error into text ("Cannot acquire directory lock ..."), so errors.Is
	// cannot see EWOULDBLOCK through it.
	if err != nil && (errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "Cannot acquire directory lock")) {
		return nil, fmt.Errorf("open store in %s: %w", dir, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", dir, err)
	}
	d := &DB{db: bdb, writes: new(sync.RWMutex)}
	if err := d.checkSchema(); err != nil {
		bdb.Close()
		return nil, err
	}
	interval := o.GCInterval
	if interval == 0 {
		interval = DefaultGCInterval
	}
	if !o.InMemory && interval > 0 {
		d.stopGC, d.gcDone = make(chan struct{}), make(chan struct{})
		go d.gcLoop(interval)
	}
	return d, nil
}

// gcLoop runs GC every interval until Close.
func (d *DB) gcLoop(interval time.Duration) {
	defer close(d.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stopGC:
			return
		case <-t.C:
			d.GC()
		}
	}
}

var schemaKey = []byte("meta/schema")

func (d *DB) checkSchema() error {
	return d.Update(func(t Txn) error {
		v, err := t.Get(schemaKey)
		if errors.Is(err, ErrNotFound) {
			b := make([]byte, 4)
			binary.BigEndian.PutUint32(b, SchemaVersion)
			return t.Set(schemaKey, b)
		}
		if err != nil {
			return err
		}
		if len(v) != 4 || binary.BigEndian.Uint32(v) != SchemaVersion {
			return fmt.Errorf("store schema version %x, this server needs %d", v, SchemaVersion)
		}
		return nil
	})
}

// Close stops the garbage collection, flushes and closes the store.
func (d *DB) Close() error {
	if d.stopGC != nil {
		close(d.stopGC)
		<-d.gcDone
		d.stopGC = nil
	}
	return d.db.Close()
}

// Update runs fn in a read-write transaction and commits it durably.
func (d *DB) Update(fn func(Txn) error) error {
	h, claimed := d.hook, false
	d.writes.RLock()
	defer d.writes.RUnlock()
	err := d.db.Update(func(t *badger.Txn) error {
		if err := fn(txn{t}); err != nil {
			return err
		}
		if h != nil && h.claim() {
			claimed = true
			return h.fn(txn{t})
		}
		return nil
	})
	if claimed {
		h.settle(err == nil)
	}
	if errors.Is(err, badger.ErrTxnTooBig) {
		return ErrTooBig
	}
	if errors.Is(err, badger.ErrConflict) {
		return ErrConflict
	}
	return err
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(Txn) error) error {
	return d.db.View(func(t *badger.Txn) error { return fn(txn{t}) })
}

// NewBatch starts a bulk write.
func (d *DB) NewBatch() Batch {
	d.writes.RLock()
	return &batch{wb: d.db.NewWriteBatch(), done: d.writes.RUnlock}
}

// MaxBatchCount is the number of writes a caller may safely put in one Update.
func (d *DB) MaxBatchCount() int64 { return d.db.MaxBatchCount() }

// Sequence returns a monotonically increasing number persisted under key.
func (d *DB) Sequence(key string) (uint64, error) {
	var n uint64
	err := d.Update(func(t Txn) error {
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
	return n, err
}

// GC runs value-log garbage collection until no value-log file is worth rewriting (Open runs it
// every Options.GCInterval).
// A round that finds writes under way for gcWait gives up until the next.
func (d *DB) GC() {
	for {
		deadline := time.Now().Add(gcWait)
		for !d.writes.TryLock() {
			if time.Now().After(deadline) {
				return
			}
			time.Sleep(time.Millisecond)
		}
		err := d.db.RunValueLogGC(0.5)
		d.writes.Unlock()
		if err != nil {
			return
		}
	}
}

const gcWait = 10 * time.Second

// Size reports the bytes of the LSM tree and of the value log.
func (d *DB) Size() (lsm, vlog int64) { return d.db.Size() }

type txn struct{ t *badger.Txn }

func (x txn) Get(key []byte) ([]byte, error) {
	it, err := x.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return it.ValueCopy(nil)
}

func (x txn) Has(key []byte) (bool, error) {
	_, err := x.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (x txn) Set(key, value []byte) error {
	err := x.t.Set(key, value)
	if errors.Is(err, badger.ErrTxnTooBig) {
		return ErrTooBig
	}
	return err
}

func (x txn) Delete(key []byte) error {
	err := x.t.Delete(key)
	if errors.Is(err, badger.ErrTxnTooBig) {
		return ErrTooBig
	}
	return err
}

func (x txn) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	o := badger.DefaultIteratorOptions
	o.Prefix = prefix
	it := x.t.NewIterator(o)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		err := item.Value(func(v []byte) error { return fn(item.Key(), v) })
		if err != nil {
			return err
		}
	}
	return nil
}

func (x txn) IterateKeys(prefix []byte, fn func(key []byte) error) error {
	o := badger.DefaultIteratorOptions
	o.Prefix = prefix
	o.PrefetchValues = false
	it := x.t.NewIterator(o)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if err := fn(it.Item().Key()); err != nil {
			return err
		}
	}
	return nil
}

type batch struct {
	wb   *badger.WriteBatch
	done func() // releases the store's writes lock, once
}

func (b *batch) Set(key, value []byte) error { return b.wb.Set(key, value) }
func (b *batch) Delete(key []byte) error     { return b.wb.Delete(key) }
func (b *batch) Flush() error {
	defer b.release()
	return b.wb.Flush()
}
func (b *batch) Cancel() {
	defer b.release()
	b.wb.Cancel()
}

func (b *batch) release() {
	if b.done != nil {
		b.done()
		b.done = nil
	}
}

// DiskSize returns the bytes of the store's files as they are on disk now (Size is Badger's estimate,
// refreshed about once a minute).
func (d *DB) DiskSize() int64 {
	o := d.db.Opts()
	if o.InMemory {
		lsm, vlog := d.db.Size()
		return lsm + vlog
	}
	var n int64
	seen := map[string]bool{}
	for _, dir := range []string{o.Dir, o.ValueDir} {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
				n += info.Size()
			}
		}
	}
	return n
}
