package store

// The PostgreSQL backend. The SQL stays within what PostgreSQL 14+, CockroachDB and YugabyteDB run:
// BYTEA columns, INSERT ... ON CONFLICT, unnest of arrays, row-value comparisons, no PL/pgSQL, no
// LISTEN/NOTIFY.
//
// Tables with real keys. A key of a hot family is routed by its prefix to the family's table, whose
// primary key is the key's '/'-separated segments (the last column takes the rest of the key, '/'
// included); every other key is a row of kv(key, value):
//
//	fleet/v/<vin>                     vehicles(vin, record)
//	core/req/<request_id>             update_requests(request_id, record)
//	core/upd/<vin>/<update_id>        updates(vin, update_id, record)
//	core/rs/<request_id>/<status>/<vin>  update_status(request_id, status, vin), no value
//	core/xfer/<vin>/<update_id>       transfers(vin, update_id, record)
//	core/act/<action_id>              actions(action_id, target)
//	core/seen/<vin>                   contacts(vin, seen_at): presence, a vehicle's last contact
//	core/wake/<vin>                   wakes(vin, woken_at): presence, a vehicle's last wake-up
//
// The order of the primary key (c1, c2, ...) is the byte order of "c1/c2/..." as long as no value of a
// column other than the last is a proper prefix of another one followed by a byte below '/'. So a
// non-last segment fits its column only when all its bytes are above '/' (VINs, statuses), or, for a
// column of fixed length (request ids are 36-character UUIDs), when it has that length. A key of a
// family that does not fit (too few segments, such a segment, a value under a family without one)
// lives in kv like any other key, and a prefix scan merges kv with the tables it spans, in byte order.
// The domains' keys always fit.
//
// Transactions: Update is one SERIALIZABLE transaction, View one REPEATABLE READ READ ONLY snapshot.
// A serialization failure (40001) or deadlock (40P01) is ErrConflict, which DB.Update runs again.
// Writes are buffered in the transaction (a Get or Has of a written key answers from the buffer) and
// sent as multi-row upserts and deletes before a scan that could see them, when the buffer is full,
// and at commit. Round trips are few: BEGIN travels with the transaction's first statement, COMMIT
// with its last writes, and the first page of a scan over kv and a table is one UNION ALL statement,
// so a device poll's View is two round trips and a write-only Update one. Scans read pages by key
// (keyset pagination), so a scan of a million keys never holds more than a page, and the function
// called for each key may run queries of its own.
//
// Connections: a pool of pgDefaultConns unless the URL says pool_max_conns. A transaction holds one
// connection from its first statement to its end, so a function that opens a second transaction
// inside its first (no domain does) would need two.
//
// Limits: a transaction writes at most pgMaxTxnWrites keys and pgMaxTxnBytes bytes of keys and values
// (ErrTooBig beyond; MaxBatchCount is pgMaxTxnWrites). A Batch commits every pgBatchChunk writes.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	pgMaxTxnWrites = 100_000
	pgMaxTxnBytes  = 64 << 20
	pgFlushAt      = 2_000  // buffered writes of a transaction sent at once
	pgBatchChunk   = 10_000 // writes of a Batch committed at once
	pgFirstPage    = 128    // rows of a scan's first page; later pages double up to pgMaxPage
	pgMaxPage      = 8_192
	pgDefaultConns = 16
)

// table is where the keys of one family live.
type table struct {
	name   string
	prefix string   // the family's key prefix, ending in '/'; "" for kv
	cols   []string // key columns in key order
	value  string   // value column; "" when the family's keys carry no value
	fixed  []int    // per column: a fixed length that makes a segment fit (0: bytes above '/')

	colList string // "c1, c2"
}

