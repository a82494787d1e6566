package store_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/store"
)

// Presence rows (migration 004): a store of schema version 3 kept contacts and last wake-ups as rows
// of kv; opening it moves them to the contacts and wakes tables, where reads and prefix scans find
// them, and the keys next to them (core/wakeup/key) stay in kv. New writes go to the new tables.
func TestPresenceMovesToItsOwnTables(t *testing.T) {
	t.Setenv("SOTA_TEST_STORE", "postgres")
	url := storetest.Spec(t, t.TempDir())
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	// the schema as version 3 left it, with presence in kv
	_, err = pool.Exec(ctx, `CREATE TABLE schema_lock (id INT PRIMARY KEY); INSERT INTO schema_lock VALUES (1);
		CREATE TABLE schema_migrations (version INT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	for _, m := range store.Migrations() {
		if m.Version > 3 {
			break
		}
		_, err := pool.Exec(ctx, m.SQL)
		require.NoError(t, err, m.Name)
		_, err = pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
		require.NoError(t, err)
	}
	old := map[string]string{
		"core/seen/WDD11111111111111":  "seen-one",
		"core/seen/WDD22222222222222":  "seen-two",
		"core/wake/WDD11111111111111":  "wake-one",
		"core/wakeup/key":              "the wake-up key",
		"core/vplan/WDD11111111111111": "plan",
	}
	for k, v := range old {
		_, err := pool.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)`, []byte(k), []byte(v))
		require.NoError(t, err)
	}

	db, err := store.OpenURL(ctx, url, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	count := func(sql string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, sql).Scan(&n))
		return n
	}
	assert.Equal(t, 2, count(`SELECT count(*) FROM contacts`))
	assert.Equal(t, 1, count(`SELECT count(*) FROM wakes`))
	assert.Equal(t, 2, count(`SELECT count(*) FROM kv WHERE key LIKE 'core/%'`), "the wake-up key and the plan link stay in kv")

	got := map[string]string{}
	require.NoError(t, db.View(func(tx store.Txn) error {
		for k := range old {
			v, err := tx.Get([]byte(k))
			if err != nil {
				return err
			}
			assert.Equal(t, old[k], string(v), k)
		}
		return tx.Iterate([]byte("core/"), func(k, v []byte) error {
			got[string(k)] = string(v)
			return nil
		})
	}))
	assert.Equal(t, old, got)

	require.NoError(t, db.Update(func(tx store.Txn) error {
		if err := tx.Set([]byte("core/seen/WDD33333333333333"), []byte("seen-three")); err != nil {
			return err
		}
		if err := tx.Delete([]byte("core/seen/WDD22222222222222")); err != nil {
			return err
		}
		return tx.Set([]byte("core/wake/WDD33333333333333"), []byte("wake-three"))
	}))
	assert.Equal(t, 2, count(`SELECT count(*) FROM contacts`))
	assert.Equal(t, 2, count(`SELECT count(*) FROM wakes`))
	assert.Equal(t, 1, count(`SELECT count(*) FROM contacts WHERE vin = 'WDD33333333333333'::bytea AND seen_at = 'seen-three'::bytea`))
	assert.Equal(t, 2, count(`SELECT count(*) FROM kv WHERE key LIKE 'core/%'`))
}
