package main

// Device polls with three sotad processes over one PostgreSQL schema (replicas): a poll answers from
// the replica's memory after catching up with the change feed, so an update queued or canceled
// through one replica is in the next poll on every other, and the poll throughput with three
// replicas against one. Skipped with a message without a PostgreSQL server (SOTA_REQUIRE_POSTGRES=1
// makes that a failure).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/budget"
	"sota/internal/loadgen"
	"sota/wire"
)

// uploadPackage creates a package version with a binary through the replica at base (/api/v1).
func uploadPackage(t testing.TB, base, name, version string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name+".bin")
	require.NoError(t, err)
	fmt.Fprintf(fw, "binary of %s %s", name, version)
	require.NoError(t, mw.Close())
	req, err := http.NewRequest("PUT", base+"/packages/"+name+"/"+version, &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
}

// devicePoll is a vehicle's device poll on the replica at base: the update ids and statuses.
func devicePoll(t testing.TB, base, vin, token string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/vehicle_updates/"+vin, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equalf(t, 200, resp.StatusCode, "poll on %s: %s", base, b)
	var rows []struct{ UpdateID, Status string }
	require.NoError(t, json.Unmarshal(b, &rows))
	out := []string{}
	for _, r := range rows {
		out = append(out, r.UpdateID+" "+r.Status)
	}
	return out
}

// ddiPoll is a vehicle's DDI base poll on the replica at base (/api/v1): its _links.
func ddiPoll(t testing.TB, base, vin, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", strings.TrimSuffix(base, "/api/v1")+"/DEFAULT/controller/v1/"+vin, nil)
	req.Header.Set("Authorization", "TargetToken "+token)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equalf(t, 200, resp.StatusCode, "DDI poll on %s: %s", base, b)
	return string(b)
}

// A vehicle polls A and C (both keep its empty queue in memory); an update queued through B is in
// the very next poll on A and C, device API and DDI alike, and so is its cancel: no sleep anywhere.
func TestReplicasPollSeesAnUpdateQueuedOnAnotherAtOnce(t *testing.T) {
	ps := startReplicas(t, 3)
	a, b, c := ps[0], ps[1], ps[2]
	must(t, 200, "POST", b+"/filters", map[string]string{"name": "all", "expression": "TRUE"})
	uploadPackage(t, b, "nav", "1.0.0")
	must(t, 200, "PUT", b+"/packages/nav/1.0.0/filter/all", nil)
	const vin = "WDDPLL00000000001"
	must(t, 200, "POST", b+"/vehicles", map[string]string{"vin": vin})
	var tok struct{ Token string }
	require.NoError(t, json.Unmarshal(must(t, 200, "POST", b+"/vehicles/"+vin+"/token", nil), &tok))
	for _, u := range []string{a, c} {
		assert.Empty(t, devicePoll(t, u, vin, tok.Token), "nothing queued yet (%s)", u)
		assert.NotContains(t, ddiPoll(t, u, vin, tok.Token), "deploymentBase", "nothing queued yet (%s)", u)
	}

	var req struct{ ID string }
	require.NoError(t, json.Unmarshal(must(t, 200, "POST", b+"/update_requests",
		map[string]any{"packageId": map[string]string{"name": "nav", "version": "1.0.0"}}), &req))
	for _, u := range []string{a, c} {
		got := devicePoll(t, u, vin, tok.Token)
		require.Len(t, got, 1, "the update queued on B is in the next poll on %s", u)
		assert.Contains(t, got[0], " pending")
		assert.Contains(t, ddiPoll(t, u, vin, tok.Token), "deploymentBase", "and in the next DDI poll on %s", u)
	}

	must(t, 200, "PUT", b+"/update_requests/"+url.PathEscape(req.ID)+"/cancel", nil)
	for _, u := range []string{a, c} {
		assert.Empty(t, devicePoll(t, u, vin, tok.Token), "the update canceled on B is gone from the next poll on %s", u)
		assert.NotContains(t, ddiPoll(t, u, vin, tok.Token), "deploymentBase", "and from the next DDI poll on %s", u)
	}
}

// A vehicle that keeps polling replica A counts as connected on B and C too: with the wake-up shards
// split over the three, none of the 20 vehicles polling A is woken (counted at the receiver), while
// each of the 20 that do not poll is.
func TestReplicasDoNotWakeAVehiclePollingAnother(t *testing.T) {
	var mu sync.Mutex
	woken := map[string]int{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wk wire.Wakeup
		if err := json.NewDecoder(r.Body).Decode(&wk); err != nil {
			t.Errorf("wake-up: %v", err)
		}
		mu.Lock()
		woken[wk.VIN]++
		mu.Unlock()
	}))
	defer recv.Close()
	procs := startReplicaProcs(t, 3, "--scheduler-interval", "100ms", "--reconnect-interval", "1s", "--wakeup-url", recv.URL)
	a := procs[0].url + "/api/v1"
	must(t, 200, "POST", a+"/filters", map[string]string{"name": "all", "expression": "TRUE"})
	uploadPackage(t, a, "nav", "1.0.0")
	must(t, 200, "PUT", a+"/packages/nav/1.0.0/filter/all", nil)
	const n = 40
	vins, tokens := make([]string, n), make([]string, n)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDDWKP%011d", i)
		must(t, 200, "POST", a+"/vehicles", map[string]string{"vin": vins[i]})
		var tok struct{ Token string }
		require.NoError(t, json.Unmarshal(must(t, 200, "POST", a+"/vehicles/"+vins[i]+"/token", nil), &tok))
		tokens[i] = tok.Token
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the first half polls A every 300 ms
		defer wg.Done()
		for {
			for i := 0; i < n/2; i++ {
				devicePoll(t, a, vins[i], tokens[i])
			}
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	time.Sleep(time.Second)
	must(t, 200, "POST", a+"/update_requests", map[string]any{"packageId": map[string]string{"name": "nav", "version": "1.0.0"}})
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for i, vin := range vins {
		if i < n/2 {
			assert.Zerof(t, woken[vin], "%s polls A and was woken", vin)
		} else {
			assert.NotZerof(t, woken[vin], "%s does not poll and was not woken", vin)
		}
	}
}

