package api

// Load: device polls, resolve and dry runs, and the admin queue views under concurrent load from many
// keep-alive clients, while a writer changes the fleet. No request may fail, every answer must be
// right for what the writer can have done, and memory must stay bounded (the heap after the run, and
// between the windows of a long run, does not grow with the number of requests; no goroutine leaks).
// SOTA_LOAD_SECONDS sets the duration (make soak runs a long one).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/engine"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func TestLoadDevicePollAndResolve(t *testing.T) {
	const vehicles, writerVehicles, pollers, resolvers = 200, 20, 8, 2
	seconds := envInt("SOTA_LOAD_SECONDS", 3)
	// The real server, without the call recording of the test harnesses (it would grow with the load).
	deps := fullDeps(t)
	deps.Filters = deps.Resolver
	h, _ := newServer(t, Config{AuthNone: true}, deps.Deps)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &coreEnv{t: t, srv: srv, deps: deps}
	ok := func(method, path string, body, out any) {
		t.Helper()
		res := e.do(method, "/api/v1"+path, body, out)
		require.Lessf(t, res.StatusCode, 300, "%s %s", method, path)
	}
	ok("PUT", "/components/ECU1", map[string]string{"description": "e"}, nil)
	ok("POST", "/filters", map[string]string{"name": "all", "expression": "TRUE"}, nil)
	ok("POST", "/filters", map[string]string{"name": "ecu", "expression": `has_component "^ECU1$"`}, nil)
	for _, p := range []string{"nav", "radio", "maps"} {
		ok("PUT", "/packages/"+p+"/1.0.0", map[string]string{"description": p}, nil)
		e.binaries(pkgID(p, "1.0.0"))
	}
	ok("PUT", "/packages/maps/1.0.0/dependencies/nav/1.0.0", nil, nil)
	ok("PUT", "/packages/nav/1.0.0/filter/all", nil, nil)
	ok("PUT", "/packages/radio/1.0.0/filter/all", nil, nil)
	ok("PUT", "/packages/maps/1.0.0/filter/ecu", nil, nil)

	var lines strings.Builder
	vins := make([]string, vehicles+writerVehicles)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDDL%013d", i)
		comps := `[]`
		if i%2 == 0 && i < vehicles {
			comps = `["ECU1"]`
		}
		fmt.Fprintf(&lines, `{"vin":%q,"components":%s}`+"\n", vins[i], comps)
	}
	ok("POST", "/fleet/import", lines.String(), nil)
	tokens := make([]string, vehicles)
	for i := range tokens {
		var tok struct{ Token string }
		ok("POST", "/vehicles/"+vins[i]+"/token", nil, &tok)
		tokens[i] = tok.Token
	}
	var reqs []struct{ ID string }
	for _, p := range []string{"nav", "radio"} {
		var r struct{ ID string }
		ok("POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": p, "version": "1.0.0"}}, &r)
		reqs = append(reqs, r)
	}
	// maps goes to the vehicles with ECU1: half the polled ones, and the writer's when they have it
	baseMaps := vehicles / 2

	tr := &http.Transport{MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{}).DialContext}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	get := func(path, token string, out any) error {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1"+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		if res.StatusCode != 200 {
			return fmt.Errorf("GET %s: %d %s", path, res.StatusCode, b)
		}
		return json.Unmarshal(b, out)
	}

	goroutines := runtime.NumGoroutine()
	heapBefore := heapInUse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var requests atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
		cancel()
	}
	run := func(f func(n int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				if err := f(n); err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					return
				}
				requests.Add(1)
			}
		}()
	}
	for c := range pollers {
		run(func(n int) error { // device poll: the two queued updates, in delivery order
			i := (c*7919 + n) % vehicles
			var rows []engine.PollRow
			if err := get("/vehicle_updates/"+vins[i], tokens[i], &rows); err != nil {
				return err
			}
			if len(rows) != 2 || rows[0].InstallPos != 0 || rows[1].InstallPos != 1 {
				return fmt.Errorf("poll %s: %+v", vins[i], rows)
			}
			return nil
		})
	}
	for c := range resolvers {
		run(func(n int) error {
			switch (c + n) % 3 {
			case 0: // resolve over the index while the writer adds and removes ECU1
				var targets []json.RawMessage
				if err := get("/resolve/maps/1.0.0", "", &targets); err != nil {
					return err
				}
				if len(targets) < baseMaps || len(targets) > baseMaps+writerVehicles {
					return fmt.Errorf("resolve maps: %d vehicles, want %d to %d", len(targets), baseMaps, baseMaps+writerVehicles)
				}
			case 1: // the admin view of a queue
				i := n % vehicles
				var q []engine.PollRow
				if err := get("/vehicles/"+vins[i]+"/queue", "", &q); err != nil {
					return err
				}
				if len(q) != 2 {
					return fmt.Errorf("queue %s: %d updates", vins[i], len(q))
				}
			default: // an update request's counts
				var r struct{ Counts map[string]int }
				if err := get("/update_requests/"+reqs[n%2].ID, "", &r); err != nil {
					return err
				}
				if r.Counts["pending"] != vehicles+writerVehicles {
					return fmt.Errorf("request counts %v, want %d pending", r.Counts, vehicles+writerVehicles)
				}
			}
			return nil
		})
	}
	run(func(n int) error { // the writer: ECU1 on and off its own vehicles
		vin := vins[vehicles+n%writerVehicles]
		method := "PUT"
		if (n/writerVehicles)%2 == 1 {
			method = "DELETE"
		}
		req, _ := http.NewRequest(method, e.srv.URL+"/api/v1/vehicles/"+vin+"/component/ECU1", nil)
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("%s ECU1 on %s: %d %s", method, vin, res.StatusCode, b)
		}
		return nil
	})

	// Long runs: the heap of each later window may not grow past the first one.
	var windows []uint64
	for tick := time.NewTicker(5 * time.Second); ; {
		select {
		case <-tick.C:
			windows = append(windows, heapInUse())
			continue
		case <-ctx.Done():
			tick.Stop()
		}
		break
	}
	wg.Wait()
	require.NoError(t, firstErr)
	tr.CloseIdleConnections()
	heapAfter := heapInUse()
	n := requests.Load()
	t.Logf("%d requests in %ds (%.0f/s) by %d clients; heap in use %d MiB before, %d MiB after, windows %v MiB",
		n, seconds, float64(n)/float64(seconds), pollers+resolvers+1, heapBefore>>20, heapAfter>>20, mib(windows))
	require.Greater(t, n, int64(10*seconds), "the load ran (a sanity floor: the race detector on a loaded machine is slow)")
	require.Less(t, heapAfter, heapBefore+64<<20, "heap after the load")
	for i := 1; i < len(windows); i++ {
		require.Less(t, windows[i], windows[0]+64<<20, "heap in window %d of a long run", i)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), goroutines+5, "goroutines left after the load")
}

func mib(v []uint64) []uint64 {
	out := make([]uint64, len(v))
	for i, x := range v {
		out[i] = x >> 20
	}
	return out
}
