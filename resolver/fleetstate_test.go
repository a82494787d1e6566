package resolver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
)

func selectVINs(t *testing.T, x *FleetIndex, expr string) []string {
	t.Helper()
	p, err := dsl.Compile(expr, nil)
	require.NoError(t, err)
	var vins []string
	x.ReadView(func(v View) { vins = sortedVINs(v, p.Select(v)) })
	return vins
}

func TestFleetIndexLastSeen(t *testing.T) {
	now := time.Date(2026, 12, 6, 7, 30, 0, 0, time.UTC)
	x := NewFleetIndex()
	x.SetClock(func() time.Time { return now })
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	x.PutMany([]dsl.Vehicle{
		{VIN: "A", LastSeen: ago(10 * time.Second)},
		{VIN: "B", LastSeen: ago(29 * time.Minute)}, // same hour as now
		{VIN: "C", LastSeen: ago(31 * time.Minute)}, // the hour before
		{VIN: "D", LastSeen: ago(26 * time.Hour)},
		{VIN: "E"}, // never seen
	})
	assert.Equal(t, []string{"A"}, selectVINs(t, x, `seen_within "60s"`))
	assert.Equal(t, []string{"A", "B"}, selectVINs(t, x, `seen_within "30m"`))
	assert.Equal(t, []string{"A", "B", "C"}, selectVINs(t, x, `seen_within "31m"`), "the boundary is included")
	assert.Equal(t, []string{"A", "B", "C", "D"}, selectVINs(t, x, `seen_within "2d"`))
	assert.Equal(t, []string{"D", "E"}, selectVINs(t, x, `NOT seen_within "1d"`))

	// a contact moves the vehicle between hours; a replaced vehicle keeps what its record says
	x.SetSeen("D", now)
	assert.Equal(t, []string{"A", "D"}, selectVINs(t, x, `seen_within "60s"`))
	x.Put(dsl.Vehicle{VIN: "A", LastSeen: ago(10 * time.Second), Components: []string{"P"}})
	assert.Equal(t, []string{"A", "D"}, selectVINs(t, x, `seen_within "60s"`))
	// a deleted vehicle's id, reused, starts unseen
	x.Delete("D")
	x.Put(dsl.Vehicle{VIN: "F"})
	assert.Equal(t, []string{"A"}, selectVINs(t, x, `seen_within "60s"`))
	assert.Empty(t, x.SeenSince(now.Add(time.Second)).ToArray())
	assert.Equal(t, uint64(3), x.SeenSince(time.Unix(0, 0)).GetCardinality(), "since the epoch: every vehicle ever seen (A, B, C)")
}

func TestFleetIndexUpdateStatuses(t *testing.T) {
	x := NewFleetIndex()
	x.PutMany([]dsl.Vehicle{{VIN: "A"}, {VIN: "B"}, {VIN: "C"}})
	nav := PackageID{Name: "Nav", Version: "2.0.0"}
	x.SetUpdateStatuses([]UpdateChange{
		{VIN: "A", Package: nav, Status: "pending"},
		{VIN: "B", Package: nav, Status: "pending"},
		{VIN: "A", Package: nav, Status: "failed"}, // the later change wins
		{VIN: "Z", Package: nav, Status: "failed"}, // not in the index: skipped
		{VIN: "C", Package: PackageID{Name: "nav", Version: "1.0.0"}, Status: "finished"},
	})
	assert.Equal(t, []string{"A"}, selectVINs(t, x, `update_status "nav" "2.0.0" == "failed"`))
	assert.Equal(t, []string{"B"}, selectVINs(t, x, `update_status "NAV" "2.0.0" == "pending"`))
	assert.Equal(t, []string{"A", "C"}, selectVINs(t, x, `update_status "nav" "2.0.0" != "pending"`))
	assert.Equal(t, []string{"C"}, selectVINs(t, x, `update_status "nav" "1.0.0" IN ("finished", "failed")`))

	v, ok := x.Get("A")
	require.True(t, ok)
	assert.Equal(t, []dsl.UpdateState{{Name: "Nav", Version: "2.0.0", Status: "failed"}}, v.Updates)

	// the package with updates is part of the vocabulary though nobody has it installed
	var names []string
	x.Terms(dsl.TermPackage, "", func(s string, _ int) bool { names = append(names, s); return true })
	assert.Equal(t, []string{"Nav"}, names)

	x.Delete("A")
	x.Put(dsl.Vehicle{VIN: "D"}) // takes A's id
	assert.Empty(t, selectVINs(t, x, `update_status "nav" "2.0.0" == "failed"`))
	v, _ = x.Get("D")
	assert.Empty(t, v.Updates)
}
