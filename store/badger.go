package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// SchemaVersion is the layout version a Badger store records at first open and checks afterwards.
const SchemaVersion uint32 = 1

type badgerOptions = badger.Options

// badgerBackend is the embedded store: one Badger directory with synchronous writes.
type badgerBackend struct {
	db     *badger.DB
	stopGC chan struct{}
	gcDone chan struct{}
	// writes keeps value-log GC apart from writes: Badger's rewrite reads the memtable's highest
	// version without the lock its writers hold (a data race upstream, badger v4.9.6). Writes share
	// it; GC takes it alone, and only when no write is under way.
	writes *sync.RWMutex
}

// Open opens (creating if needed) the Badger store in dir with synchronous writes.
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
	b := &badgerBackend{db: bdb, writes: new(sync.RWMutex)}
	d := &DB{b: b}
	if err := d.checkSchema(); err != nil {
		bdb.Close()
		return nil, err
	}
	interval := o.GCInterval
	if interval == 0 {
		interval = DefaultGCInterval
	}
	if !o.InMemory && interval > 0 {
		b.stopGC, b.gcDone = make(chan struct{}), make(chan struct{})
		go b.gcLoop(interval)
	}
	return d, nil
}

// gcLoop runs GC every interval until Close.
func (d *badgerBackend) gcLoop(interval time.Duration) {
	defer close(d.gcDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.stopGC:
			return
		case <-t.C:
			d.gc()
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

func (d *badgerBackend) close() error {
	if d.stopGC != nil {
		close(d.stopGC)
		<-d.gcDone
		d.stopGC = nil
	}
	localLeases.forget(d)
	return d.db.Close()
}

func (d *badgerBackend) update(fn func(Txn) error) error {
	d.writes.RLock()
	defer d.writes.RUnlock()
	err := d.db.Update(func(t *badger.Txn) error { return fn(txn{t}) })
	if errors.Is(err, badger.ErrTxnTooBig) {
		return ErrTooBig
	}
	if errors.Is(err, badger.ErrConflict) {
		return ErrConflict
	}
	return err
}

func (d *badgerBackend) view(fn func(Txn) error) error {
	return d.db.View(func(t *badger.Txn) error { return fn(txn{t}) })
}

func (d *badgerBackend) newBatch() Batch {
	d.writes.RLock()
	return &batch{wb: d.db.NewWriteBatch(), done: d.writes.RUnlock}
}

func (d *badgerBackend) maxBatchCount() int64 { return d.db.MaxBatchCount() }

// gc collects the value log until no file is worth rewriting. A round that finds writes under way
// for gcWait gives up until the next.
func (d *badgerBackend) gc() {
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

func (d *badgerBackend) size() (lsm, vlog int64) { return d.db.Size() }

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

// Set and Delete copy their arguments: Badger keeps the slices until the commit, and a caller may
// pass the key of an iteration, which Badger reuses for the next key.
func (x txn) Set(key, value []byte) error {
	err := x.t.Set(slices.Clone(key), slices.Clone(value))
	if errors.Is(err, badger.ErrTxnTooBig) {
		return ErrTooBig
	}
	return err
}

func (x txn) Delete(key []byte) error {
	err := x.t.Delete(slices.Clone(key))
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

func (b *batch) Set(key, value []byte) error { return b.wb.Set(slices.Clone(key), slices.Clone(value)) }
func (b *batch) Delete(key []byte) error     { return b.wb.Delete(slices.Clone(key)) }
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

func (d *badgerBackend) diskSize() int64 {
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
