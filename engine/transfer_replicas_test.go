package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// A device may reach a replica that has not yet heard of a request through the change feed: the
// request was queued on another replica a moment ago. Its update must still be delivered as queued
// (the request's package, priority and kind), not as an empty update that "installs" nothing and
// finishes. Replica B here never follows the feed by itself (it catches up only when told).
func TestAnUpdateQueuedOnAnotherReplicaIsDeliveredBeforeItsRequestReachedThisOne(t *testing.T) {
	if !storetest.Postgres() {
		t.Skip("replicas share a PostgreSQL store (SOTA_TEST_STORE=postgres)")
	}
	dir := t.TempDir()
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	a, dbA := openAt(t, dir, c)
	t.Cleanup(func() { dbA.Close() })
	dbB, err := store.OpenURL(context.Background(), storetest.Spec(t, dir+"/db"), store.Options{FeedInterval: -1})
	require.NoError(t, err)
	t.Cleanup(func() { dbB.Close() })
	resB, err := resolver.New(dbB)
	require.NoError(t, err)
	b, err := New(dbB, resB, Options{DataDir: dir, Now: c.Now}) // A's blob directory: one machine
	require.NoError(t, err)

	p := pkg("nav", "2.0.0")
	require.NoError(t, a.res.PutVehicle(vinA))
	everyone(t, a, p)
	require.NoError(t, dbB.CatchUp(context.Background())) // B knows the vehicle and the package
	r := queueDirect(t, a, p, 3, nil, vinA)               // B has not heard of the request

	n, ok, err := b.Notify(vinA)
	require.NoError(t, err)
	require.True(t, ok)
	require.NotNil(t, n.UpdateAvailable)
	assert.Equal(t, []wire.PackageID{p}, n.UpdateAvailable.Packages, "the request's package, read from the store")
	q, err := b.Queue(vinA)
	require.NoError(t, err)
	require.Len(t, q, 1)
	assert.Equal(t, r.ID, q[0].RequestID)
	assert.Equal(t, 3, q[0].Priority)
	assert.Equal(t, KindInstall, q[0].Kind)

	tr, err := b.StartTransfer(vinA, q[0].ID, 4)
	require.NoError(t, err)
	want := "binary of " + p.String()
	require.Len(t, tr.Packages, 1)
	assert.EqualValues(t, len(want), tr.Size)
	var got []byte
	for {
		ch, ok, err := b.NextChunk(vinA, q[0].ID)
		require.NoError(t, err)
		if !ok {
			break
		}
		got = append(got, ch.Data...)
		_, err = b.AckChunks(vinA, q[0].ID, []int{ch.Index})
		require.NoError(t, err)
	}
	assert.Equal(t, want, string(got))
	_, err = b.FinalizeTransfer(vinA, q[0].ID, tr.ChunksCount, tr.SHA256)
	require.NoError(t, err)
	_, msg, err := b.InstallReport(vinA, q[0].ID, []OperationResult{{ID: q[0].ID, ResultCode: 0, ResultText: "ok"}})
	require.NoError(t, err)
	assert.Equal(t, "nav-2.0.0 success", msg)
	installed, err := a.res.InstalledPackages(vinA)
	require.NoError(t, err)
	assert.Equal(t, []resolver.PackageID{p}, installed, "the installed set has the package")
}