// tables are the hot key families, sorted by prefix; kvTable holds everything else.
var (
	tables = []*table{
		{name: "update_status", prefix: "core/rs/", cols: []string{"request_id", "status", "vin"}, fixed: []int{36, 0, 0}},
		{name: "actions", prefix: "core/act/", cols: []string{"action_id"}, value: "target"},
		{name: "update_requests", prefix: "core/req/", cols: []string{"request_id"}, value: "record"},
		{name: "updates", prefix: "core/upd/", cols: []string{"vin", "update_id"}, value: "record"},
		{name: "transfers", prefix: "core/xfer/", cols: []string{"vin", "update_id"}, value: "record"},
		{name: "vehicles", prefix: "fleet/v/", cols: []string{"vin"}, value: "record"},
		{name: "contacts", prefix: "core/seen/", cols: []string{"vin"}, value: "seen_at"},
		{name: "wakes", prefix: "core/wake/", cols: []string{"vin"}, value: "woken_at"},
	}
	kvTable = &table{name: "kv", cols: []string{"key"}, value: "value"}
)

func init() {
	sort.Slice(tables, func(i, j int) bool { return tables[i].prefix < tables[j].prefix })
	for _, t := range append(slices.Clone(tables), kvTable) {
		t.colList = strings.Join(t.cols, ", ")
		if t.fixed == nil {
			t.fixed = make([]int, len(t.cols))
		}
	}
}

// segFits reports whether seg fits column i of t (see the top of this file).
func (t *table) segFits(i int, seg []byte) bool {
	if i == len(t.cols)-1 {
		return true
	}
	if t.fixed[i] > 0 {
		return len(seg) == t.fixed[i]
	}
	for _, c := range seg {
		if c <= '/' {
			return false
		}
	}
	return true
}

// route returns the table of key and its column values.
func route(key []byte) (*table, [][]byte) {
	for _, t := range tables {
		if !bytes.HasPrefix(key, []byte(t.prefix)) {
			continue
		}
		segs := bytes.SplitN(key[len(t.prefix):], []byte("/"), len(t.cols))
		if len(segs) != len(t.cols) {
			break
		}
		for i, s := range segs {
			if !t.segFits(i, s) {
				return kvTable, [][]byte{key}
			}
		}
		return t, segs
	}
	return kvTable, [][]byte{key}
}

// keyOf builds the key of a row of t from its column values, appending to dst.
func (t *table) keyOf(dst []byte, cols [][]byte) []byte {
	dst = append(dst, t.prefix...)
	for i, c := range cols {
		if i > 0 {
			dst = append(dst, '/')
		}
		dst = append(dst, c...)
	}
	return dst
}

// successor is the least key greater than every key with the prefix p; nil when there is none (p is
// empty or all 0xff).
func successor(p []byte) []byte {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xff {
			s := append([]byte(nil), p[:i+1]...)
			s[i]++
			return s
		}
	}
	return nil
}

// pgBackend is a store in a PostgreSQL database (the schema of the URL's search_path).
type pgBackend struct {
	pool *pgxpool.Pool
	feed *feed // the change feed (changes.go)
}

// parsePoolConfig reads a postgres:// URL. Parameters pgx does not know (search_path, ...) are sent
// as run-time parameters, so ?search_path=myschema puts the store in that schema.
func parsePoolConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store URL: %v", redact(err))
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = pgDefaultConns
	}
	return cfg, nil
}

// redact keeps a password out of an error that quotes the URL.
func redact(err error) string {
	s := err.Error()
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.Index(s[i:], "@"); j > 0 {
			if k := strings.Index(s[i:i+j], ":"); k > 0 {
				s = s[:i+k+1] + "xxxxx" + s[i+j:]
			}
		}
	}
	return s
}

func connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := parsePoolConfig(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: %v", redact(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL at %s:%d/%s: %v", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, redact(err))
	}
	return pool, nil
}

