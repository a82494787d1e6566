package store

// Migrations of the PostgreSQL schema: the files migrations/NNN_name.sql, applied in order at open and
// recorded in schema_migrations(version, name, applied_at), each in the transaction that applies it.
//
// Replicas that start together must not apply a migration twice. PostgreSQL's advisory locks would do,
// but CockroachDB has none (its pg_advisory_xact_lock is a no-op), so the lock is a row every database
// runs alike: the migrating transaction first takes schema_lock's only row FOR UPDATE, then reads
// schema_migrations and applies what is missing; a second process waits on the row and then finds
// nothing left to do. The two bookkeeping tables are created beforehand with CREATE TABLE IF NOT
// EXISTS, again when two processes raced to create them.

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned change of the PostgreSQL schema.
type Migration struct {
	Version int
	Name    string // the file name, e.g. 001_initial.sql
	SQL     string
}

// Migrations lists the schema's migrations in order.
func Migrations() []Migration {
	ents, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	var out []Migration
	for _, e := range ents {
		n, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(n)
		if !ok || err != nil {
			panic("store: migration file without a version: " + e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

const bookkeeping = `CREATE TABLE IF NOT EXISTS schema_lock (id INT PRIMARY KEY);
INSERT INTO schema_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INT PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// PendingMigrations lists the migrations the store at url has not applied, changing nothing.
func PendingMigrations(ctx context.Context, url string) ([]Migration, error) {
	pool, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return migrate(ctx, pool, false)
}

// Migrate applies the pending migrations of the store at url and returns them.
func Migrate(ctx context.Context, url string) ([]Migration, error) {
	pool, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return migrate(ctx, pool, true)
}

// migrate returns the pending migrations, applying them when apply is set.
func migrate(ctx context.Context, pool *pgxpool.Pool, apply bool) ([]Migration, error) {
	all := Migrations()
	if !apply {
		var exists bool
		err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_name = 'schema_migrations')`).Scan(&exists)
		if err != nil {
			return nil, fmt.Errorf("store: migrations: %w", err)
		}
		if !exists {
			return all, nil
		}
		done, err := applied(ctx, pool)
		if err != nil {
			return nil, err
		}
		return pending(all, done)
	}
	var err error
	for i := 0; i < 5; i++ { // two processes creating the bookkeeping tables at once: one fails, once
		if _, err = pool.Exec(ctx, bookkeeping); err == nil || !raced(err) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	var todo []Migration
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT id FROM schema_lock WHERE id = 1 FOR UPDATE`); err != nil {
			return err
		}
		done, err := applied(ctx, tx)
		if err != nil {
			return err
		}
		if todo, err = pending(all, done); err != nil {
			return err
		}
		for _, m := range todo {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return todo, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func applied(ctx context.Context, q querier) (map[int]bool, error) {
	rows, err := q.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	done := map[int]bool{}
	for _, v := range vs {
		done[int(v)] = true
	}
	return done, nil
}

// pending is what of all is not done; a store with a migration this server does not know is newer
// than the server.
func pending(all []Migration, done map[int]bool) ([]Migration, error) {
	known := map[int]bool{}
	var out []Migration
	for _, m := range all {
		known[m.Version] = true
		if !done[m.Version] {
			out = append(out, m)
		}
	}
	for v := range done {
		if !known[v] {
			return nil, fmt.Errorf("store: the database has schema migration %d, which this server does not know: it was migrated by a newer version", v)
		}
	}
	return out, nil
}

// raced reports the errors of two concurrent CREATE TABLE IF NOT EXISTS of one table.
func raced(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07")
}
