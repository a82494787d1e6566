package store

// Leases: how several processes on one PostgreSQL store (replicas) share out work that must run once
// cluster-wide (a scheduler job per interval, a shard of the wake-ups, a request being queued) and
// move it when a process dies.
//
// A lease is a name held by one holder (a random id per process) until it expires. ClaimLeases takes,
// among some names, those its holder holds already (renewing them) and those free or expired, up to a
// maximum; a process that stops renewing loses its leases when they expire, and another process's
// next claim takes them. Expiry is measured by the database's clock (now()), so the processes' clocks
// need not agree.
//
// On PostgreSQL the leases are rows of leases(name, holder, expires_at) (migrations/003_leases.sql).
// A claim is one transaction: the rows are created if missing, then the claimable ones are locked
// with SELECT ... FOR UPDATE SKIP LOCKED (rows another process is claiming at the same moment are
// passed over, not waited for) and given the new holder and expiry. The SQL is what PostgreSQL,
// CockroachDB and YugabyteDB all run.
//
// On Badger one process owns the store, so the leases live in that process's memory: a claim is
// granted unless another holder of the same process holds the name (tests run several engines in one
// process), and a restarted process finds no lease of its predecessor.
//
// A lease is a promise of exclusivity only while it has not expired: a holder that paused longer than
// the lease's time to live may find the work taken over, so work whose repetition would harm (a
// wake-up) is also made conditional in its own transaction.

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lease is a name held by a holder until Expires.
type Lease struct {
	Name, Holder string
	Expires      time.Time
}

// ClaimLeases takes for holder, among names, those it holds already (their expiry renewed to ttl from
// now) and those free or expired, up to max in all (names held already first, then by name; max <= 0:
// no limit). It returns the names holder holds afterwards, sorted. Names that another process is
// claiming at the same moment are passed over.
func (d *DB) ClaimLeases(ctx context.Context, holder string, names []string, max int, ttl time.Duration) ([]string, error) {
	if holder == "" || ttl <= 0 {
		return nil, fmt.Errorf("store: a lease needs a holder and a positive time to live")
	}
	if max <= 0 || max > len(names) {
		max = len(names)
	}
	if len(names) == 0 {
		return nil, nil
	}
	if b, ok := d.b.(*pgBackend); ok {
		return b.claim(ctx, holder, names, max, ttl)
	}
	return localLeases.claim(d.b, holder, names, max, ttl), nil
}

// TryLease takes or renews one lease: true when holder holds name for ttl from now.
func (d *DB) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	got, err := d.ClaimLeases(ctx, holder, []string{name}, 1, ttl)
	return len(got) == 1, err
}

// ReleaseLeases gives up those of names that holder holds, so that another process may take them at
// once.
func (d *DB) ReleaseLeases(ctx context.Context, holder string, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	if b, ok := d.b.(*pgBackend); ok {
		_, err := b.pool.Exec(ctx, `DELETE FROM leases WHERE name = ANY($1::text[]) AND holder = $2`, names, holder)
		if err != nil {
			return fmt.Errorf("store: release leases: %w", err)
		}
		return nil
	}
	localLeases.release(d.b, holder, names)
	return nil
}

// Leases lists the leases under prefix that have not expired, by name.
func (d *DB) Leases(ctx context.Context, prefix string) ([]Lease, error) {
	if b, ok := d.b.(*pgBackend); ok {
		rows, err := b.pool.Query(ctx, `SELECT name, holder, expires_at FROM leases
			WHERE name >= $1 AND expires_at > now() ORDER BY name`, prefix)
		if err != nil {
			return nil, fmt.Errorf("store: leases: %w", err)
		}
		defer rows.Close()
		var out []Lease
		for rows.Next() {
			var l Lease
			if err := rows.Scan(&l.Name, &l.Holder, &l.Expires); err != nil {
				return nil, err
			}
			if !strings.HasPrefix(l.Name, prefix) {
				break
			}
			out = append(out, l)
		}
		return out, rows.Err()
	}
	return localLeases.list(d.b, prefix), nil
}

// claim is ClaimLeases on PostgreSQL: one READ COMMITTED transaction, so that rows locked by a
// concurrent claim are skipped rather than turned into a serialization failure.
func (b *pgBackend) claim(ctx context.Context, holder string, names []string, max int, ttl time.Duration) ([]string, error) {
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: claim leases: %w", err)
	}
	defer tx.Rollback(ctx)
	// missing rows first, expired, so that the lock below finds every name
	if _, err := tx.Exec(ctx, `INSERT INTO leases (name, holder, expires_at)
		SELECT n, '', '1970-01-01T00:00:00Z' FROM unnest($1::text[]) AS n ON CONFLICT (name) DO NOTHING`, names); err != nil {
		return nil, fmt.Errorf("store: claim leases: %w", err)
	}
	// only the rows it takes are locked (LIMIT), so that a concurrent claim skips those and takes others
	rows, err := tx.Query(ctx, `SELECT name FROM leases
		WHERE name = ANY($1::text[]) AND (holder = $2 OR expires_at <= now())
		ORDER BY holder = $2 DESC, name LIMIT $3
		FOR UPDATE SKIP LOCKED`, names, holder, max)
	if err != nil {
		return nil, fmt.Errorf("store: claim leases: %w", err)
	}
	take, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: claim leases: %w", err)
	}
	if len(take) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE leases SET holder = $2, expires_at = now() + $3::bigint * interval '1 microsecond'
			WHERE name = ANY($1::text[])`, take, holder, ttl.Microseconds()); err != nil {
			return nil, fmt.Errorf("store: claim leases: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("store: claim leases: %w", err)
	}
	sort.Strings(take)
	return take, nil
}

// memLeases are the leases of the Badger stores of this process, per store.
type memLeases struct {
	mu sync.Mutex
	by map[backend]map[string]Lease
}

var localLeases = &memLeases{by: map[backend]map[string]Lease{}}

func (m *memLeases) of(b backend) map[string]Lease {
	ls := m.by[b]
	if ls == nil {
		ls = map[string]Lease{}
		m.by[b] = ls
	}
	return ls
}

func (m *memLeases) claim(b backend, holder string, names []string, max int, ttl time.Duration) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ls, now := m.of(b), time.Now()
	var held, take []string
	for _, n := range names {
		if l, ok := ls[n]; ok && l.Holder == holder && l.Expires.After(now) {
			held = append(held, n)
		}
	}
	sort.Strings(held)
	take = held[:min(len(held), max)]
	names = slices.Clone(names)
	sort.Strings(names)
	for _, n := range names {
		if len(take) >= max {
			break
		}
		if l, ok := ls[n]; (!ok || !l.Expires.After(now)) && !slices.Contains(take, n) {
			take = append(take, n)
		}
	}
	for _, n := range take {
		ls[n] = Lease{Name: n, Holder: holder, Expires: now.Add(ttl)}
	}
	sort.Strings(take)
	return take
}

func (m *memLeases) release(b backend, holder string, names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ls := m.of(b)
	for _, n := range names {
		if l, ok := ls[n]; ok && l.Holder == holder {
			delete(ls, n)
		}
	}
}

func (m *memLeases) list(b backend, prefix string) []Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var out []Lease
	for n, l := range m.of(b) {
		if strings.HasPrefix(n, prefix) && l.Expires.After(now) {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// forget drops the leases of a closed Badger store.
func (m *memLeases) forget(b backend) {
	m.mu.Lock()
	delete(m.by, b)
	m.mu.Unlock()
}