// OpenURL opens the PostgreSQL store at url, creating or migrating its schema first (migrations.go).
func OpenURL(ctx context.Context, url string, o Options) (*DB, error) {
	pool, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := migrate(ctx, pool, true); err != nil {
		pool.Close()
		return nil, err
	}
	f, err := openFeed(ctx, pool, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{b: &pgBackend{pool: pool, feed: f}}, nil
}

func (b *pgBackend) close() error {
	b.feed.close()
	b.pool.Close()
	return nil
}

// isConflict reports a serialization failure or deadlock.
func isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

const (
	beginRW = "BEGIN ISOLATION LEVEL SERIALIZABLE"
	beginRO = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
)

// begin returns a transaction on a pooled connection. BEGIN is not sent yet: it goes with the
// transaction's first statement, in one round trip (see pgTxn.send).
func (b *pgBackend) begin(ctx context.Context, readOnly bool) (*pgTxn, error) {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	x := &pgTxn{ctx: ctx, conn: conn, readOnly: readOnly, beginSQL: beginRW, feed: b.feed}
	if readOnly {
		x.beginSQL = beginRO
	} else {
		x.pending = map[string]pendingOp{}
	}
	return x, nil
}

// end releases the connection, rolling back what is still open.
func (x *pgTxn) end() {
	if x.begun && !x.done {
		x.conn.Exec(x.ctx, "ROLLBACK") // a connection that fails it is closed by the pool at release
	}
	x.conn.Release()
}

func (b *pgBackend) update(fn func(Txn) error) error {
	x, err := b.begin(context.Background(), false)
	if err != nil {
		return err
	}
	defer x.end()
	err = fn(x)
	if err == nil {
		err = x.commit()
	}
	switch {
	case err == nil:
		return nil
	case isConflict(err) || isConflict(x.failed):
		return ErrConflict
	case errors.Is(err, ErrTooBig):
		return ErrTooBig
	}
	return err
}

func (b *pgBackend) view(fn func(Txn) error) error {
	x, err := b.begin(context.Background(), true)
	if err != nil {
		return err
	}
	defer x.end()
	if err := fn(x); err != nil {
		if isConflict(err) || isConflict(x.failed) {
			return ErrConflict
		}
		return err
	}
	if !x.begun {
		return nil
	}
	_, err = x.conn.Exec(x.ctx, "COMMIT")
	x.done = err == nil
	if isConflict(err) {
		return ErrConflict
	}
	return err
}

func (b *pgBackend) maxBatchCount() int64 { return pgMaxTxnWrites }

func (b *pgBackend) gc() {}

func (b *pgBackend) size() (int64, int64) {
	names := []string{kvTable.name}
	for _, t := range tables {
		names = append(names, t.name)
	}
	var n int64
	err := b.pool.QueryRow(context.Background(),
		`SELECT coalesce(sum(pg_total_relation_size(t::regclass)), 0)::bigint FROM unnest($1::text[]) AS t`, names).Scan(&n)
	if err != nil {
		return 0, 0 // a database without pg_total_relation_size
	}
	return n, 0
}

func (b *pgBackend) diskSize() int64 { n, _ := b.size(); return n }

var errEmptyKey = errors.New("store: key cannot be empty")

// pendingOp is a buffered write: a value, or a delete.
type pendingOp struct {
	value []byte
	del   bool
}

// pgTxn is a transaction on one connection.
type pgTxn struct {
	ctx         context.Context
	conn        *pgxpool.Conn
	readOnly    bool
	beginSQL    string
	begun, done bool // BEGIN sent; COMMIT done
	pending     map[string]pendingOp
	writes      int
	bytes       int64
	failed      error    // the first error of the database: the transaction is over
	changed     []string // keys of the writes sent (the change feed's row, changes.go)
	feed        *feed
}

// batch returns a batch to send on the transaction: it starts with BEGIN when that was not sent yet.
func (x *pgTxn) batch() *pgx.Batch {
	b := &pgx.Batch{}
	if !x.begun {
		b.Queue(x.beginSQL)
	}
	return b
}

// send sends a batch from x.batch and reads the result of its BEGIN, if it has one; the caller reads
// the results of its own statements and closes the results.
func (x *pgTxn) send(b *pgx.Batch) (pgx.BatchResults, error) {
	if x.failed != nil {
		return nil, x.failed
	}
	br := x.conn.SendBatch(x.ctx, b)
	if !x.begun {
		x.begun = true
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, x.fail(err)
		}
	}
	return br, nil
}

