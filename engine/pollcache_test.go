package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/store"
)

// pollFromStore is the device poll's answer read from the store (what Poll answered before it kept
// anything in memory): the vehicle's active updates in delivery order.
func pollFromStore(t *testing.T, s *Service, vin string) []PollRow {
	t.Helper()
	us, err := s.Queue(vin)
	require.NoError(t, err)
	rows := make([]PollRow, len(us))
	for i, u := range us {
		rows[i] = PollRow{UpdateID: u.ID, RequestID: u.RequestID, PackageID: u.PackageID, InstallPos: i, Status: u.Status, CreatedAt: u.CreatedAt}
	}
	return rows
}

// samePolls requires the device poll and the DDI poll of each vehicle to answer what the store holds.
func samePolls(t *testing.T, s *Service, what string, vins ...string) {
	t.Helper()
	for _, vin := range vins {
		got, err := s.Poll(vin)
		require.NoError(t, err)
		assert.Equal(t, pollFromStore(t, s, vin), got, "%s: the poll of %s", what, vin)
		want, wok, _, err := s.nextUpdate(vin, true)
		require.NoError(t, err)
		u, ok, err := s.NextAction(vin)
		require.NoError(t, err)
		assert.Equal(t, wok, ok, "%s: the DDI poll of %s", what, vin)
		if ok && wok {
			assert.Equal(t, want.ID, u.ID, "%s: the DDI poll of %s", what, vin)
		}
	}
}

// The polls answer from memory (pollcache.go); every change of what they show, through each of the
// engine's paths that make one, is in the next poll's answer, on both stores.
func TestPollsAnswerEveryChangeAtOnce(t *testing.T) {
	s, c := newTestService(t, Options{BatchSize: 2})
	vinC := "WDD33333333333333"
	for _, v := range []string{vinA, vinB, vinC} {
		require.NoError(t, s.res.PutVehicle(v))
	}
	samePolls(t, s, "nothing queued", vinA, vinB, vinC) // the empty answers are now in memory

	nav := pkg("nav", "2.0.0")
	r1 := queueDirect(t, s, nav, 10, nil, vinA, vinB, vinC) // written in batches
	got, err := s.Poll(vinA)
	require.NoError(t, err)
	require.Len(t, got, 1, "a queued update is in the next poll")
	samePolls(t, s, "queued", vinA, vinB, vinC)

	c.Add(time.Second)
	radio := pkg("radio", "1.0.0")
	queueDirect(t, s, radio, 1, nil, vinA, vinB)
	samePolls(t, s, "a second request with a higher priority", vinA, vinB, vinC)

	q, err := s.Queue(vinA)
	require.NoError(t, err)
	require.NoError(t, s.update(func(tx store.Txn) error {
		_, err := s.setStatus(tx, vinA, q[1].ID, InFlight, nil, "")
		return err
	}))
	got, err = s.Poll(vinA)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, InFlight, got[0].Status, "the update in flight comes first")
	samePolls(t, s, "one in flight", vinA)

	_, err = s.DeviceCancel(vinB, updateIDFor(r1.ID, vinB))
	require.NoError(t, err)
	samePolls(t, s, "canceled by the device", vinB)

	_, err = s.Cancel(r1.ID)
	require.NoError(t, err)
	samePolls(t, s, "the request canceled", vinA, vinB, vinC)

	// a data plan whose cycle has no room holds the DDI poll's update back
	require.NoError(t, s.update(func(tx store.Txn) error {
		return s.setBinary(tx, Binary{Name: "radio", Version: "1.0.0", SHA256: "aa", Size: 1500})
	}))
	_, err = s.AddDataPlan("small")
	require.NoError(t, err)
	_, err = s.AddBillingCycle("small", c.Now().Add(-time.Hour), 1000)
	require.NoError(t, err)
	_, err = s.SetDataPlan(vinB, "small")
	require.NoError(t, err)
	_, ok, err := s.NextAction(vinB)
	require.NoError(t, err)
	assert.False(t, ok, "1500 bytes do not fit in the cycle's 1000")
	samePolls(t, s, "a data plan linked", vinB)

	c.Add(2 * time.Hour) // past the validity of nothing: a purge fails nothing, the answers stay
	samePolls(t, s, "later", vinA, vinB, vinC)

	require.NoError(t, s.res.DeleteVehicle(vinC))
	_, err = s.Poll(vinC)
	assert.ErrorContains(t, err, "VIN does not exist")
	require.NoError(t, s.res.PutVehicle(vinC))
	samePolls(t, s, "the vehicle deleted and created again", vinC)
	got, err = s.Poll(vinC)
	require.NoError(t, err)
	assert.Empty(t, got, "a vehicle created again starts with an empty queue")

	// a paused campaign holds its pending updates back (the campaign is in memory, not the entry)
	until := c.Now().Add(time.Minute)
	queueDirect(t, s, pkg("maps", "1.0.0"), 5, &until, vinC)
	samePolls(t, s, "queued with a validity", vinC)
	c.Add(2 * time.Minute)
	n, err := s.Purge()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err = s.Poll(vinC)
	require.NoError(t, err)
	assert.Empty(t, got, "a purged update is not in the poll")
	samePolls(t, s, "purged", vinC)
}

