package load_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/examples"
	"sota/examples/load"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

func open(t *testing.T, dir string) (*store.DB, *resolver.Service) {
	db, err := storetest.OpenDir(t, dir)
	require.NoError(t, err)
	rs, err := resolver.New(db)
	require.NoError(t, err)
	return db, rs
}

// The examples load whole into an empty store, survive a restart, and every association resolves
// some vehicles (DAB radio 1.1.0 also leaves some unresolved).
func TestAllLoadsTheExamples(t *testing.T) {
	dir := t.TempDir()
	db, rs := open(t, dir)
	empty, err := load.Empty(rs)
	require.NoError(t, err)
	require.True(t, empty)
	s, err := load.All(context.Background(), rs, 1, 2000)
	require.NoError(t, err)
	c := examples.Catalogue()
	assert.Equal(t, len(c.Packages), s.Packages)
	assert.Equal(t, len(c.Components), s.Components)
	assert.Equal(t, len(examples.Filters), s.Filters)
	assert.Equal(t, len(examples.Associations), s.Associations)
	assert.Equal(t, 2000, s.Fleet.Vehicles)
	assert.Zero(t, s.Fleet.ForeignPackages, "every installed package is in the catalogue")
	assert.Zero(t, s.Fleet.ComponentsCreated, "every part number is in the catalogue")
	empty, err = load.Empty(rs)
	require.NoError(t, err)
	assert.False(t, empty)
	require.NoError(t, db.Close())

	db, rs = open(t, dir)
	defer db.Close()
	vs, total, err := rs.ListVehicles(resolver.VehicleQuery{Regex: "^WDD"}, resolver.Page{Limit: 10})
	require.NoError(t, err)
	assert.NotEmpty(t, vs)
	assert.Greater(t, total, 0)
	for _, a := range examples.Associations {
		id := resolver.PackageID{Name: a.Package.Name, Version: a.Package.Version}
		d, err := rs.DryRun(context.Background(), resolver.DryRunRequest{Package: &id})
		require.NoError(t, err, id)
		assert.Greater(t, d.Matched, 0, id)
		assert.Less(t, d.Matched, 2000, id)
		if a.Package.Name == "dab-radio" {
			assert.Greater(t, d.UnresolvedCount, 0)
		}
	}
	for _, f := range examples.Filters {
		expr := f.Expression
		id := resolver.PackageID{Name: "nav-engine", Version: "3.2.0"}
		d, err := rs.DryRun(context.Background(), resolver.DryRunRequest{Package: &id, Expression: &expr})
		require.NoError(t, err, f.Name)
		assert.Greater(t, d.Matched+d.AlreadyInstalled, 0, f.Name)
	}
}
