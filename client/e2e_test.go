package client_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/client"
	"sota/engine"
	"sota/resolver"
	"sota/wire"
)

// End to end: 50 vehicles behind a network that cuts 10% of the chunk answers mid-way install a
// three-package dependency chain while the server restarts once in the middle. Every vehicle ends
// with the packages installed and matching their sha256; the server re-sent the chunks whose answers
// were cut and nothing more (but for answers the restart cut off); the request's counts, the
// histories, the installed sets and the data plan agree.
func TestEndToEndFleetInstall(t *testing.T) {
	const vehicles = 50
	srv := newServer(t, 4096)
	px := newProxy(t, srv.addr, 0.10, 42)
	rnd := rand.New(rand.NewPCG(1, 2))

	libcore := resolver.PackageID{Name: "libcore", Version: "1.0.0"}
	hmi := resolver.PackageID{Name: "hmi", Version: "2.0.0"}
	navapp := resolver.PackageID{Name: "navapp", Version: "3.0.0"}
	content := map[resolver.PackageID][]byte{
		libcore: randomBytes(rnd, 9000+rnd.IntN(4000)),
		hmi:     randomBytes(rnd, 9000+rnd.IntN(4000)),
		navapp:  randomBytes(rnd, 9000+rnd.IntN(4000)),
	}
	for id, b := range content {
		srv.upload(id, b)
	}
	srv.admin("PUT", "/packages/hmi/2.0.0/dependencies/libcore/1.0.0", nil, nil)
	srv.admin("PUT", "/packages/navapp/3.0.0/dependencies/hmi/2.0.0", nil, nil)
	srv.admin("POST", "/filters", map[string]any{"name": "fleet", "expression": `vin_matches "^WDD"`}, nil)
	srv.admin("PUT", "/packages/navapp/3.0.0/filter/fleet", nil, nil)
	srv.admin("POST", "/data_plans", map[string]any{"id": "fleet"}, nil)
	srv.admin("POST", "/data_plans/fleet/billing_cycles", map[string]any{"start": "2020-01-01T00:00:00Z", "poolBytes": 1 << 40}, nil)

	want := map[string][]resolver.PackageID{}
	tokens := map[string]string{}
	for i := 1; i <= vehicles; i++ {
		vin := vinOf(i)
		srv.admin("PUT", "/vehicles/"+vin, nil, nil)
		srv.admin("PUT", "/vehicles/"+vin+"/data_plan", map[string]any{"id": "fleet"}, nil)
		want[vin] = []resolver.PackageID{libcore, hmi, navapp}
		if i%2 == 1 { // odd vehicles already have libcore: they download only hmi and navapp
			srv.admin("PUT", "/vehicles/"+vin+"/package/libcore/1.0.0", nil, nil)
			want[vin] = []resolver.PackageID{hmi, navapp}
		}
		tokens[vin] = srv.token(vin)
	}
	var req struct {
		ID       string
		Vehicles int
	}
	srv.admin("POST", "/update_requests", map[string]any{"packageId": navapp}, &req)
	require.Equal(t, vehicles, req.Vehicles)

	// the vehicles
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var retries atomic.Int64
	managers := map[string]*client.Manager{}
	for vin, tok := range tokens {
		managers[vin] = &client.Manager{
			Dir: t.TempDir(),
			Client: &client.Client{Server: px.url(), VIN: vin, Token: tok,
				HTTP:    &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
				Backoff: client.Backoff{Base: 5 * time.Millisecond, Max: 200 * time.Millisecond, Attempts: 40},
				Retries: func() { retries.Add(1) }},
		}
	}

	// the server restarts once, when about half of the chunks were asked for
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		for px.chunkReq.Load() < int64(vehicles*6/2) {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		srv.restart()
	}()

	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string][]client.Outcome{}
	errors := map[string]error{}
	for vin, m := range managers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var all []client.Outcome
			var err error
			for len(all) == 0 && ctx.Err() == nil {
				var out []client.Outcome
				out, err = m.RunOnce(ctx)
				all = append(all, out...)
			}
			mu.Lock()
			outcomes[vin], errors[vin] = all, err
			mu.Unlock()
		}()
	}
	wg.Wait()
	<-restarted
	require.NoError(t, ctx.Err(), "every vehicle finished in time")

	// every vehicle installed its list, and each installed file matches its sha256
	for vin, m := range managers {
		require.NoErrorf(t, errors[vin], "vehicle %s", vin)
		require.Lenf(t, outcomes[vin], 1, "vehicle %s", vin)
		o := outcomes[vin][0]
		assert.Equal(t, wire.ResultOK, o.Code)
		assert.Equal(t, "navapp-3.0.0 success", o.Message)
		assert.Equal(t, want[vin], o.Packages)
		installed, err := m.Installed()
		require.NoError(t, err)
		assert.ElementsMatch(t, want[vin], installed)
		for _, id := range want[vin] {
			b, err := os.ReadFile(m.PackagePath(id))
			require.NoError(t, err)
			assert.Equalf(t, shaHex(content[id]), shaHex(b), "%s %s", vin, id)
		}
		left, _ := os.ReadDir(m.Dir + "/downloads")
		assert.Empty(t, left, "no part file left behind")
	}

	// the server: counts, history, installed sets, re-sent chunks and the data plan agree
	var got struct{ Counts engine.Counts }
	srv.admin("GET", "/update_requests/"+req.ID, nil, &got)
	assert.Equal(t, engine.Counts{Finished: vehicles}, got.Counts)
	eng := srv.engine()
	resent, chunks := 0, 0
	var sent int64
	for vin := range managers {
		var hist []struct {
			UpdateID   string
			Status     string
			ResultCode *int
		}
		srv.admin("GET", "/vehicles/"+vin+"/history", nil, &hist)
		require.Len(t, hist, 1)
		assert.Equal(t, "finished", hist[0].Status)
		require.NotNil(t, hist[0].ResultCode)
		assert.Equal(t, 0, *hist[0].ResultCode)
		var pkgs []resolver.PackageID
		srv.admin("GET", "/vehicles/"+vin+"/package", nil, &pkgs)
		assert.ElementsMatch(t, []resolver.PackageID{libcore, hmi, navapp}, pkgs)
		st, err := eng.TransferStatus(vin, hist[0].UpdateID)
		require.NoError(t, err)
		assert.True(t, st.Finalized)
		assert.Equal(t, st.ChunksCount, st.Acked)
		var size int64
		for _, id := range want[vin] {
			size += int64(len(content[id]))
		}
		assert.Equal(t, size, st.Size)
		resent += st.Served - st.ChunksCount
		chunks += st.ChunksCount
		sent += st.BytesSent
	}
	t.Logf("%d chunks, %d chunk requests, %d answers cut, %d cut off by the restart, %d re-sent, %d retried calls", chunks, px.chunkReq.Load(), px.drops.Load(), px.restartCut.Load(), resent, retries.Load())
	assert.Positive(t, px.drops.Load(), "the network cut some chunk answers")
	// every cut answer is sent again; beyond those, only an answer the restart cut off may be (the
	// server may have served it before the connection went)
	assert.GreaterOrEqual(t, resent, int(px.drops.Load()), "every cut answer is sent again")
	assert.LessOrEqual(t, resent, int(px.drops.Load()+px.restartCut.Load()), "nothing is sent twice beyond the answers that did not arrive")
	var cycles []struct{ UsedBytes int64 }
	srv.admin("GET", "/data_plans/fleet/billing_cycles", nil, &cycles)
	require.Len(t, cycles, 1)
	assert.Equal(t, sent, cycles[0].UsedBytes, "every byte sent is on the data plan")
}
