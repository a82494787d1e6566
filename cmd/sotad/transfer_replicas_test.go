package main

// A device transfer across replicas: three sotad processes (A, B, C) on one PostgreSQL schema with the
// binaries in the database (--blob-store db). The vehicle's device (our device client, client.Manager)
// talks to a load balancer in front of B and C; the balancer sends it to B until B dies, then to C,
// as a balancer with passive health checks does. B is killed with SIGKILL in the middle of the
// transfer, at three moments: after it served a chunk whose answer never reached the device, after it
// recorded an acknowledgement whose answer never reached the device, and between two requests. The
// transfer must go on on C from where it was, the device must install the right bytes, and the
// install report must be accepted by C and seen as finished on A. Skipped with a message without a
// PostgreSQL server (SOTA_REQUIRE_POSTGRES=1 makes that a failure).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	devclient "sota/client"
	"sota/internal/storetest"
	"sota/wire"
)

// balancer is a load balancer in front of some sotad processes (a boundary we do not own): it sends
// every request to the first backend that is not down; a backend whose connection fails is down from
// then on and the request is answered 502, as a balancer with passive health checks does. It logs
// every exchange, and its hook may kill a backend after the backend answered and before the answer
// is passed on (the answer is then lost, as when a process dies before its answer leaves it).
type balancer struct {
	t        *testing.T
	srv      *httptest.Server
	names    []string
	backends map[string]string // name -> base URL (under mu)
	hc       *http.Client

	mu   sync.Mutex
	down map[string]bool
	log  []exchange
	// after, when set, runs after a backend answered; true: the backend was killed and its answer lost
	after func(e exchange) bool
}

// exchange is one request as the balancer passed it on.
type exchange struct {
	backend string
	method  string
	path    string // the path below /api/v1/vehicle_updates/<vin>
	status  int    // the backend's answer; 0 when its connection failed
	lost    bool   // the answer never reached the device
	chunk   int    // the chunk index of a chunk answer
	acked   []int  // the chunks of an ack
}

func newBalancer(t *testing.T, vin string, names []string, urls map[string]string) *balancer {
	lb := &balancer{t: t, names: names, backends: urls, down: map[string]bool{},
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	prefix := "/api/v1/vehicle_updates/" + vin
	lb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		lb.mu.Lock()
		name, base := "", ""
		for _, n := range lb.names {
			if !lb.down[n] {
				name, base = n, lb.backends[n]
				break
			}
		}
		lb.mu.Unlock()
		ex := exchange{backend: name, method: r.Method, path: strings.TrimPrefix(r.URL.Path, prefix)}
		if strings.HasSuffix(ex.path, "/ack") {
			var a wire.Ack
			json.Unmarshal(body, &a)
			ex.acked = a.Chunks
		}
		if name == "" {
			http.Error(w, "no backend", http.StatusBadGateway)
			return
		}
		req, _ := http.NewRequest(r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := lb.hc.Do(req)
		var answer []byte
		if err == nil {
			answer, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			ex.lost = true
			lb.mu.Lock()
			lb.down[name] = true
			lb.log = append(lb.log, ex)
			lb.mu.Unlock()
			http.Error(w, "backend down", http.StatusBadGateway)
			return
		}
		ex.status = resp.StatusCode
		if resp.StatusCode == http.StatusOK && strings.HasSuffix(ex.path, "/chunk") {
			var c wire.Chunk
			json.Unmarshal(answer, &c)
			ex.chunk = c.Index
		}
		lb.mu.Lock()
		after := lb.after
		lb.mu.Unlock()
		if after != nil && after(ex) {
			ex.lost = true
			lb.mu.Lock()
			lb.down[name] = true
			lb.log = append(lb.log, ex)
			lb.mu.Unlock()
			http.Error(w, "backend died", http.StatusBadGateway)
			return
		}
		lb.mu.Lock()
		lb.log = append(lb.log, ex)
		lb.mu.Unlock()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
	}))
	t.Cleanup(lb.srv.Close)
	return lb
}

func (lb *balancer) exchanges() []exchange {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return append([]exchange(nil), lb.log...)
}

// The moments at which B is killed (after it answered the request of the chunk or ack named).
const (
	killAfterServing = "after serving chunk 7, its answer lost"
	killAfterAck     = "after recording the ack of chunk 7, its answer lost"
	killBetween      = "between the ack of chunk 7 and the next request"
)

func TestTransferContinuesOnAnotherReplicaAfterSIGKILL(t *testing.T) {
	spec := storetest.SpecKind(t, "postgres", t.TempDir()) // skips without a server
	bin := buildSotad(t)
	for i, moment := range []string{killAfterServing, killAfterAck, killBetween} {
		t.Run(fmt.Sprintf("B killed %s", moment), func(t *testing.T) {
			if i > 0 {
				spec = storetest.SpecKind(t, "postgres", t.TempDir()) // a fresh schema
			}
			transferAcrossKill(t, bin, spec, moment)
		})
	}
}