// queryRow runs one statement that returns at most a row.
func (x *pgTxn) queryRow(sql string, args []any, dst ...any) error {
	b := x.batch()
	b.Queue(sql, args...)
	br, err := x.send(b)
	if err != nil {
		return err
	}
	err = br.QueryRow().Scan(dst...)
	if cerr := br.Close(); err == nil || errors.Is(err, pgx.ErrNoRows) && cerr != nil {
		err = cerr
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return x.fail(err)
}

// commit sends the buffered writes and COMMIT in one round trip (with BEGIN when nothing was sent
// before); a transaction that neither read nor wrote sends nothing.
func (x *pgTxn) commit() error {
	if x.failed != nil {
		return x.failed
	}
	if !x.begun && len(x.pending) == 0 {
		return nil
	}
	b := x.batch()
	x.noteChanged()
	n := appendWrites(b, x.pending)
	clear(x.pending)
	n += x.appendChanges(b)
	b.Queue("COMMIT")
	br, err := x.send(b)
	if err != nil {
		return err
	}
	for i := 0; i < n+1; i++ {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return x.fail(err)
	}
	x.done = true
	return nil
}

func (x *pgTxn) fail(err error) error {
	if err != nil && x.failed == nil && !errors.Is(err, pgx.ErrNoRows) {
		x.failed = err
	}
	return err
}

func (x *pgTxn) Get(key []byte) ([]byte, error) {
	if op, ok := x.pending[string(key)]; ok {
		if op.del {
			return nil, ErrNotFound
		}
		return slices.Clone(op.value), nil
	}
	t, segs := route(key)
	var v []byte
	var err error
	if t.value == "" {
		var one int
		err = x.queryRow(t.selectSQL("1"), anys(segs), &one)
		v = []byte{}
	} else {
		err = x.queryRow(t.selectSQL(t.value), anys(segs), &v)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// getManyChunk is how many point reads GetMany sends in one round trip.
const getManyChunk = 1000

// getMany is GetMany: the keys' SELECTs are sent as one pipelined batch per getManyChunk keys (the
// first with BEGIN when the transaction has not started); buffered writes answer for their keys.
func (x *pgTxn) getMany(keys [][]byte) ([][]byte, error) {
	out := make([][]byte, len(keys))
	var ask []int // the indexes of keys read from the database
	for i, k := range keys {
		if op, ok := x.pending[string(k)]; ok {
			if !op.del {
				out[i] = slices.Clone(op.value)
			}
			continue
		}
		ask = append(ask, i)
	}
	for len(ask) > 0 {
		chunk := ask[:min(len(ask), getManyChunk)]
		ask = ask[len(chunk):]
		b := x.batch()
		keysOnly := make([]bool, len(chunk))
		for j, i := range chunk {
			t, segs := route(keys[i])
			if t.value == "" {
				keysOnly[j] = true
				b.Queue(t.selectSQL("1"), anys(segs)...)
			} else {
				b.Queue(t.selectSQL(t.value), anys(segs)...)
			}
		}
		br, err := x.send(b)
		if err != nil {
			return nil, err
		}
		for j, i := range chunk {
			var v []byte
			if keysOnly[j] {
				var one int
				err = br.QueryRow().Scan(&one)
				v = []byte{}
			} else {
				err = br.QueryRow().Scan(&v)
			}
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
				continue
			}
			if err != nil {
				break
			}
			if v == nil {
				v = []byte{}
			}
			out[i] = v
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, x.fail(err)
		}
	}
	return out, nil
}

func (t *table) selectSQL(what string) string {
	var b strings.Builder
	b.WriteString("SELECT " + what + " FROM " + t.name + " WHERE ")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString(c + " = $" + strconv.Itoa(i+1))
	}
	return b.String()
}

func anys(segs [][]byte) []any {
	out := make([]any, len(segs))
	for i, s := range segs {
		out[i] = s
	}
	return out
}

func (x *pgTxn) Has(key []byte) (bool, error) {
	if op, ok := x.pending[string(key)]; ok {
		return !op.del, nil
	}
	t, segs := route(key)
	var one int
	err := x.queryRow(t.selectSQL("1"), anys(segs), &one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

func (x *pgTxn) write(key []byte, op pendingOp) error {
	if x.readOnly {
		return errors.New("store: write in a read-only transaction")
	}
	if x.failed != nil {
		return x.failed
	}
	if len(key) == 0 {
		return errEmptyKey
	}
	if t, _ := route(key); !op.del && t.value == "" && len(op.value) > 0 {
		return fmt.Errorf("store: keys under %s carry no value (table %s)", t.prefix, t.name)
	}
	x.writes++
	x.bytes += int64(len(key) + len(op.value))
	if x.writes > pgMaxTxnWrites || x.bytes > pgMaxTxnBytes {
		return ErrTooBig
	}
	x.pending[string(key)] = op
	if len(x.pending) >= pgFlushAt {
		return x.flush()
	}
	return nil
}

func (x *pgTxn) Set(key, value []byte) error {
	return x.write(key, pendingOp{value: slices.Clone(value)})
}

func (x *pgTxn) Delete(key []byte) error { return x.write(key, pendingOp{del: true}) }

// flush sends the buffered writes.
func (x *pgTxn) flush() error {
	if len(x.pending) == 0 {
		return nil
	}
	if x.failed != nil {
		return x.failed
	}
	b := x.batch()
	x.noteChanged()
	appendWrites(b, x.pending)
	clear(x.pending)
	br, err := x.send(b)
	if err != nil {
		return err
	}
	return x.fail(br.Close())
}

// flushRange sends the buffered writes when one of them has a key in [lo, hi) (hi nil: unbounded).
func (x *pgTxn) flushRange(lo, hi []byte) error {
	for k := range x.pending {
		if k >= string(lo) && (hi == nil || k < string(hi)) {
			return x.flush()
		}
	}
	return nil
}

// appendWrites queues buffered writes on b as one multi-row upsert and one delete per table, their
// rows in key order (so that concurrent writers lock rows in the same order), and returns how many
// statements it queued.
func appendWrites(b *pgx.Batch, pending map[string]pendingOp) int {
	keys := make([]string, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type rows struct {
		set, del [][][]byte // per column
		vals     [][]byte
	}
	by := map[*table]*rows{}
	var order []*table
	for _, k := range keys {
		op := pending[k]
		t, segs := route([]byte(k))
		r := by[t]
		if r == nil {
			r = &rows{set: make([][][]byte, len(t.cols)), del: make([][][]byte, len(t.cols))}
			by[t] = r
			order = append(order, t)
		}
		cols := r.set
		if op.del {
			cols = r.del
		} else {
			v := op.value
			if v == nil {
				v = []byte{}
			}
			r.vals = append(r.vals, v)
		}
		for i, s := range segs {
			cols[i] = append(cols[i], s) // cols shares its columns with r.set or r.del
		}
	}
	n := 0
	for _, t := range order {
		r := by[t]
		if len(r.del[0]) > 0 {
			b.Queue(t.deleteSQL(), anyCols(r.del)...)
			n++
		}
		if len(r.set[0]) > 0 {
			args := anyCols(r.set)
			if t.value != "" {
				args = append(args, r.vals)
			}
			b.Queue(t.upsertSQL(), args...)
			n++
		}
	}
	return n
}

func anyCols(cols [][][]byte) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = c
	}
	return out
}

func (t *table) params(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(i+1) + "::bytea[]"
	}
	return strings.Join(ps, ", ")
}

func (t *table) upsertSQL() string {
	if t.value == "" {
		return "INSERT INTO " + t.name + " (" + t.colList + ") SELECT * FROM unnest(" + t.params(len(t.cols)) +
			") ON CONFLICT (" + t.colList + ") DO NOTHING"
	}
	return "INSERT INTO " + t.name + " (" + t.colList + ", " + t.value + ") SELECT * FROM unnest(" + t.params(len(t.cols)+1) +
		") ON CONFLICT (" + t.colList + ") DO UPDATE SET " + t.value + " = excluded." + t.value
}

func (t *table) deleteSQL() string {
	if len(t.cols) == 1 {
		return "DELETE FROM " + t.name + " WHERE " + t.cols[0] + " = ANY($1::bytea[])"
	}
	return "DELETE FROM " + t.name + " WHERE (" + t.colList + ") IN (SELECT * FROM unnest(" + t.params(len(t.cols)) + "))"
}

func (x *pgTxn) Iterate(prefix []byte, fn func(key, value []byte) error) error {
	return x.scan(prefix, false, fn)
}

func (x *pgTxn) IterateKeys(prefix []byte, fn func(key []byte) error) error {
	return x.scan(prefix, true, func(k, _ []byte) error { return fn(k) })
}

// scan merges the kv rows of the prefix with the rows of the tables it spans (disjoint, in prefix
// order), page by page.
func (x *pgTxn) scan(prefix []byte, keysOnly bool, fn func(key, value []byte) error) error {
	if x.failed != nil {
		return x.failed
	}
	hi := successor(prefix)
	if err := x.flushRange(prefix, hi); err != nil {
		return err
	}
	kv := &stream{t: kvTable, keysOnly: keysOnly}
	kv.lo, kv.hi = prefix, hi
	if len(prefix) == 0 {
		kv.lo = nil
	}
	var tabs []*stream
	for _, t := range tables {
		s := tableStream(t, prefix, keysOnly)
		if s != nil {
			tabs = append(tabs, s)
		}
		if s != nil && bytes.HasPrefix(prefix, []byte(t.prefix)) && len(s.eq) == len(t.cols)-1 {
			// every key under the prefix fits t (its segments but the last are the prefix's, and
			// fit): none is in kv, whose query is skipped (a device poll's scan of its queue)
			kv.started, kv.done = true, true
		}
	}
	// the first pages of kv and of the first table in one statement, one round trip
	var first []*stream
	if !kv.done {
		first = append(first, kv)
	}
	if len(tabs) > 0 {
		first = append(first, tabs[0])
	}
	if err := x.fetch(first...); err != nil {
		return err
	}
	for {
		if err := x.ready(kv); err != nil {
			return err
		}
		for len(tabs) > 0 {
			if err := x.ready(tabs[0]); err != nil {
				return err
			}
			if tabs[0].pos < len(tabs[0].rows) {
				break
			}
			tabs = tabs[1:]
		}
		var next *stream
		kvHas := kv.pos < len(kv.rows)
		switch {
		case kvHas && len(tabs) > 0:
			next = kv
			if bytes.Compare(tabs[0].rows[tabs[0].pos].key, kv.rows[kv.pos].key) < 0 {
				next = tabs[0]
			}
		case kvHas:
			next = kv
		case len(tabs) > 0:
			next = tabs[0]
		default:
			return nil
		}
		r := next.rows[next.pos]
		next.pos++
		if err := fn(r.key, r.val); err != nil {
			return err
		}
	}
}

// ready fetches the next page of s when its page is used up.
func (x *pgTxn) ready(s *stream) error {
	if s.pos < len(s.rows) || s.done {
		return nil
	}
	return x.fetch(s)
}

// stream is one table's rows of a scan, a page at a time.
type stream struct {
	t        *table
	keysOnly bool
	eq       [][]byte // equality on the first len(eq) columns
	lo, hi   []byte   // range on column len(eq): lo nil: none; hi nil: unbounded
	after    [][]byte // the columns of the last row read (nil before the first page)
	limit    int
	rows     []row
	pos      int
	done     bool
	started  bool
}

type row struct {
	key, val []byte
	cols     [][]byte
}

// tableStream is the part of t a scan of prefix reads, nil when none.
func tableStream(t *table, prefix []byte, keysOnly bool) *stream {
	s := &stream{t: t, keysOnly: keysOnly}
	if bytes.HasPrefix([]byte(t.prefix), prefix) {
		return s // the whole table
	}
	if !bytes.HasPrefix(prefix, []byte(t.prefix)) {
		return nil
	}
	parts := bytes.SplitN(prefix[len(t.prefix):], []byte("/"), len(t.cols))
	for i, p := range parts[:len(parts)-1] {
		if !t.segFits(i, p) {
			return nil
		}
	}
	s.eq = parts[:len(parts)-1]
	if tail := parts[len(parts)-1]; len(tail) > 0 {
		s.lo, s.hi = tail, successor(tail)
	}
	return s
}

// pageSQL appends the query of the next page of s to b, its arguments to args: the columns src (the
// stream's number in the statement), the key columns padded with NULLs to width, and the value (NULL
// for keys only).
func (s *stream) pageSQL(b *strings.Builder, args *[]any, src, width int) {
	t := s.t
	arg := func(v any) string { *args = append(*args, v); return "$" + strconv.Itoa(len(*args)) }
	b.WriteString("SELECT " + strconv.Itoa(src) + "::int4, " + t.colList)
	for i := len(t.cols); i < width; i++ {
		b.WriteString(", NULL::bytea")
	}
	if t.value != "" && !s.keysOnly {
		b.WriteString(", " + t.value)
	} else {
		b.WriteString(", NULL::bytea")
	}
	b.WriteString(" FROM " + t.name + " WHERE true")
	for i, e := range s.eq {
		b.WriteString(" AND " + t.cols[i] + " = " + arg(e))
	}
	if s.lo != nil {
		b.WriteString(" AND " + t.cols[len(s.eq)] + " >= " + arg(s.lo))
	}
	if s.hi != nil {
		b.WriteString(" AND " + t.cols[len(s.eq)] + " < " + arg(s.hi))
	}
	if s.after != nil {
		if len(t.cols) == 1 {
			b.WriteString(" AND " + t.cols[0] + " > " + arg(s.after[0]))
		} else {
			ps := make([]string, len(s.after))
			for i, a := range s.after {
				ps[i] = arg(a)
			}
			b.WriteString(" AND (" + t.colList + ") > (" + strings.Join(ps, ", ") + ")")
		}
	}
	b.WriteString(" ORDER BY " + t.colList + " LIMIT " + arg(s.limit))
}

// fetch reads the next page of each stream in one statement (a UNION ALL of the streams' pages), in
// one round trip.
func (x *pgTxn) fetch(ss ...*stream) error {
	width := 0
	for _, s := range ss {
		switch {
		case !s.started:
			s.limit, s.started = pgFirstPage, true
		case s.limit < pgMaxPage:
			s.limit *= 2
		}
		width = max(width, len(s.t.cols))
		s.rows, s.pos = s.rows[:0], 0
	}
	var q strings.Builder
	var args []any
	for i, s := range ss {
		if len(ss) > 1 {
			if i > 0 {
				q.WriteString(" UNION ALL ")
			}
			q.WriteString("(")
		}
		s.pageSQL(&q, &args, i, width)
		if len(ss) > 1 {
			q.WriteString(")")
		}
	}
	b := x.batch()
	b.Queue(q.String(), args...)
	br, err := x.send(b)
	if err != nil {
		return err
	}
	err = readPages(br, ss, width)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return x.fail(err)
}

// readPages takes the rows of a fetch and hands each stream its page, in key order.
func readPages(br pgx.BatchResults, ss []*stream, width int) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	var arena []byte
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != width+2 || len(raw[0]) != 4 {
			return fmt.Errorf("store: a page row of %d columns", len(raw))
		}
		src := int(binary.BigEndian.Uint32(raw[0]))
		if src >= len(ss) {
			return fmt.Errorf("store: a page row of stream %d", src)
		}
		s := ss[src]
		t := s.t
		ncols := len(t.cols)
		// one allocation per page chunk for the rows' keys, columns and values
		need := len(t.prefix) + ncols + len(raw[width+1])
		for _, r := range raw[1 : ncols+1] {
			need += 2 * len(r)
		}
		if cap(arena)-len(arena) < need {
			arena = make([]byte, 0, max(need, 64<<10))
		}
		cols := make([][]byte, ncols)
		for i := 0; i < ncols; i++ {
			c0 := len(arena)
			arena = append(arena, raw[1+i]...)
			cols[i] = arena[c0:len(arena):len(arena)]
		}
		k0 := len(arena)
		arena = t.keyOf(arena, cols)
		key := arena[k0:len(arena):len(arena)]
		val := []byte{}
		if t.value != "" && !s.keysOnly {
			v0 := len(arena)
			arena = append(arena, raw[width+1]...)
			val = arena[v0:len(arena):len(arena)]
		}
		s.rows = append(s.rows, row{key: key, val: val, cols: cols})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, s := range ss {
		// SQL keeps each page's ORDER BY within a UNION ALL in practice, but does not promise it
		if !slices.IsSortedFunc(s.rows, func(a, b row) int { return bytes.Compare(a.key, b.key) }) {
			slices.SortFunc(s.rows, func(a, b row) int { return bytes.Compare(a.key, b.key) })
		}
		if len(s.rows) < s.limit {
			s.done = true
		}
		if n := len(s.rows); n > 0 {
			s.after = s.rows[n-1].cols
		}
	}
	return nil
}

