package main

// Wake-ups with three sotad processes over one PostgreSQL schema (replicas): the scheduler's leases split the
// wake-ups among them, each vehicle is woken at most once per reconnect interval whoever sends, and
// the shards of a replica killed with SIGKILL are taken over. Skipped with a message without a
// PostgreSQL server (SOTA_REQUIRE_POSTGRES=1 makes that a failure).

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/wire"
)

// wakeAt is one wake-up as the receiver got it.
type wakeAt struct {
	replica  string
	w        wire.Wakeup
	issued   time.Time // signed by the server: when its last-wake record says it was woken
	received time.Time
}

func TestThreeReplicasWakeEachVehicleAtMostOncePerInterval(t *testing.T) {
	url := storetest.SpecKind(t, "postgres", t.TempDir()) // skips without a server
	bin := buildSotad(t)

	var mu sync.Mutex
	var wakes []wakeAt
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var wk wire.Wakeup
		if err := json.Unmarshal(b, &wk); err != nil {
			t.Errorf("wake-up at %s: %v", r.URL.Path, err)
			return
		}
		at, err := time.Parse(time.RFC3339Nano, wk.IssuedAt)
		if err != nil {
			t.Errorf("wake-up issuedAt %q: %v", wk.IssuedAt, err)
		}
		mu.Lock()
		wakes = append(wakes, wakeAt{replica: r.URL.Path[1:], w: wk, issued: at, received: time.Now()})
		mu.Unlock()
	}))
	defer recv.Close()

	// The fleet and an update request for all of it, written by a process whose scheduler never runs.
	setup := startSotadOn(t, bin, t.TempDir(), url, "postgres", "--scheduler-interval", "1h")
	api := func(status int, method, path string, body any) []byte {
		t.Helper()
		return must(t, status, method, setup.url+"/api/v1"+path, body)
	}
	api(200, "PUT", "/packages/nav/2.0.0", map[string]string{"description": "replica test"})
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "bin")
	require.NoError(t, err)
	fmt.Fprint(fw, "binary of nav 2.0.0")
	require.NoError(t, mw.Close())
	req, err := http.NewRequest("PUT", setup.url+"/api/v1/packages/nav/2.0.0", &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
	api(200, "POST", "/filters", map[string]string{"name": "everyone", "expression": "TRUE"})
	api(200, "PUT", "/packages/nav/2.0.0/filter/everyone", nil)
	const n = 60
	var fleet bytes.Buffer
	vins := make([]string, n)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDD%014d", i+1)
		fmt.Fprintf(&fleet, "{\"vin\":%q}\n", vins[i])
	}
	ireq, _ := http.NewRequest("POST", setup.url+"/api/v1/fleet/import", &fleet)
	ireq.Header.Set("Content-Type", "application/x-ndjson")
	iresp, err := client.Do(ireq)
	require.NoError(t, err)
	iresp.Body.Close()
	require.Equal(t, 200, iresp.StatusCode)
	var queued struct{ Vehicles int }
	require.NoError(t, json.Unmarshal(api(200, "POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": "nav", "version": "2.0.0"}}), &queued))
	require.Equal(t, n, queued.Vehicles)
	var key wire.WakeupKey
	require.NoError(t, json.Unmarshal(api(200, "GET", "/wakeup/public_key", nil), &key))
	pub, err := base64.StdEncoding.DecodeString(key.PublicKey)
	require.NoError(t, err)
	setup.kill()

	// Three replicas, a scheduler round every 100 ms, a vehicle woken at most once a second.
	const interval, reconnect = 100 * time.Millisecond, time.Second
	replicas := map[string]*sotadProc{}
	for _, name := range []string{"a", "b", "c"} {
		p := startSotadOn(t, bin, t.TempDir(), url, "postgres", "--scheduler-interval", interval.String(),
			"--reconnect-interval", reconnect.String(), "--wakeup-url", recv.URL+"/"+name)
		t.Cleanup(p.kill)
		replicas[name] = p
	}
	time.Sleep(5 * time.Second)
	replicas["c"].kill()
	killed := time.Now()
	time.Sleep(5 * time.Second)
	replicas["a"].kill()
	replicas["b"].kill()

	mu.Lock()
	defer mu.Unlock()
	byVIN := map[string][]wakeAt{}
	perReplica := map[string]int{}
	afterKill := map[string]bool{}
	cBefore := map[string]bool{}
	for _, w := range wakes {
		require.Truef(t, wire.VerifyWakeup(ed25519.PublicKey(pub), w.w), "wake-up of %s from %s is signed with the store's key", w.w.VIN, w.replica)
		byVIN[w.w.VIN] = append(byVIN[w.w.VIN], w)
		perReplica[w.replica]++
		if w.replica == "c" {
			cBefore[w.w.VIN] = true
			assert.Falsef(t, w.received.After(killed), "%s woken by c after c was killed", w.w.VIN)
		}
		if w.received.After(killed.Add(2 * time.Second)) { // the lease time to live (1 s) and a reconnect interval later
			afterKill[w.w.VIN] = true
		}
	}
	minIssued, minReceived := time.Hour, time.Hour
	for _, vin := range vins {
		ws := byVIN[vin]
		sort.Slice(ws, func(i, j int) bool { return ws[i].issued.Before(ws[j].issued) })
		// 10 s of a wake-up a second, less a lease hand-over: at least 4 each
		assert.GreaterOrEqualf(t, len(ws), 4, "%s was woken %d times in 10 s with a 1 s reconnect interval", vin, len(ws))
		for i := 1; i < len(ws); i++ {
			gap := ws[i].issued.Sub(ws[i-1].issued)
			minIssued = min(minIssued, gap)
			received := ws[i].received.Sub(ws[i-1].received)
			minReceived = min(minReceived, received)
			// at the receiver the gap is the interval give or take how long a wake-up took to arrive
			assert.GreaterOrEqualf(t, received, reconnect/2, "%s received twice within half the reconnect interval: from %s and %s",
				vin, ws[i-1].replica, ws[i].replica)
			assert.GreaterOrEqualf(t, gap, reconnect, "%s woken twice within the reconnect interval: by %s at %s and by %s at %s",
				vin, ws[i-1].replica, ws[i-1].issued.Format(time.StampMicro), ws[i].replica, ws[i].issued.Format(time.StampMicro))
		}
		assert.Truef(t, afterKill[vin], "%s (its shard's replica: %v) is still woken after c was killed", vin, cBefore[vin])
	}
	for _, name := range []string{"a", "b", "c"} {
		assert.Positivef(t, perReplica[name], "replica %s sent wake-ups (the shards are split)", name)
	}
	t.Logf("%d wake-ups of %d vehicles over 10 s: %v per replica; %d of the vehicles were c's before it was killed; shortest gap between two wake-ups of one vehicle: %s issued, %s received (reconnect interval %s)",
		len(wakes), n, perReplica, len(cBefore), minIssued.Round(time.Millisecond), minReceived.Round(time.Millisecond), reconnect)
}