// Two replicas on one PostgreSQL store: an update queued, moved or canceled through B is in A's very
// next poll (A catches up with the change feed before it answers from memory), with B's feed poller
// slowed down so that only the catch-up can bring it.
func TestPollOnOneReplicaSeesWhatAnotherWroteAtOnce(t *testing.T) {
	url := storetest.SpecKind(t, "postgres", t.TempDir())
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	open := func() *Service { return slowFeedReplica(t, url, Options{Now: c.Now}) }
	a, b := open(), open()
	require.NoError(t, b.res.PutVehicle(vinA))
	require.NoError(t, a.db.CatchUp(context.Background())) // A knows the vehicle
	samePolls(t, a, "nothing queued", vinA)

	r := queueDirect(t, b, pkg("nav", "2.0.0"), 10, nil, vinA)
	got, err := a.Poll(vinA)
	require.NoError(t, err)
	require.Len(t, got, 1, "the update queued on B is in A's next poll")
	assert.Equal(t, r.ID, got[0].RequestID)
	u, ok, err := a.NextAction(vinA)
	require.NoError(t, err)
	require.True(t, ok, "and in A's next DDI poll")

	require.NoError(t, b.update(func(tx store.Txn) error {
		_, err := b.setStatus(tx, vinA, u.ID, InFlight, nil, "")
		return err
	}))
	got, err = a.Poll(vinA)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, InFlight, got[0].Status, "moved in flight on B")

	_, err = b.Cancel(r.ID)
	require.NoError(t, err)
	_, err = b.DeviceCancel(vinA, u.ID)
	require.NoError(t, err)
	got, err = a.Poll(vinA)
	require.NoError(t, err)
	assert.Empty(t, got, "canceled on B")
	samePolls(t, a, "after B's changes", vinA)
}

// Presence across replicas: a vehicle that keeps polling replica A counts as connected on B (by its
// stored lastSeen, which B follows through the change feed), so B, holding every wake-up shard here,
// does not wake it; once it stopped polling for the connected window plus the resolution, B wakes
// it. A replica started while the vehicle polls knows it from the store.
func TestAVehiclePollingOneReplicaIsConnectedOnEvery(t *testing.T) {
	url := storetest.SpecKind(t, "postgres", t.TempDir())
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	open := func() *Service {
		return slowFeedReplica(t, url, Options{Now: c.Now, ConnectedWindow: time.Minute, ReconnectInterval: time.Second})
	}
	a, b := open(), open()
	ctx := context.Background()
	require.NoError(t, a.res.PutVehicle(vinA))
	queueDirect(t, a, pkg("nav", "2.0.0"), 10, nil, vinA)
	require.NoError(t, b.db.CatchUp(ctx))
	assert.False(t, b.Connected(vinA), "never seen")

	for i := 0; i < 12; i++ { // four minutes of polls on A every 20 s: B never wakes the vehicle
		_, err := a.Poll(vinA)
		require.NoError(t, err)
		require.NoError(t, b.db.CatchUp(ctx))
		assert.True(t, b.Connected(vinA), "polling A, %d s in", i*20)
		n, err := b.Xmit(ctx)
		require.NoError(t, err)
		assert.Equal(t, 0, n, "B woke a vehicle that polls A, %d s in", i*20)
		c.Add(20 * time.Second)
	}
	late := open() // a replica started now knows the contact from the store
	assert.True(t, late.Connected(vinA))

	c.Add(2 * time.Minute) // silent for the window plus the resolution
	require.NoError(t, b.db.CatchUp(ctx))
	assert.False(t, b.Connected(vinA))
	n, err := b.Xmit(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the vehicle stopped polling: B wakes it")
}

// slowFeedReplica is an engine on a store of its own over the PostgreSQL url whose background feed
// poller waits an hour, so that only a catch-up brings another replica's writes.
func slowFeedReplica(t *testing.T, url string, o Options) *Service {
	t.Helper()
	db, err := store.OpenURL(context.Background(), url, store.Options{FeedInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return replica(t, db, t.TempDir(), o)
}
