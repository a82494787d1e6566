package store

// The change feed: how replicas (several sotad processes on one PostgreSQL store) keep their
// in-memory state (the fleet index, caches) fresh.
//
// Writing. On PostgreSQL every read-write transaction that wrote anything, and every Batch chunk,
// inserts in the same transaction one row into changes(seq, keys, origin, at) listing the keys it set
// or deleted (migrations/002_changes.sql). One row per transaction rather than per key: a bulk chunk
// of 10,000 keys costs one insert. The row carries keys, not values: a replica applies an entry by
// reading the keys' current values, so applying an entry twice, late or out of order is harmless. The
// row is inserted last, just before COMMIT, so that the time between taking a seq and committing it
// is as short as it can be.
//
// Reading. Each process polls (Options.FeedInterval, DefaultFeedInterval): it reads the rows above the
// highest seq it has seen plus the "gaps" below it, and hands the keys to the subscribers whose prefix
// they have (Subscribe), skipping its own rows (its own code paths changed its memory already). Seqs
// can commit out of order (a transaction that took seq 7 may commit after the one that took 8), and
// a transaction that rolled back leaves its seq unused forever, so every seq skipped over becomes a
// gap that the next polls look for again, until its row shows up or feedGapTimeout passes. Nothing
// depends on LISTEN/NOTIFY (CockroachDB has none): the latency is at most one poll interval plus the
// time to apply.
//
// Read-your-writes across replicas. CatchUp starts a poll (or waits for one that started after the
// call) and returns when its entries are applied: every write acknowledged to anyone before CatchUp
// was called has committed, so its row is visible to that poll. Most of the time nothing is new, so
// CatchUp first runs a probe (each shared by the callers that waited for it):
// one query that finds no other process's row this process has not applied ends the catch-up. When
// nothing is new that is one round trip. The domains call it at the start of the requests that must see every acknowledged write
// (resolve, dry run, queue, campaign preview and launch).
//
// Truncation. Any process deletes the rows older than Options.FeedRetention (DefaultFeedRetention),
// once per feedTrimEvery, and records the highest seq deleted in changes_trim. A process that finds
// that mark above what it has read (it was stopped or cut off for longer than the retention) cannot
// know what it missed: its subscribers get a nil key list, which means "reload everything".
//
// On Badger (one process owns the directory) there is no feed: Subscribe and CatchUp do nothing.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	// DefaultFeedInterval is how often a PostgreSQL store polls the change feed when
	// Options.FeedInterval is zero: another replica's write reaches this one's memory within about
	// this long plus the poll's and the apply's round trips (CatchUp does not wait for it). A poll that
	// finds nothing is one indexed read, so 100 a second per replica cost the database little; at 50 ms
	// the interval alone was most of the median lag and half of the 100 ms budget of its p99, and at
	// 25 ms the p99 of BenchmarkFeedLag on a quiet machine was 28-126 ms (2 of 5 runs over budget)
	// against 18-83 ms at 10 ms.
	DefaultFeedInterval = 10 * time.Millisecond
	// DefaultFeedRetention is how long change-feed rows are kept when Options.FeedRetention is zero.
	DefaultFeedRetention = time.Hour

	feedGapTimeout  = time.Minute // a seq not seen for this long was rolled back
	feedPage        = 1000        // rows read per query
	feedStartWindow = 1000        // at open, missing seqs this far below the head are gaps
	feedMaxGapSpan  = 100_000     // a jump of the sequence wider than this is not tracked seq by seq
	feedTrimEvery   = time.Minute
)

// Subscribe calls fn with the keys under prefix that other processes on the same store changed (set
// or deleted), in batches, from the goroutine that polls the feed (the background poller or a
// CatchUp caller): fn reads the keys' current values itself and must not call CatchUp. A nil keys
// means that this process cannot tell what changed (it fell behind the feed's retention): reload
// everything under the prefix. When fn fails (the store could not be read) the same keys are handed
// to it again at the next poll, with the new ones, and the poll (a CatchUp) returns the error. A subscriber that loads its state at start subscribes first, so that
// nothing committed after its load is missed. On Badger it does nothing (no other process can write).
func (d *DB) Subscribe(prefix string, fn func(keys [][]byte) error) {
	if f := d.feed(); f != nil {
		f.smu.Lock()
		f.subs = append(f.subs, &subscriber{prefix: prefix, fn: fn})
		f.smu.Unlock()
	}
}

// Following is a subscription that holds what the feed hands over until Ready: a domain subscribes
// before it loads its state, and applies what arrived during the load after it (those keys may have
// been written after the load's snapshot).
type Following struct {
	apply   func(keys [][]byte, reload bool) error
	mu      sync.Mutex
	ready   bool
	pending [][]byte
	reload  bool
}

