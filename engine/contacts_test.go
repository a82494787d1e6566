package engine

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

// openAt opens the resolver and the engine over the store in dir, as sotad does at start.
func openAt(t *testing.T, dir string, c *clock) (*Service, *store.DB) {
	t.Helper()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	res, err := resolver.New(db)
	require.NoError(t, err)
	s, err := New(db, res, Options{DataDir: dir, Now: c.Now})
	require.NoError(t, err)
	return s, db
}

// selectVINs is the vehicles a filter selects in the fleet index.
func selectVINs(t *testing.T, s *Service, expr string) []string {
	t.Helper()
	vs, _, err := s.res.ListVehicles(resolver.VehicleQuery{Expression: expr}, resolver.Page{Limit: 100})
	require.NoError(t, err)
	var out []string
	for _, v := range vs {
		out = append(out, v.VIN)
	}
	return out
}

// A contact is the engine's record: it survives a restart, feeds seen_within, is written at most once
// per LastSeenResolution while the vehicle keeps polling, and goes with the vehicle.
func TestContactsAreTheEnginesRecords(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, db := openAt(t, dir, c)
	for _, vin := range []string{vinA, vinB} {
		require.NoError(t, s.res.PutVehicle(vin))
	}
	require.NoError(t, s.Seen(vinA))
	first := c.Now()
	c.Add(30 * time.Second)
	require.NoError(t, s.Seen(vinA)) // within the resolution: nothing written
	st, err := s.VehicleStates([]string{vinA, vinB})
	require.NoError(t, err)
	require.NotNil(t, st[0].LastSeen)
	assert.Equal(t, first, *st[0].LastSeen)
	assert.Nil(t, st[1].LastSeen, "never seen")
	assert.Equal(t, []string{vinA}, selectVINs(t, s, `seen_within "1m"`))
	assert.ErrorContains(t, s.Seen("WDD99999999999999"), "VIN does not exist")

	require.NoError(t, db.Close())
	c.Add(2 * time.Hour)
	s, db = openAt(t, dir, c)
	t.Cleanup(func() { db.Close() })
	assert.Empty(t, selectVINs(t, s, `seen_within "1h"`))
	assert.Equal(t, []string{vinA}, selectVINs(t, s, `seen_within "3h"`), "the index is rebuilt from the contacts")
	require.NoError(t, s.Seen(vinB))
	assert.Equal(t, []string{vinB}, selectVINs(t, s, `seen_within "1h"`))

	require.NoError(t, s.res.DeleteVehicle(vinA))
	require.NoError(t, s.res.PutVehicle(vinA))
	st, err = s.VehicleStates([]string{vinA})
	require.NoError(t, err)
	assert.Nil(t, st[0].LastSeen, "a vehicle created again was never seen")
	assert.Equal(t, []string{vinB}, selectVINs(t, s, `seen_within "3h"`))
}

// layout1Vehicle is a vehicle record as the resolver wrote it before the engine kept its own state:
// version byte 1, the VIN, the last contact (varint Unix nanoseconds, 0 never), the data plan id, and
// no packages, components or attributes.
func layout1Vehicle(vin string, seen time.Time, plan string) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(len(vin)))
	b = append(b, vin...)
	var ns int64
	if !seen.IsZero() {
		ns = seen.UnixNano()
	}
	b = binary.AppendVarint(b, ns)
	b = binary.AppendUvarint(b, uint64(len(plan)))
	b = append(b, plan...)
	return append(b, 0, 0, 0)
}