// BenchmarkDevicePollReplicas: the device poll of api's BenchmarkDevicePoll (1,000 vehicles with two
// queued updates each, 32 keep-alive clients) against three sotad processes on one PostgreSQL
// schema, the clients' connections spread over the three, against the same clients all on one of
// them, in the same run (best of three rounds of 3 s each), and GET /healthz of one of the processes
// as the baseline of the one-replica figure. On this 2-core machine the three
// processes share the cores that one has alone, so this is a no-regression check: three replicas
// should not serve much less than one.
func BenchmarkDevicePollReplicas(b *testing.B) {
	const vehicles, clients = 1000, 32
	ps := startReplicas(b, 3)
	admin := ps[0]
	must(b, 200, "POST", admin+"/filters", map[string]string{"name": "all", "expression": "TRUE"})
	for _, p := range []string{"nav", "radio"} {
		uploadPackage(b, admin, p, "1.0.0")
		must(b, 200, "PUT", admin+"/packages/"+p+"/1.0.0/filter/all", nil)
	}
	vins := make([]string, vehicles)
	tokens := make([]string, vehicles)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ { // the fleet, through all three
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < vehicles; i += 8 {
				base := ps[i%3]
				vins[i] = fmt.Sprintf("WDDREB%011d", i)
				must(b, 200, "POST", base+"/vehicles", map[string]string{"vin": vins[i]})
				var t struct{ Token string }
				if err := json.Unmarshal(must(b, 200, "POST", base+"/vehicles/"+vins[i]+"/token", nil), &t); err != nil {
					b.Error(err)
					return
				}
				tokens[i] = t.Token
			}
		}()
	}
	wg.Wait()
	for _, p := range []string{"nav", "radio"} {
		must(b, 200, "POST", admin+"/update_requests", map[string]any{"packageId": map[string]string{"name": p, "version": "1.0.0"}})
	}
	addrs := make([]string, len(ps))
	for i, p := range ps {
		addrs[i] = strings.TrimSuffix(strings.TrimPrefix(p, "http://"), "/api/v1")
		for j, vin := range vins { // every vehicle has polled every replica once, as in a running fleet
			if got := devicePoll(b, p, vin, tokens[j]); len(got) != 2 {
				b.Fatalf("vehicle %s has %d updates on %s, want 2", vin, len(got), p)
			}
		}
	}
	reqs := map[string][][]byte{}
	for _, addr := range addrs {
		for i := range vins {
			reqs[addr] = append(reqs[addr], []byte("GET /api/v1/vehicle_updates/"+vins[i]+" HTTP/1.1\r\nHost: "+addr+"\r\nAuthorization: Bearer "+tokens[i]+"\r\n\r\n"))
		}
	}
	poll := func(addr string, n int) []byte { return reqs[addr][n%vehicles] }
	run := func(addrs []string) loadgen.Result {
		r, err := loadgen.Run(addrs, clients, 3*time.Second, poll)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	hz, err := loadgen.Run(addrs[:1], clients, 3*time.Second, func(addr string, n int) []byte {
		return []byte("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var one, three loadgen.Result
	for i := 0; i < b.N; i++ {
		for r := 0; r < 3; r++ { // alternating which goes first
			order := []func(){
				func() {
					if x := run(addrs[:1]); x.PerSecond > one.PerSecond {
						one = x
					}
				},
				func() {
					if x := run(addrs); x.PerSecond > three.PerSecond {
						three = x
					}
				},
			}
			if r%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for _, f := range order {
				f()
			}
		}
	}
	b.StopTimer()
	b.Logf("device poll, PostgreSQL: 1 replica %.0f req/s p99 %v; 3 replicas %.0f req/s p99 %v; GET /healthz of one replica %.0f req/s p99 %v",
		one.PerSecond, one.P99, three.PerSecond, three.P99, hz.PerSecond, hz.P99)
	budget.Report(b, budget.Line{Name: "device poll with 1 sotad on PostgreSQL, 32 keep-alive clients, loopback (req/s)",
		Figure: one.PerSecond, Unit: "req/s", Budget: 10000, AtLeast: true, Ratio: one.PerSecond / hz.PerSecond,
		Baseline: fmt.Sprintf("GET /healthz of the same sotad process before the rounds (%.0f req/s)", hz.PerSecond)})
	budget.Report(b, budget.Line{Name: "device poll with 3 sotad replicas on one PostgreSQL, 32 keep-alive clients, relative to 1 (same run)",
		Figure: three.PerSecond / one.PerSecond, Unit: "x", Budget: 0.8, AtLeast: true, Ratio: three.PerSecond / one.PerSecond,
		Baseline: fmt.Sprintf("the same clients on one of them: %.0f vs %.0f req/s", three.PerSecond, one.PerSecond)})
	budget.Report(b, budget.Line{Name: "device poll with 3 sotad replicas on one PostgreSQL, p99 latency",
		Figure: float64(three.P99) / float64(time.Millisecond), Unit: "ms", Budget: 20,
		Ratio: float64(one.P99) / float64(three.P99), Baseline: "the same clients on one replica (p99)"})
}