// pgBatch buffers writes and commits them every pgBatchChunk, each chunk in one transaction.
type pgBatch struct {
	b       *pgBackend
	pending map[string]pendingOp
	err     error
}

func (b *pgBackend) newBatch() Batch { return &pgBatch{b: b, pending: map[string]pendingOp{}} }

func (w *pgBatch) add(key []byte, op pendingOp) error {
	if w.err != nil {
		return w.err
	}
	if len(key) == 0 {
		return errEmptyKey
	}
	if t, _ := route(key); !op.del && t.value == "" && len(op.value) > 0 {
		return fmt.Errorf("store: keys under %s carry no value (table %s)", t.prefix, t.name)
	}
	w.pending[string(key)] = op
	if len(w.pending) >= pgBatchChunk {
		w.err = w.commit()
	}
	return w.err
}

func (w *pgBatch) Set(key, value []byte) error {
	return w.add(key, pendingOp{value: slices.Clone(value)})
}

func (w *pgBatch) Delete(key []byte) error { return w.add(key, pendingOp{del: true}) }

// commit writes the buffered chunk in one transaction, again after a deadlock or serialization
// failure.
func (w *pgBatch) commit() error {
	if len(w.pending) == 0 {
		return nil
	}
	ctx := context.Background()
	var err error
	for i := 0; i < MaxAttempts; i++ {
		err = pgx.BeginTxFunc(ctx, w.b.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			appendWrites(b, w.pending)
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
			return w.b.feed.logBatch(ctx, tx, w.pending)
		})
		if !isConflict(err) {
			break
		}
		time.Sleep(backoff(i))
	}
	if err != nil {
		if isConflict(err) {
			return ErrConflict
		}
		return fmt.Errorf("store: batch: %w", err)
	}
	clear(w.pending)
	return nil
}

func (w *pgBatch) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.err = w.commit()
	if w.err == nil {
		w.err = errors.New("store: batch already flushed")
		return nil
	}
	return w.err
}

func (w *pgBatch) Cancel() {
	clear(w.pending)
	if w.err == nil {
		w.err = errors.New("store: batch canceled")
	}
}
