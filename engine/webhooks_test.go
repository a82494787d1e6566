package engine

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/store"
)

// Two engines on one store (replicas; both backends): a delivery whose POST is under way on A is
// claimed, so B passes it over; once the claim has expired B sends it again, and A's late answer does
// not undo B's record. A subscription A deletes meanwhile takes its pending deliveries along, also
// one B finds afterwards.
func TestTwoReplicasClaimEachWebhookDelivery(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}

	var calls atomic.Int32
	held, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 { // the first attempt hangs until released
			close(held)
			<-release
		}
	}))
	t.Cleanup(srv.Close)
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	o := Options{Now: c.Now, WebhookTimeout: 10 * time.Second}
	a := replica(t, db, dir, o)
	hook, err := a.AddWebhook(srv.URL, []string{"update.finished"}, "claim-secret")
	require.NoError(t, err)
	b := replica(t, db, dir, o)
	require.NoError(t, a.update(func(t store.Txn) error {
		return a.emit(t, "update.finished", map[string]string{"vin": "WDD00000000000001"})
	}))

	ctx := context.Background()
	aDone := make(chan int, 1)
	go func() {
		n, err := a.DeliverWebhooks(ctx)
		assert.NoError(t, err)
		aDone <- n
	}()
	<-held
	n, err := b.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "B passes over the delivery A is sending")
	assert.EqualValues(t, 1, calls.Load())

	c.Add(webhookClaimTTL(o.WebhookTimeout) - time.Second)
	n, err = b.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "still claimed a second before the claim ends")

	c.Add(2 * time.Second) // A stalled past its claim: B sends again
	n, err = b.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.EqualValues(t, 2, calls.Load())
	releaseOnce.Do(func() { close(release) })
	assert.Equal(t, 1, <-aDone, "A's attempt was answered 200 too")

	ds, err := b.Deliveries(hook.ID, 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, "delivered", ds[0].State)
	assert.Equal(t, 2, ds[0].Attempts, "both attempts counted, B's result kept")
	for _, s := range []*Service{a, b} {
		n, err := s.DeliverWebhooks(ctx)
		require.NoError(t, err)
		assert.Zero(t, n)
	}
	assert.EqualValues(t, 2, calls.Load(), "not sent a third time")

	// a delivery emitted by B (which knows the subscription) after A deleted it is dropped, not kept
	// pending for ever
	require.NoError(t, a.DeleteWebhook(hook.ID))
	b.wh.mu.Lock()
	b.wh.byID[hook.ID] = hook // as if B had not applied the deletion yet
	b.wh.mu.Unlock()
	require.NoError(t, b.update(func(t store.Txn) error {
		return b.emit(t, "update.finished", map[string]string{"vin": "WDD00000000000002"})
	}))
	n, err = a.DeliverWebhooks(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	pending := 0
	require.NoError(t, db.View(func(t store.Txn) error {
		return t.IterateKeys([]byte("core/wh"), func([]byte) error { pending++; return nil })
	}))
	assert.Zero(t, pending, "no delivery or pending key is left of the deleted subscription")
	assert.EqualValues(t, 2, calls.Load())
}
