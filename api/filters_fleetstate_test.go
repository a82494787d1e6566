package api

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
)

// TestFleetStatePredicates follows seen_within and update_status through the real server: device
// polls and status changes reach the index, GET /vehicles?expression=, dry runs and explain answer
// them, and a restart rebuilds them from the store.
func TestFleetStatePredicates(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := newCoreEnvWith(t, engine.Options{Now: clock})
	e.fleet(3)

	matching := func(expr string) []string {
		t.Helper()
		var list []map[string]any
		resp := e.do("GET", "/api/v1/vehicles?expression="+url.QueryEscape(expr), nil, &list)
		require.Equal(t, 200, resp.StatusCode, "%s: %v", expr, list)
		vins := []string{}
		for _, v := range list {
			vins = append(vins, v["vin"].(string))
		}
		assert.Equal(t, len(vins), atoi(t, resp.Header.Get("X-Total-Count")))
		return vins
	}
	v1, v2, v3 := testVIN(1), testVIN(2), testVIN(3)
	poll := func(vin string) {
		t.Helper()
		var tok struct{ Token string }
		require.Equal(t, 200, e.do("POST", "/api/v1/vehicles/"+vin+"/token", map[string]any{}, &tok).StatusCode)
		req, err := http.NewRequest("GET", e.srv.URL+"/api/v1/vehicle_updates/"+vin, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
	}

	// Nobody has called: seen_within is false for all, NOT seen_within finds the dormant cars.
	assert.Empty(t, matching(`seen_within "7d"`))
	assert.Equal(t, []string{v1, v2, v3}, matching(`NOT seen_within "30d"`))

	// v1 polls now, v2 polls and then the clock moves on two hours.
	poll(v2)
	advance(2 * time.Hour)
	poll(v1)
	assert.Equal(t, []string{v1}, matching(`seen_within "1h"`))
	assert.Equal(t, []string{v1, v2}, matching(`seen_within "2h"`), "the boundary is included")
	assert.Equal(t, []string{v3}, matching(`NOT seen_within "1d"`))

	// update_status follows the queue and the device's reports.
	req := e.queueReq(map[string]any{"packageId": map[string]string{"name": "nav", "version": "2.0.0"}})
	id := req["id"].(string)
	assert.Equal(t, []string{v1, v2, v3}, matching(`update_status "nav" "2.0.0" == "pending"`))
	assert.Empty(t, matching(`update_status "nav" "1.0.0" == "pending"`), "another version")
	for _, r := range e.requestVehicles(id, "pending") {
		switch r["vin"] {
		case v1:
			e.finish(v1, r["updateId"].(string), engine.Failed, 4, "no space")
		case v2:
			e.setStatus(v2, r["updateId"].(string), engine.InFlight)
		}
	}
	assert.Equal(t, []string{v1}, matching(`update_status "NAV" "2.0.0" IN ("failed", "canceled")`))
	assert.Equal(t, []string{v1, v3}, matching(`update_status "nav" "2.0.0" != "inFlight"`))
	assert.Equal(t, []string{v1, v2, v3}, matching(`update_status "radio" "1.0.0" != "failed"`), "no update: != is true")

	// A dry run and explain read the same state.
	var dry struct{ Matched int }
	resp := e.do("POST", "/api/v1/resolve/dry-run", map[string]any{"package": map[string]string{"name": "radio", "version": "1.0.0"},
		"expression": `update_status "nav" "2.0.0" == "failed" AND seen_within "1h"`}, &dry)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 1, dry.Matched)
	var ex struct {
		Result bool
		Tree   struct{ Children []struct{ Value bool } }
	}
	resp = e.do("POST", "/api/v1/filters/explain", map[string]any{"expression": `seen_within "1h" AND update_status "nav" "2.0.0" == "failed"`, "vin": v1}, &ex)
	require.Equal(t, 200, resp.StatusCode)
	assert.True(t, ex.Result)
	require.Len(t, ex.Tree.Children, 2)
	assert.True(t, ex.Tree.Children[0].Value && ex.Tree.Children[1].Value)

	// A staged campaign aims its first group at the vehicles the release failed on.
	var cp map[string]any
	resp = e.do("POST", "/api/v1/campaigns", map[string]any{"name": "retry", "packageId": map[string]string{"name": "radio", "version": "1.0.0"},
		"groups": []map[string]any{{"name": "failedNav", "filter": `update_status "nav" "2.0.0" == "failed"`}, {"name": "recent", "filter": `seen_within "2h"`}}}, &cp)
	require.Equal(t, 200, resp.StatusCode, "%v", cp)
	var pv map[string]any
	require.Equal(t, 200, e.do("GET", "/api/v1/campaigns/"+cp["id"].(string)+"/preview", nil, &pv).StatusCode)
	assert.Equal(t, []any{map[string]any{"name": "failedNav", "vehicles": 1.0}, map[string]any{"name": "recent", "vehicles": 1.0},
		map[string]any{"name": "rest", "vehicles": 1.0}}, pv["groups"])

	e.restart()
	assert.Equal(t, []string{v1}, matching(`update_status "nav" "2.0.0" == "failed"`))
	assert.Equal(t, []string{v2}, matching(`update_status "nav" "2.0.0" == "inFlight"`))
	assert.Equal(t, []string{v1, v2}, matching(`seen_within "2h"`))
	advance(90 * time.Minute)
	assert.Equal(t, []string{v1}, matching(`seen_within "2h"`), "the same filter matches fewer vehicles later")
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', "not a number: %q", s)
		n = n*10 + int(c-'0')
	}
	return n
}
