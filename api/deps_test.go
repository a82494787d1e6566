package api

import (
	"testing"

	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/resolver"
	"sota/store"
)

// fullDeps opens a real store in a temporary directory and builds every domain service on it, so that
// every route is registered.
func fullDeps(tb testing.TB) Deps {
	tb.Helper()
	dir := tb.TempDir()
	db, err := store.Open(dir+"/db", store.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close() })
	eng, err := engine.New(db, engine.Options{DataDir: dir})
	require.NoError(tb, err)
	rs, err := resolver.New(db)
	require.NoError(tb, err)
	return Deps{DB: db, Engine: eng, Resolver: rs}
}
