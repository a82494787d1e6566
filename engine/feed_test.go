package engine

// Two engine and resolver stacks on one PostgreSQL schema in one process (two replicas): what one
// writes, the other's dry runs see at once (its catch-up) while its background poller applies the
// same changes concurrently (run under -race in make test). Skipped without a server;
// SOTA_REQUIRE_POSTGRES=1 makes that a failure.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

func TestTwoReplicasDryRunTheSame(t *testing.T) {
	url := storetest.SpecKind(t, "postgres", t.TempDir())
	type replica struct {
		res *resolver.Service
		eng *Service
	}
	open := func() replica {
		db, err := store.OpenURL(context.Background(), url, store.Options{FeedInterval: 5 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		res, err := resolver.New(db)
		require.NoError(t, err)
		eng, err := New(db, res, Options{DataDir: t.TempDir()})
		require.NoError(t, err)
		return replica{res, eng}
	}
	a, b := open(), open()
	ctx := context.Background()
	nav := pkg("nav", "2.0.0")
	_, err := b.res.CreatePackage(nav, resolver.PackageInfo{})
	require.NoError(t, err)
	_, err = b.res.CreateFilter("early", `vin_matches "^WDDTWX0000000000"`)
	require.NoError(t, err)
	_, err = b.res.Associate(nav, "early")
	require.NoError(t, err)

	// A dry-runs all along, concurrently with its poller and with the checks below
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var runs atomic.Int64
	t.Cleanup(func() { close(stop); wg.Wait() }) // before the stores close
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := a.res.DryRun(ctx, resolver.DryRunRequest{Package: &nav})
			assert.NoError(t, err)
			runs.Add(1)
		}
	}()
	counts := func(r replica, expr *string) (int, int, int) {
		res, err := r.res.DryRun(ctx, resolver.DryRunRequest{Package: &nav, Expression: expr})
		require.NoError(t, err)
		return res.Matched, res.AlreadyInstalled, res.TotalVehicles
	}
	same := func(what string, expr *string) {
		t.Helper()
		m, i, n := counts(b, expr)
		ma, ia, na := counts(a, expr)
		assert.Equal(t, [3]int{m, i, n}, [3]int{ma, ia, na}, "%s: A's dry run differs from B's", what)
	}
	for i := 0; i < 20; i++ {
		vin := fmt.Sprintf("WDDTWX%011d", i)
		_, err := b.res.CreateVehicle(vin)
		require.NoError(t, err)
		same("a vehicle created on B", nil)
		if i%3 == 0 {
			require.NoError(t, b.res.SetInstalled(vin, []resolver.PackageID{nav}))
			same("an installed set changed on B", nil)
		}
		if i%4 == 0 {
			require.NoError(t, b.eng.Seen(vin))
			seen := `seen_within "1h"`
			same("a contact on B", &seen)
		}
	}
	_, err = b.res.UpdateFilter("early", `vin_matches "^WDDTWX000000000[01]"`)
	require.NoError(t, err)
	same("the filter changed on B", nil)
	m, i, n := counts(a, nil)
	assert.Equal(t, [3]int{13, 7, 20}, [3]int{m, i, n})
	assert.Positive(t, runs.Load())

	// a campaign created on B is previewed and launched on A at once
	one := 50
	c, err := b.eng.CreateCampaign(NewCampaign{Name: "two", PackageID: nav, Groups: []GroupSpec{{Name: "half", Percent: &one}}})
	require.NoError(t, err)
	p, err := a.eng.PreviewCampaign(ctx, c.ID, nil)
	require.NoError(t, err, "A knows the campaign B created")
	assert.Equal(t, 13, p.Matched)
}