func transferAcrossKill(t *testing.T, bin, spec, moment string) {
	procs := map[string]*sotadProc{}
	urls := map[string]string{}
	for _, n := range []string{"A", "B", "C"} {
		p := startSotadOn(t, bin, t.TempDir(), spec, "postgres", "--blob-store", "db", "--chunk-size", "4096")
		t.Cleanup(p.kill)
		procs[n], urls[n] = p, p.url
	}
	a := urls["A"] + "/api/v1"

	// the fleet, the package and the request, all through A
	content := make([]byte, 20*4096+777) // 21 chunks of 4096 bytes, the last one short
	rand.New(rand.NewSource(14)).Read(content)
	want := sha256.Sum256(content)
	putBinary(t, a, "nav", "1.0.0", content)
	const vin = "WDDXFERREPL000001"
	must(t, 204, "PUT", a+"/vehicles/"+vin, nil)
	var tok struct{ Token string }
	require.NoError(t, json.Unmarshal(must(t, 200, "POST", a+"/vehicles/"+vin+"/token", nil), &tok))
	must(t, 200, "POST", a+"/filters", map[string]string{"name": "everyone", "expression": "TRUE"})
	must(t, 200, "PUT", a+"/packages/nav/1.0.0/filter/everyone", nil)
	var req struct{ ID string }
	require.NoError(t, json.Unmarshal(must(t, 200, "POST", a+"/update_requests", map[string]any{"packageId": map[string]string{"name": "nav", "version": "1.0.0"}}), &req))

	lb := newBalancer(t, vin, []string{"B", "C"}, urls)
	const at = 7
	var killMu sync.Mutex
	var killedAt time.Time
	kill := func() {
		procs["B"].kill()
		killMu.Lock()
		killedAt = time.Now()
		killMu.Unlock()
	}
	lb.after = func(e exchange) bool {
		if e.backend != "B" {
			return false
		}
		switch {
		case moment == killAfterServing && e.chunk == at:
			kill()
			return true
		case moment == killAfterAck && len(e.acked) == 1 && e.acked[0] == at:
			kill()
			return true
		case moment == killBetween && len(e.acked) == 1 && e.acked[0] == at:
			kill() // B's answer goes out after B died, before the device asks again
			return false
		}
		return false
	}

	dev := &devclient.Client{Server: lb.srv.URL, VIN: vin, Token: tok.Token,
		Backoff: devclient.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond, Attempts: 30}}
	m := &devclient.Manager{Client: dev, Dir: t.TempDir(), Logf: t.Logf}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// the vehicle reaches the fleet index of B and C through the change feed (a list read shows it)
	for _, n := range []string{"B", "C"} {
		require.Eventually(t, func() bool {
			res, err := client.Get(urls[n] + "/api/v1/vehicles?regex=^" + vin)
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.Header.Get("X-Total-Count") == "1"
		}, 5*time.Second, 10*time.Millisecond, "%s lists the vehicle", n)
	}
	outcomes, err := m.RunOnce(ctx)
	require.NoError(t, err)
	killMu.Lock()
	require.False(t, killedAt.IsZero(), "B was killed: %+v", lb.exchanges())
	killMu.Unlock()
	require.Len(t, outcomes, 1)
	o := outcomes[0]
	assert.Equal(t, wire.ResultOK, o.Code)
	assert.Equal(t, "nav-1.0.0 success", o.Message, "the install report is accepted")

	// the device installed the right bytes
	got, err := os.ReadFile(m.PackagePath(wire.PackageID{Name: "nav", Version: "1.0.0"}))
	require.NoError(t, err)
	assert.Equal(t, want, sha256.Sum256(got), "the installed package has the uploaded bytes")

	// chunk for chunk: what B and C served, in order
	log := lb.exchanges()
	var served, deviceGot []int
	var onB, onC int
	reportOn := ""
	for _, e := range log {
		if e.backend == "C" {
			onC++
		} else if e.status != 0 {
			onB++
		}
		if e.chunk > 0 {
			served = append(served, e.chunk)
			if !e.lost {
				deviceGot = append(deviceGot, e.chunk)
			}
		}
		if e.method == "POST" && e.path == "/"+o.UpdateID {
			reportOn = fmt.Sprintf("%s %d", e.backend, e.status)
		}
	}
	all := make([]int, 21)
	for i := range all {
		all[i] = i + 1
	}
	assert.Equal(t, all, deviceGot, "the device got every chunk once, in order")
	wantServed := all
	if moment == killAfterServing { // the chunk whose answer was lost is served again by C, nothing else
		wantServed = append(append(append([]int{}, all[:at]...), at), all[at:]...)
	}
	assert.Equal(t, wantServed, served, "the chunks B and C served")
	for _, e := range log {
		if e.chunk > 0 && e.chunk <= at && !(moment == killAfterServing && e.chunk == at && !e.lost) {
			assert.Equal(t, "B", e.backend, "chunk %d was served by B", e.chunk)
		}
		if e.chunk > at || (moment == killAfterServing && e.chunk == at && !e.lost) {
			assert.Equal(t, "C", e.backend, "chunk %d was served by C", e.chunk)
		}
	}
	assert.Equal(t, "C 200", reportOn, "the install report went to C and was accepted")
	assert.Greater(t, onB, at, "B served the first part")
	assert.Greater(t, onC, 21-at, "C served the rest")

	// A shows the update finished (a list read: within 1 s of C's answer)
	var st struct {
		Counts struct{ Finished, InFlight, Pending int }
	}
	deadline := time.Now().Add(time.Second)
	for {
		require.NoError(t, json.Unmarshal(must(t, 200, "GET", a+"/update_requests/"+req.ID, nil), &st))
		if st.Counts.Finished == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, 1, st.Counts.Finished, "A shows the update finished: %+v", st.Counts)
	var hist []struct{ Status, ResultText string }
	require.NoError(t, json.Unmarshal(must(t, 200, "GET", a+"/vehicles/"+vin+"/history", nil), &hist))
	require.Len(t, hist, 1)
	assert.Equal(t, "finished", hist[0].Status)
	t.Logf("B killed %s; the device finished on C %v later (%d requests on B, %d on C)", moment,
		time.Since(killedAt).Round(time.Millisecond), onB, onC)
}
