package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/resolver"
	"sota/store"
)

// importFleet registers n vehicles WDD… through the resolver's bulk import.
func importFleet(t testing.TB, s *Service, n int) []string {
	t.Helper()
	var b strings.Builder
	vins := make([]string, n)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDD%014d", i+1)
		fmt.Fprintf(&b, "{\"vin\":%q}\n", vins[i])
	}
	_, err := s.res.Import(context.Background(), strings.NewReader(b.String()), nil)
	require.NoError(t, err)
	return vins
}

// everyone registers the package with a TRUE filter.
func everyone(t testing.TB, s *Service, p resolver.PackageID) {
	t.Helper()
	_, err := s.res.CreatePackage(p, resolver.PackageInfo{})
	require.NoError(t, err)
	_, err = s.UploadBinary(p, strings.NewReader("binary of "+p.String()), Upload{})
	require.NoError(t, err)
	if _, err := s.res.GetFilter("everyone"); err != nil {
		_, err = s.res.CreateFilter("everyone", "TRUE")
		require.NoError(t, err)
	}
	_, err = s.res.Associate(p, "everyone")
	require.NoError(t, err)
}

// Two requests are queued at once (in many small batches), one of them is canceled while it is
// being written, a device moves updates of the other, and the scheduler purges and wakes all the
// while. Run under -race (make test). Whatever the interleaving: the canceled request has no pending
// update left and each of its written updates is counted once; the other request is complete and
// untouched by the cancel.
func TestQueueTwoRequestsAndCancelOneWhileTheSchedulerRuns(t *testing.T) {
	var woken atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { woken.Add(1) }))
	defer recv.Close()
	s, _ := newTestService(t, Options{BatchSize: 7, WakeupURL: recv.URL, ReconnectInterval: time.Nanosecond, ConnectedWindow: time.Nanosecond})
	const n = 400
	vins := importFleet(t, s, n)
	a, b := pkg("nav", "2.0.0"), pkg("radio", "1.0.0")
	everyone(t, s, a)
	everyone(t, s, b)

	sc := s.StartScheduler(time.Millisecond)
	ctx := context.Background()
	var wg sync.WaitGroup
	var reqA, reqB UpdateRequest
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); reqA, errA = s.QueueUpdate(ctx, NewRequest{PackageID: a}) }()
	go func() { defer wg.Done(); reqB, errB = s.QueueUpdate(ctx, NewRequest{PackageID: b, Priority: new(int)}) }()

	// Cancel A as soon as it is listed (its updates are then being written, or done).
	canceled := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			rs, _, err := s.Requests(Page{})
			if !assert.NoError(t, err) {
				canceled <- -1
				return
			}
			for _, r := range rs {
				if r.PackageID != nil && r.PackageID.Name == "nav" {
					c, err := s.Cancel(r.ID)
					assert.NoError(t, err)
					canceled <- c
					return
				}
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()

	// A device installs B on the first vehicles as their updates appear.
	const installed = 20
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, vin := range vins[:installed] {
			for {
				q, err := s.Queue(vin)
				if !assert.NoError(t, err) {
					return
				}
				var id string
				for _, u := range q {
					if u.PackageID != nil && u.PackageID.Name == "radio" {
						id = u.ID
					}
				}
				if id == "" {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				for _, to := range []Status{InFlight, Finished} {
					err := s.update(func(tx store.Txn) error {
						_, err := s.setStatus(tx, vin, id, to, new(int), "")
						return err
					})
					if !assert.NoError(t, err) {
						return
					}
				}
				break
			}
		}
	}()
	wg.Wait()
	sc.Stop()
	require.NoError(t, errA)
	require.NoError(t, errB)
	c := <-canceled
	assert.GreaterOrEqual(t, sc.Runs(), 1, "the scheduler ran")

	gotA, err := s.Request(reqA.ID)
	require.NoError(t, err)
	assert.Equal(t, StateCanceled, gotA.State)
	assert.Equal(t, Counts{Canceled: gotA.Vehicles}, *gotA.Counts, "every written update of A is canceled, none pending")
	assert.Equal(t, c, gotA.Vehicles, "the cancel reports each of them")
	assert.LessOrEqual(t, gotA.Vehicles, n)
	t.Logf("A: %d of %d vehicles written before the cancel stopped it; %d scheduler rounds, %d wake-ups", gotA.Vehicles, n, sc.Runs(), woken.Load())

	gotB, err := s.Request(reqB.ID)
	require.NoError(t, err)
	assert.Equal(t, StateQueued, gotB.State)
	assert.Equal(t, n, gotB.Vehicles)
	assert.Equal(t, Counts{Pending: n - installed, Finished: installed}, *gotB.Counts)

	// Every vehicle's queue holds B only (or nothing once installed).
	for i, vin := range vins {
		q, err := s.Queue(vin)
		require.NoError(t, err)
		if i < installed {
			assert.Empty(t, q, vin)
			continue
		}
		require.Len(t, q, 1, vin)
		assert.Equal(t, reqB.ID, q[0].RequestID)
	}
	// The scheduler woke vehicles with work while it could; after the cancel and installs only B's
	// pending vehicles have any.
	vs, err := s.vehiclesWithWork()
	require.NoError(t, err)
	assert.Len(t, vs, n-installed)
	assert.Positive(t, woken.Load())
}