// A data directory written before the move keeps every vehicle's last contact and data plan: the
// first start moves them from the vehicle records into the engine's, and later starts find them there.
func TestUpgradeMovesContactsAndDataPlansOutOfVehicleRecords(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, db := openAt(t, dir, c)
	_, err := s.AddDataPlan("Basic")
	require.NoError(t, err)
	_, err = s.AddDataPlan("Gold")
	require.NoError(t, err)
	vinC := "WDD33333333333333"
	for _, vin := range []string{vinA, vinB, vinC} {
		require.NoError(t, s.res.PutVehicle(vin))
	}
	_, err = s.SetDataPlan(vinC, "gold")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	// The records as the previous release left them: A seen an hour ago on plan Basic (its link only in
	// the vehicle record), B never seen and on a plan that no longer exists, C seen on Basic while the
	// engine links it to Gold.
	seenA, seenC := c.Now().Add(-time.Hour), c.Now().Add(-48*time.Hour)
	db, err = storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx store.Txn) error {
		for vin, rec := range map[string][]byte{
			vinA: layout1Vehicle(vinA, seenA, "Basic"),
			vinB: layout1Vehicle(vinB, time.Time{}, "Gone"),
			vinC: layout1Vehicle(vinC, seenC, "Basic"),
		} {
			if err := tx.Set([]byte("fleet/v/"+vin), rec); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, db.Close())

	for start := 1; start <= 2; start++ {
		s, db = openAt(t, dir, c)
		st, err := s.VehicleStates([]string{vinA, vinB, vinC})
		require.NoError(t, err)
		require.NotNil(t, st[0].LastSeen, "start %d", start)
		assert.True(t, seenA.Equal(*st[0].LastSeen), "start %d", start)
		assert.Equal(t, "Basic", *st[0].DataPlan, "start %d", start)
		assert.Nil(t, st[1].LastSeen, "start %d", start)
		assert.Nil(t, st[1].DataPlan, "a plan that no longer exists is not linked (start %d)", start)
		require.NotNil(t, st[2].LastSeen, "start %d", start)
		assert.True(t, seenC.Equal(*st[2].LastSeen), "start %d", start)
		assert.Equal(t, "Gold", *st[2].DataPlan, "the engine's link wins (start %d)", start)
		assert.Equal(t, []string{vinA}, selectVINs(t, s, `seen_within "1d"`), "start %d", start)
		assert.Equal(t, []string{vinA, vinC}, selectVINs(t, s, `seen_within "3d"`), "start %d", start)
		require.NoError(t, db.View(func(tx store.Txn) error {
			for _, vin := range []string{vinA, vinB, vinC} {
				v, err := tx.Get([]byte("fleet/v/" + vin))
				if err != nil {
					return err
				}
				assert.Equal(t, byte(2), v[0], "%s is rewritten in the current layout", vin)
			}
			return nil
		}))
		tr, err := s.AddTraffic(vinA, 10)
		require.NoError(t, err)
		assert.Equal(t, "Basic", *tr.DataPlan, "the plan counts the vehicle's traffic")
		require.NoError(t, db.Close())
	}
}

// Replicas on one PostgreSQL store: a contact recorded through one reaches the other's fleet index
// (seen_within) once it has caught up with the change feed. On Badger only one process opens a store.
func TestContactsReachTheOtherReplica(t *testing.T) {
	if !storetest.Postgres() {
		t.Skip("replicas share a PostgreSQL store (SOTA_TEST_STORE=postgres)")
	}
	dir := t.TempDir()
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	a, dbA := openAt(t, dir, c)
	t.Cleanup(func() { dbA.Close() })
	b, dbB := openAt(t, dir, c)
	t.Cleanup(func() { dbB.Close() })
	require.NoError(t, a.res.PutVehicle(vinA))
	require.NoError(t, dbB.CatchUp(context.Background()))
	assert.Empty(t, selectVINs(t, b, `seen_within "1h"`))

	require.NoError(t, a.Seen(vinA))
	require.NoError(t, dbB.CatchUp(context.Background()))
	assert.Equal(t, []string{vinA}, selectVINs(t, b, `seen_within "1h"`))
	st, err := b.VehicleStates([]string{vinA})
	require.NoError(t, err)
	require.NotNil(t, st[0].LastSeen)
	assert.Equal(t, c.Now(), *st[0].LastSeen)
}