// Follow subscribes apply to prefix (see Subscribe; reload is true when the keys are nil, that is when
// everything under the prefix must be read again), holding every call until Ready.
func (d *DB) Follow(prefix string, apply func(keys [][]byte, reload bool) error) *Following {
	f := &Following{apply: apply}
	d.Subscribe(prefix, func(keys [][]byte) error {
		f.mu.Lock()
		if !f.ready {
			f.pending = append(f.pending, keys...)
			f.reload = f.reload || keys == nil
			f.mu.Unlock()
			return nil
		}
		f.mu.Unlock()
		return apply(keys, keys == nil)
	})
	return f
}

// Ready applies what arrived since Follow and lets every later change through at once.
func (f *Following) Ready() error {
	f.mu.Lock()
	f.ready = true
	keys, reload := f.pending, f.reload
	f.pending, f.reload = nil, false
	f.mu.Unlock()
	if len(keys) > 0 || reload {
		return f.apply(keys, reload)
	}
	return nil
}

// CatchUp applies every change that any process committed before the call (read-your-writes across
// replicas): it returns once the subscribers have been handed those keys. One round trip when nothing
// is new; nil at once on Badger.
func (d *DB) CatchUp(ctx context.Context) error {
	if f := d.feed(); f != nil {
		return f.catchUp(ctx)
	}
	return nil
}

func (d *DB) feed() *feed {
	if b, ok := d.b.(*pgBackend); ok {
		return b.feed
	}
	return nil
}

type subscriber struct {
	prefix string
	fn     func(keys [][]byte) error
	// what fn failed to apply, under the feed's lock: handed over again at the next poll
	retry  [][]byte
	reload bool
}

// feed is one process's reader of the change feed.
type feed struct {
	pool      *pgxpool.Pool
	origin    string // this process's rows
	interval  time.Duration
	retention time.Duration

	smu  sync.RWMutex
	subs []*subscriber

	// One poll runs at a time. mu guards running, completed, lastErr and done: the callers that wait
	// for a poll all wake at once when done is closed (a poll ends), rather than one after another.
	mu        sync.Mutex
	running   bool
	started   atomic.Uint64 // polls started
	completed uint64        // the number of the last poll that ended
	lastErr   error         // its error
	ended     chan struct{} // closed when the poll in progress ends

	mark     atomic.Pointer[mark] // what the last completed poll had applied (probes)
	pmu      sync.Mutex           // guards probing and waiting
	probing  int                  // probes running
	waiting  *probeGroup          // callers waiting for the next probe to start
	maxSeen  int64                // the highest seq read
	gaps     map[int64]time.Time
	lastTrim time.Time
	failing  bool

	stop chan struct{}
	done chan struct{}
}

const insertChange = `INSERT INTO changes (keys, origin) VALUES ($1, $2)`

// openFeed reads the feed's head and starts polling.
func openFeed(ctx context.Context, pool *pgxpool.Pool, o Options) (*feed, error) {
	rnd := make([]byte, 6)
	rand.Read(rnd)
	f := &feed{
		pool:      pool,
		origin:    strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd),
		interval:  o.FeedInterval,
		retention: o.FeedRetention,
		ended:     make(chan struct{}),
		gaps:      map[int64]time.Time{},
		lastTrim:  time.Now(),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if f.interval == 0 {
		f.interval = DefaultFeedInterval
	}
	if f.retention <= 0 {
		f.retention = DefaultFeedRetention
	}
	var head, upto int64
	err := pool.QueryRow(ctx, `SELECT coalesce((SELECT max(seq) FROM changes), 0), (SELECT upto FROM changes_trim WHERE id = 1)`).Scan(&head, &upto)
	if err != nil {
		return nil, fmt.Errorf("store: change feed: %w", err)
	}
	// transactions in flight now may have taken seqs below the head: the recent missing ones are gaps
	rows, err := pool.Query(ctx, `SELECT seq FROM changes WHERE seq > $1`, head-feedStartWindow)
	if err != nil {
		return nil, fmt.Errorf("store: change feed: %w", err)
	}
	present, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("store: change feed: %w", err)
	}
	now := time.Now()
	for s := max(head-feedStartWindow+1, upto+1, 1); s <= head; s++ {
		f.gaps[s] = now
	}
	for _, s := range present {
		delete(f.gaps, s)
	}
	f.maxSeen = max(head, upto)
	f.publish()
	if f.interval < 0 {
		close(f.done)
		return f, nil
	}
	go f.run()
	return f, nil
}

