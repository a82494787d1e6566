package api

import (
	"testing"

	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/policy"
	"sota/resolver"
	"sota/store"
)

// fullDeps opens a real store in a temporary directory and builds every domain service on it, so that
// every route is registered.
func fullDeps(tb testing.TB) Deps {
	d, _ := fullDepsWith(tb, engine.Options{})
	return d
}

// fullDepsWith is fullDeps with engine options; it also returns the data directory.
func fullDepsWith(tb testing.TB, o engine.Options) (Deps, string) {
	tb.Helper()
	dir := tb.TempDir()
	db, err := store.Open(dir+"/db", store.Options{})
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close() })
	res, err := resolver.New(db)
	require.NoError(tb, err)
	o.DataDir = dir
	eng, err := engine.New(db, res, o)
	require.NoError(tb, err)
	return Deps{DB: db, Resolver: res, Engine: eng, Policy: policy.NewService(db)}, dir
}