func (f *feed) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// run polls every interval and trims every feedTrimEvery until close.
func (f *feed) run() {
	defer close(f.done)
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := f.pollAfter(ctx, f.started.Load())
		if err == nil && time.Since(f.lastTrim) >= feedTrimEvery {
			f.lastTrim = time.Now()
			err = f.trim(ctx)
		}
		cancel()
		if (err != nil) != f.failing {
			f.failing = err != nil
			if err != nil {
				slog.Warn("the change feed cannot be read; this replica's memory may be stale", "err", err)
			} else {
				slog.Info("the change feed is read again")
			}
		}
	}
}

// catchUp returns once everything any process committed before the call is applied: at once when
// a probe that started after the call finds no other process's row that this process has not
// applied, else once a poll that started after the call has ended (with its error).
func (f *feed) catchUp(ctx context.Context) error {
	arrived := f.started.Load()
	if f.interval > 0 && f.probe(ctx) {
		return nil
	}
	return f.pollAfter(ctx, arrived)
}

// pollAfter returns once a poll that started after the arrived-th poll has ended, with its error,
// running one itself unless one is in progress (then it waits for it to end, and for the next).
func (f *feed) pollAfter(ctx context.Context, arrived uint64) error {
	for {
		f.mu.Lock()
		if f.completed > arrived {
			err := f.lastErr
			f.mu.Unlock()
			return err // a poll that started after this call has applied everything committed before it
		}
		if !f.running {
			f.running = true
			n := f.started.Add(1)
			f.mu.Unlock()
			err := f.poll(ctx)
			f.mu.Lock()
			f.running, f.completed, f.lastErr = false, n, err
			close(f.ended)
			f.ended = make(chan struct{})
			f.mu.Unlock()
			return err
		}
		ended := f.ended
		f.mu.Unlock()
		select {
		case <-ended:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Probes. Most catch-ups find nothing new, and a poll (which reads and applies, one at a time) makes
// every concurrent caller wait for the one in progress and the next. A probe only asks whether the
// feed has a row of another process that this process has not applied (above the applied mark or
// among its gaps, or rows trimmed past it): none means that every write acknowledged before the
// probe started is applied here. Callers that arrive while probeLanes probes are running share the
// next one, so each probe answers every caller that waited for it. One lane: on the 2-core machine
// BenchmarkDevicePoll on PostgreSQL served 19,200-19,400 polls/s with one, 13,300-19,200 with two,
// 10,500 with four and 5,600 with sixteen (more lanes are more queries for the same answers).
const probeLanes = 1

// mark is what a completed poll had applied: every seq up to seen but the gaps.
type mark struct {
	seen int64
	gaps []int64
}

// publish records the applied mark; called under the poll (f.maxSeen and f.gaps are the poll's).
func (f *feed) publish() {
	gaps := make([]int64, 0, len(f.gaps))
	for s := range f.gaps {
		gaps = append(gaps, s)
	}
	f.mark.Store(&mark{seen: f.maxSeen, gaps: gaps})
}

type probeGroup struct {
	done  chan struct{}
	fresh bool
}

// probe reports whether a probe that started after the call found nothing to apply.
func (f *feed) probe(ctx context.Context) bool {
	f.pmu.Lock()
	g := f.waiting
	if g == nil {
		g = &probeGroup{done: make(chan struct{})}
		f.waiting = g
	}
	start := f.probing < probeLanes
	if start {
		f.waiting = nil
		f.probing++
	}
	f.pmu.Unlock()
	if start {
		f.runProbe(g)
	}
	select {
	case <-g.done:
		return g.fresh
	case <-ctx.Done():
		return false
	}
}

// runProbe runs g's probe, then starts the group that gathered meanwhile, if any, in its place.
func (f *feed) runProbe(g *probeGroup) {
	g.fresh = f.probeOnce()
	close(g.done)
	f.pmu.Lock()
	next := f.waiting
	if next != nil {
		f.waiting = nil
	} else {
		f.probing--
	}
	f.pmu.Unlock()
	if next != nil {
		go f.runProbe(next)
	}
}

const probeSQL = `SELECT EXISTS (SELECT 1 FROM changes WHERE (seq > $1 OR seq = ANY($2::bigint[])) AND origin <> $3)
	OR coalesce((SELECT upto FROM changes_trim WHERE id = 1), 0) > $1`

// probeOnce is one probe: true when nothing is left to apply (false also when it failed: the caller
// then polls, which reports the error).
func (f *feed) probeOnce() bool {
	m := f.mark.Load()
	if m == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var more bool
	if err := f.pool.QueryRow(ctx, probeSQL, m.seen, m.gaps, f.origin).Scan(&more); err != nil {
		return false
	}
	return !more
}

type entry struct {
	seq    int64
	keys   [][]byte
	origin string
}

// poll reads and applies the rows above maxSeen and the gaps, a page at a time; one runs at a time.
func (f *feed) poll(ctx context.Context) error {
	for {
		gaps := make([]int64, 0, len(f.gaps))
		for s := range f.gaps {
			gaps = append(gaps, s)
		}
		b := &pgx.Batch{}
		b.Queue(`SELECT seq, keys, origin FROM changes WHERE seq > $1 OR seq = ANY($2::bigint[]) ORDER BY seq LIMIT $3`, f.maxSeen, gaps, feedPage)
		b.Queue(`SELECT upto FROM changes_trim WHERE id = 1`)
		br := f.pool.SendBatch(ctx, b)
		rows, err := br.Query()
		var es []entry
		if err == nil {
			for rows.Next() {
				var e entry
				if err = rows.Scan(&e.seq, &e.keys, &e.origin); err != nil {
					break
				}
				es = append(es, e)
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		var upto int64
		if err == nil {
			err = br.QueryRow().Scan(&upto)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("store: change feed: %w", err)
		}
		now := time.Now()
		if upto > f.maxSeen {
			// rows this process never read were deleted: its subscribers reload everything
			f.maxSeen = upto
			for s := range f.gaps {
				if s <= upto {
					delete(f.gaps, s)
				}
			}
			if err := f.deliver(nil, true); err != nil {
				return err
			}
		}
		var keys [][]byte
		for _, e := range es {
			if e.seq > f.maxSeen {
				if e.seq-f.maxSeen-1 <= feedMaxGapSpan {
					for s := f.maxSeen + 1; s < e.seq; s++ {
						f.gaps[s] = now
					}
				}
				f.maxSeen = e.seq
			} else {
				delete(f.gaps, e.seq)
			}
			if e.origin != f.origin {
				keys = append(keys, e.keys...)
			}
		}
		derr := f.deliver(keys, false)
		for s, t := range f.gaps {
			if now.Sub(t) > feedGapTimeout {
				delete(f.gaps, s)
			}
		}
		if len(es) < feedPage || derr != nil {
			if derr == nil {
				f.publish()
			}
			return derr
		}
	}
}

// deliver hands each subscriber the keys under its prefix (all of them: nil, when reload is set),
// with what it failed to apply before; it returns the first subscriber's error.
func (f *feed) deliver(keys [][]byte, reload bool) error {
	f.smu.RLock()
	subs := f.subs
	f.smu.RUnlock()
	var first error
	for _, s := range subs {
		var mine [][]byte
		if !reload && !s.reload {
			mine = s.retry
			for _, k := range keys {
				if len(k) >= len(s.prefix) && string(k[:len(s.prefix)]) == s.prefix {
					mine = append(mine, k)
				}
			}
			if len(mine) == 0 {
				continue
			}
		}
		if err := s.fn(mine); err != nil {
			s.retry, s.reload = mine, mine == nil
			if first == nil {
				first = fmt.Errorf("store: change feed: apply: %w", err)
			}
			continue
		}
		s.retry, s.reload = nil, false
	}
	return first
}

// trim deletes the rows older than the retention and records the highest seq deleted.
func (f *feed) trim(ctx context.Context) error {
	return pgx.BeginTxFunc(ctx, f.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var upto int64
		err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM changes WHERE at < now() - $1::interval`,
			strconv.FormatInt(int64(f.retention/time.Millisecond), 10)+" milliseconds").Scan(&upto)
		if err != nil || upto == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE changes_trim SET upto = greatest(upto, $1) WHERE id = 1`, upto); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM changes WHERE seq <= $1`, upto)
		return err
	})
}

// changedKeys sorts and deduplicates the keys a transaction wrote.
func changedKeys(keys []string) [][]byte {
	slices.Sort(keys)
	keys = slices.Compact(keys)
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

// noteChanged remembers the keys of the buffered writes before they are sent.
func (x *pgTxn) noteChanged() {
	for k := range x.pending {
		x.changed = append(x.changed, k)
	}
}

// appendChanges queues the transaction's change-feed row on b, the commit's batch (last before its
// COMMIT), and returns how many statements it queued.
func (x *pgTxn) appendChanges(b *pgx.Batch) int {
	if len(x.changed) == 0 || x.feed == nil {
		return 0
	}
	b.Queue(insertChange, changedKeys(x.changed), x.feed.origin)
	return 1
}

// logBatch inserts the change-feed row of a Batch chunk in its transaction.
func (f *feed) logBatch(ctx context.Context, tx pgx.Tx, pending map[string]pendingOp) error {
	if f == nil || len(pending) == 0 {
		return nil
	}
	keys := make([]string, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	_, err := tx.Exec(ctx, insertChange, changedKeys(keys), f.origin)
	return err
}
