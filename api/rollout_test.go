package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/wire"
)

// device is one vehicle speaking the device API with its own token.
type simDevice struct {
	e     *coreEnv
	vin   string
	token string
}

func (e *coreEnv) simDevice(vin string) *simDevice {
	e.t.Helper()
	var tok struct{ Token string }
	resp := e.do("POST", "/api/v1/vehicles/"+vin+"/token", nil, &tok)
	require.Equal(e.t, 200, resp.StatusCode)
	return &simDevice{e: e, vin: vin, token: tok.Token}
}

func (d *simDevice) call(method, sub string, body any, out any) int {
	d.e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.e.srv.URL+"/api/v1/vehicle_updates/"+d.vin+sub, r)
	require.NoError(d.e.t, err)
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(d.e.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		require.NoError(d.e.t, json.Unmarshal(b, out), "%s", b)
	}
	return resp.StatusCode
}

// offer is the update the device is offered now ("" when none).
func (d *simDevice) offer() (updateID string, pkg string) {
	d.e.t.Helper()
	var n struct {
		UpdateAvailable *struct {
			UpdateID string
			Packages []struct{ Name, Version string }
		}
	}
	st := d.call("GET", "/notification", nil, &n)
	if st == 204 || n.UpdateAvailable == nil {
		return "", ""
	}
	require.Equal(d.e.t, 200, st)
	ps := n.UpdateAvailable.Packages
	return n.UpdateAvailable.UpdateID, ps[len(ps)-1].Name
}

// install takes the offered update and reports code.
func (d *simDevice) install(code int) bool {
	d.e.t.Helper()
	id, _ := d.offer()
	if id == "" {
		return false
	}
	require.Equal(d.e.t, 200, d.call("POST", "/"+id, map[string]any{"operation_results": []map[string]any{{"id": id, "result_code": code, "result_text": "sim"}}}, nil))
	return true
}

type campaignView struct {
	ID, Status, PauseReason, UpdateRequest string
	Groups                                 []struct {
		Name, Status, UpdateRequest string
		Vehicles                    int
		Counts                      map[string]int
	}
	Counts         map[string]int
	UpdateRequests []string
}

func (e *coreEnv) campaign(id string) campaignView {
	e.t.Helper()
	var c campaignView
	resp := e.do("GET", "/api/v1/campaigns/"+id, nil, &c)
	require.Equal(e.t, 200, resp.StatusCode)
	return c
}

// await polls the campaign until cond holds (gates are evaluated in the background after a report).
func (e *coreEnv) await(id string, what string, cond func(c campaignView) bool) campaignView {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := e.campaign(id)
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			require.FailNowf(e.t, "campaign never got there", "%s: %+v", what, c)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func groupStatuses(c campaignView) []string {
	var out []string
	for _, g := range c.Groups {
		out = append(out, g.Name+":"+g.Status)
	}
	return out
}

func rolloutFleet(e *coreEnv, n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		e.ok("PUT", "/api/v1/vehicles/"+testVIN(i), nil)
	}
	e.ok("PUT", "/api/v1/packages/nav/2.0.0", map[string]any{})
	e.ok("PUT", "/api/v1/packages/radio/1.0.0", map[string]any{})
	e.binaries(pkgID("nav", "2.0.0"), pkgID("radio", "1.0.0"))
	e.ok("POST", "/api/v1/filters", map[string]any{"name": "all", "expression": "TRUE"})
	e.ok("PUT", "/api/v1/packages/nav/2.0.0/filter/all", nil)
	e.ok("PUT", "/api/v1/packages/radio/1.0.0/filter/all", nil)
}

// A staged campaign on the real server with devices on the device API: the canary goes out alone,
// the next group follows when the canary reaches the success threshold, failures past the error
// threshold pause the campaign by itself (its pending updates are no longer offered, other updates
// of the vehicle are), a resume offers them again and the campaign finishes.
func TestRolloutStagedCampaign(t *testing.T) {
	e := newCoreEnv(t)
	rolloutFleet(e, 100)
	var cp map[string]any
	resp := e.do("POST", "/api/v1/campaigns", map[string]any{"name": "staged", "packageId": pkgID("nav", "2.0.0"),
		"groups":           []map[string]any{{"name": "canary", "percent": 10}, {"name": "wave", "percent": 30}},
		"successThreshold": 70, "errorThreshold": 20}, &cp)
	require.Equal(t, 200, resp.StatusCode, "%v", cp)
	id := cp["id"].(string)
	assert.Equal(t, "Campaign created", cp["message"])
	assert.Equal(t, "created", cp["status"])
	assert.Equal(t, 70.0, cp["successThreshold"])
	assert.Equal(t, 20.0, cp["errorThreshold"])
	assert.Equal(t, false, cp["continuous"])
	c := e.campaign(id)
	assert.Equal(t, []string{"canary:scheduled", "wave:scheduled", "rest:scheduled"}, groupStatuses(c), "a rest group takes what the percent groups leave")

	// The preview shows each group's size and is the same twice.
	var pv, pv2 map[string]any
	require.Equal(t, 200, e.do("GET", "/api/v1/campaigns/"+id+"/preview", nil, &pv).StatusCode)
	wantGroups := []any{map[string]any{"name": "canary", "vehicles": 10.0}, map[string]any{"name": "wave", "vehicles": 30.0}, map[string]any{"name": "rest", "vehicles": 60.0}}
	assert.Equal(t, wantGroups, pv["groups"])
	assert.Equal(t, []any{}, pv["problems"])
	assert.Equal(t, 100.0, pv["matched"])
	e.do("GET", "/api/v1/campaigns/"+id+"/preview", nil, &pv2)
	assert.Equal(t, pv["groups"], pv2["groups"])

	var l map[string]any
	require.Equal(t, 200, e.do("POST", "/api/v1/campaigns/"+id+"/launch", nil, &l).StatusCode)
	assert.Equal(t, 100.0, l["vehicles"])
	assert.Equal(t, wantGroups, l["groups"])
	e.failure("POST", "/api/v1/campaigns/"+id+"/launch", nil, 409, "already_launched")
	c = e.campaign(id)
	assert.Equal(t, "running", c.Status)
	assert.Equal(t, []string{"canary:released", "wave:scheduled", "rest:scheduled"}, groupStatuses(c))
	assert.Equal(t, l["updateRequest"], c.Groups[0].UpdateRequest)
	assert.Equal(t, []string{c.Groups[0].UpdateRequest}, c.UpdateRequests)
	assert.Equal(t, map[string]int{"pending": 10, "inFlight": 0, "finished": 0, "failed": 0, "canceled": 0}, c.Groups[0].Counts)

	devs := map[string]*simDevice{}
	var canary, wave, rest []*simDevice
	for i := 1; i <= 100; i++ {
		d := e.simDevice(testVIN(i))
		devs[d.vin] = d
		if id, _ := d.offer(); id != "" {
			canary = append(canary, d)
		}
	}
	require.Len(t, canary, 10, "only the canary is offered the update")

	// 7 of 10 finish: the canary reaches 70%, the wave is released.
	for _, d := range canary[:7] {
		require.True(t, d.install(0))
	}
	c = e.await(id, "wave released", func(c campaignView) bool { return c.Groups[1].Status == "released" })
	assert.Equal(t, "running", c.Status)
	for _, d := range devs {
		if id, _ := d.offer(); id != "" && !hasDevice(canary, d) {
			wave = append(wave, d)
		}
	}
	require.Len(t, wave, 30)

	// 9 of the wave fail: 9 of 40 released vehicles (22.5%) is past the 20% threshold: paused.
	for _, d := range wave[:9] {
		require.True(t, d.install(wire.ResultInstallFailed))
	}
	c = e.await(id, "paused by itself", func(c campaignView) bool { return c.Status == "paused" })
	assert.Equal(t, `groups "canary", "wave": 9 of 40 failed (22.5%), error threshold 20%`, c.PauseReason)
	assert.Equal(t, map[string]int{"pending": 24, "inFlight": 0, "finished": 7, "failed": 9, "canceled": 0}, c.Counts)
	assert.Equal(t, "scheduled", c.Groups[2].Status, "no group is released while paused")

	// Paused: the campaign's pending updates are not offered, another update of the vehicle is.
	for _, d := range append(wave[9:], canary[7:]...) {
		id, _ := d.offer()
		assert.Empty(t, id, "a paused campaign's update is not offered to %s", d.vin)
	}
	e.queueReq(map[string]any{"packageId": pkgID("radio", "1.0.0")})
	_, pkg := wave[10].offer()
	assert.Equal(t, "radio", pkg, "another update of the vehicle is still offered")
	require.True(t, wave[10].install(0))
	e.failure("POST", "/api/v1/campaigns/"+id+"/pause", nil, 409, "invalid_state")
	e.failure("POST", "/api/v1/campaigns/"+id+"/release", nil, 409, "invalid_state")

	// Resume: offered again; the error gate counts only new failures.
	var resumed campaignView
	require.Equal(t, 200, e.do("POST", "/api/v1/campaigns/"+id+"/resume", nil, &resumed).StatusCode)
	assert.Equal(t, "running", resumed.Status)
	assert.Empty(t, resumed.PauseReason)
	e.failure("POST", "/api/v1/campaigns/"+id+"/resume", nil, 409, "invalid_state")
	for _, d := range append(wave[9:], canary[7:]...) {
		require.True(t, d.install(0), "offered again after the resume: %s", d.vin)
	}
	// the wave: 21 of 30 finished (70%): the rest is released
	c = e.await(id, "rest released", func(c campaignView) bool { return c.Groups[2].Status == "released" })
	for i := 1; i <= 100; i++ {
		if d := devs[testVIN(i)]; !hasDevice(canary, d) && !hasDevice(wave, d) {
			rest = append(rest, d)
			q := e.vehicleQueue(d.vin)
			assert.Equal(t, "nav", q[len(q)-1]["packageId"].(map[string]any)["name"], "the rest is offered nav now")
		}
	}
	require.Len(t, rest, 60)
	for _, d := range rest {
		for d.install(0) { // the radio update too, where one is queued
		}
	}
	c = e.await(id, "finished", func(c campaignView) bool { return c.Status == "finished" })
	assert.Equal(t, []string{"canary:done", "wave:done", "rest:done"}, groupStatuses(c))
	assert.Equal(t, map[string]int{"pending": 0, "inFlight": 0, "finished": 91, "failed": 9, "canceled": 0}, c.Counts)
	assert.Len(t, c.UpdateRequests, 3, "one update request per released group")
	e.failure("POST", "/api/v1/campaigns/"+id+"/abort", nil, 409, "invalid_state")

	// Everything holds after a restart.
	e.restart()
	assert.Equal(t, c, e.campaign(id))
}

func hasDevice(ds []*simDevice, d *simDevice) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// The rows of API.md "Rollouts: staged campaigns" that the staged test does not reach.
func TestRolloutCampaignRows(t *testing.T) {
	t.Run("creation refuses bad fields and group filters", func(t *testing.T) {
		e := newCoreEnv(t)
		rolloutFleet(e, 3)
		base := func(extra map[string]any) map[string]any {
			b := map[string]any{"name": "c", "packageId": pkgID("nav", "2.0.0")}
			for k, v := range extra {
				b[k] = v
			}
			return b
		}
		for _, tc := range []struct {
			body map[string]any
			want string
		}{
			{base(map[string]any{"groups": []any{}}), ""},
			{base(map[string]any{"groups": []map[string]any{{"name": ""}}}), "groups[0].name must be 1 to 40 characters"},
			{base(map[string]any{"groups": []map[string]any{{"name": "a"}, {"name": "A"}}}), `groups[1].name "A" is used twice; group names are unique in a campaign`},
			{base(map[string]any{"groups": []map[string]any{{"name": "a", "percent": 0}}}), "groups[0].percent must be 1 to 100, not 0"},
			{base(map[string]any{"groups": []map[string]any{{"name": "a", "percent": 101}}}), "groups[0].percent must be 1 to 100, not 101"},
			{base(map[string]any{"groups": []map[string]any{{"name": "rest", "percent": 5}}}), `the group name "rest" is kept for the vehicles no group takes when the last group has a filter or a percent`},
			{base(map[string]any{"groups": []map[string]any{{"name": "a", "size": 5}}}), `Unknown field "size" in the request body`},
			{base(map[string]any{"successThreshold": 0}), "successThreshold must be 1 to 100, not 0"},
			{base(map[string]any{"errorThreshold": 101}), "errorThreshold must be 0 to 100, not 101"},
			{base(map[string]any{"retry": map[string]any{"attempts": 11}}), "retry.attempts must be 1 to 10, not 11"},
			{base(map[string]any{"retry": map[string]any{"attempts": 1, "delaySeconds": -1}}), "retry.delaySeconds must be at least 0, not -1"},
			{base(map[string]any{"continuous": "yes"}), `Field "continuous" must be true or false, not string`},
			{base(map[string]any{"groups": map[string]any{}}), `Field "groups" must be an array, not object`},
		} {
			var out map[string]any
			resp := e.do("POST", "/api/v1/campaigns", tc.body, &out)
			if tc.want == "" {
				assert.Equal(t, 200, resp.StatusCode, "%v: %v", tc.body, out)
				continue
			}
			assert.Equal(t, 400, resp.StatusCode, "%v", tc.body)
			assert.Equal(t, "invalid_entity", out["code"])
			assert.Equal(t, tc.want, out["description"])
		}
		d := e.failure("POST", "/api/v1/campaigns", base(map[string]any{"groups": []map[string]any{{"name": "a", "filter": `vin_matches "(`}}}), 406, "invalid_filter")
		assert.Contains(t, d, "Filter failed validation")
		var cp map[string]any
		e.do("POST", "/api/v1/campaigns", base(nil), &cp)
		c := e.campaign(cp["id"].(string))
		assert.Equal(t, []string{"all:scheduled"}, groupStatuses(c), "without groups: one group with every vehicle")
	})

	t.Run("a preview whose group filter no longer validates is 406 and launch queues nothing", func(t *testing.T) {
		e := newCoreEnv(t)
		rolloutFleet(e, 3)
		e.ok("POST", "/api/v1/filters", map[string]any{"name": "early", "expression": `vin_matches "^1"`})
		var cp map[string]any
		resp := e.do("POST", "/api/v1/campaigns", map[string]any{"name": "c", "packageId": pkgID("nav", "2.0.0"),
			"groups": []map[string]any{{"name": "first", "filter": `filter "early"`}}}, &cp)
		require.Equal(t, 200, resp.StatusCode, "%v", cp)
		id := cp["id"].(string)
		e.ok("DELETE", "/api/v1/filters/early", nil) // linked to no package: nothing stops its deletion
		d := e.failure("GET", "/api/v1/campaigns/"+id+"/preview", nil, 406, "invalid_filter")
		assert.Contains(t, d, "early")
		e.failure("POST", "/api/v1/campaigns/"+id+"/launch", nil, 406, "invalid_filter")
		assert.Equal(t, "created", e.campaign(id).Status, "nothing was launched")
	})

	t.Run("launch refuses a missing binary and an ended campaign", func(t *testing.T) {
		clk := &testClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
		e := newCoreEnvWith(t, engine.Options{Now: clk.Now})
		rolloutFleet(e, 3)
		e.ok("PUT", "/api/v1/packages/maps/1.0.0", map[string]any{})
		e.ok("PUT", "/api/v1/packages/nav/3.0.0", map[string]any{})
		e.ok("PUT", "/api/v1/packages/nav/3.0.0/dependencies/maps/1.0.0", nil)
		e.binaries(pkgID("nav", "3.0.0"))
		e.ok("PUT", "/api/v1/packages/nav/3.0.0/filter/all", nil)
		var cp map[string]any
		e.do("POST", "/api/v1/campaigns", map[string]any{"name": "c", "packageId": pkgID("nav", "3.0.0")}, &cp)
		id := cp["id"].(string)
		var pv map[string]any
		e.do("GET", "/api/v1/campaigns/"+id+"/preview", nil, &pv)
		require.Len(t, pv["problems"], 1)
		assert.Equal(t, "missing_binary", pv["problems"].([]any)[0].(map[string]any)["code"])
		var out map[string]any
		resp := e.do("POST", "/api/v1/campaigns/"+id+"/launch", nil, &out)
		assert.Equal(t, 409, resp.StatusCode)
		assert.Equal(t, "missing_binary", out["code"])
		assert.Equal(t, []any{pkgID("maps", "1.0.0")}, out["packages"])
		assert.Equal(t, "created", e.campaign(id).Status, "nothing is queued")
		var list []any
		e.do("GET", "/api/v1/update_requests", nil, &list)
		assert.Empty(t, list)

		e.do("POST", "/api/v1/campaigns", map[string]any{"name": "soon over", "packageId": pkgID("nav", "2.0.0"),
			"startTime": "2026-02-01T00:00:00Z", "endTime": "2026-03-02T00:00:00Z"}, &cp)
		clk.Add(48 * time.Hour)
		d := e.failure("POST", "/api/v1/campaigns/"+cp["id"].(string)+"/launch", nil, 409, "campaign_ended")
		assert.Equal(t, "Campaign ended at 2026-03-02T00:00:00Z; it cannot be launched", d)
		e.failure("POST", "/api/v1/campaigns/00000000-0000-4000-8000-000000000000/launch", nil, 404, "missing_campaign")
	})

	t.Run("pause, release, abort and their states", func(t *testing.T) {
		e := newCoreEnv(t)
		rolloutFleet(e, 10)
		var cp map[string]any
		e.do("POST", "/api/v1/campaigns", map[string]any{"name": "c", "packageId": pkgID("nav", "2.0.0"),
			"groups": []map[string]any{{"name": "first", "filter": `vin_matches "0[1-3]$"`}, {"name": "second", "percent": 50}}}, &cp)
		id := cp["id"].(string)
		for _, a := range []string{"pause", "resume", "release", "abort"} {
			e.failure("POST", "/api/v1/campaigns/"+id+"/"+a, nil, 409, "invalid_state")
			e.failure("POST", "/api/v1/campaigns/00000000-0000-4000-8000-000000000000/"+a, nil, 404, "missing_campaign")
		}
		var l map[string]any
		e.do("POST", "/api/v1/campaigns/"+id+"/launch", nil, &l)
		assert.Equal(t, []any{map[string]any{"name": "first", "vehicles": 3.0}, map[string]any{"name": "second", "vehicles": 5.0},
			map[string]any{"name": "rest", "vehicles": 2.0}}, l["groups"])
		var c campaignView
		require.Equal(t, 200, e.do("POST", "/api/v1/campaigns/"+id+"/pause", nil, &c).StatusCode)
		assert.Equal(t, "paused", c.Status)
		assert.Equal(t, "paused by an operator", c.PauseReason)
		d := e.simDevice(testVIN(1))
		uid, _ := d.offer()
		assert.Empty(t, uid, "paused")
		e.do("POST", "/api/v1/campaigns/"+id+"/resume", nil, &c)
		uid, _ = d.offer()
		assert.NotEmpty(t, uid, "resumed")

		// the operator's override releases the next groups whatever their gates say
		require.Equal(t, 200, e.do("POST", "/api/v1/campaigns/"+id+"/release", nil, &c).StatusCode)
		assert.Equal(t, []string{"first:released", "second:released", "rest:scheduled"}, groupStatuses(c))
		e.do("POST", "/api/v1/campaigns/"+id+"/release", nil, &c)
		assert.Equal(t, []string{"first:released", "second:released", "rest:released"}, groupStatuses(c))
		e.failure("POST", "/api/v1/campaigns/"+id+"/release", nil, 409, "no_group")

		// abort: pending canceled, in flight goes on
		require.Equal(t, 200, d.call("POST", "/"+uid+"/start", nil, nil))
		var ab map[string]any
		require.Equal(t, 200, e.do("POST", "/api/v1/campaigns/"+id+"/abort", nil, &ab).StatusCode)
		assert.Equal(t, 9.0, ab["canceled"])
		c = e.campaign(id)
		assert.Equal(t, "aborted", c.Status)
		assert.Equal(t, map[string]int{"pending": 0, "inFlight": 1, "finished": 0, "failed": 0, "canceled": 9}, c.Counts)
		require.True(t, d.install(0), "the update in flight goes on")
		for _, a := range []string{"pause", "resume", "release", "abort"} {
			e.failure("POST", "/api/v1/campaigns/"+id+"/"+a, nil, 409, "invalid_state")
		}
	})

	t.Run("retries by result code after the delay, counted once per vehicle", func(t *testing.T) {
		clk := &testClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
		e := newCoreEnvWith(t, engine.Options{Now: clk.Now})
		rolloutFleet(e, 3)
		var cp map[string]any
		e.do("POST", "/api/v1/campaigns", map[string]any{"name": "c", "packageId": pkgID("nav", "2.0.0"),
			"retry": map[string]any{"attempts": 1, "delaySeconds": 60}}, &cp)
		id := cp["id"].(string)
		e.ok("POST", "/api/v1/campaigns/"+id+"/launch", nil)
		d1, d2, d3 := e.simDevice(testVIN(1)), e.simDevice(testVIN(2)), e.simDevice(testVIN(3))
		require.True(t, d1.install(wire.ResultInstallFailed))
		require.True(t, d2.install(wire.ResultUserDeclined)) // never retried
		require.True(t, d3.install(0))
		eng := e.deps.Engine
		require.NoError(t, eng.RunCampaigns(t.Context()))
		uid, _ := d1.offer()
		assert.Empty(t, uid, "not before the delay")
		clk.Add(61 * time.Second)
		require.NoError(t, eng.RunCampaigns(t.Context()))
		uid, _ = d1.offer()
		assert.NotEmpty(t, uid, "retried after the delay")
		uid, _ = d2.offer()
		assert.Empty(t, uid, "USER_DECLINED is never retried")
		c := e.campaign(id)
		assert.Equal(t, map[string]int{"pending": 1, "inFlight": 0, "finished": 1, "failed": 1, "canceled": 0}, c.Counts, "the retried vehicle counts once")
		assert.Equal(t, "running", c.Status)
		require.True(t, d1.install(wire.ResultInstallFailed))
		clk.Add(61 * time.Second)
		require.NoError(t, eng.RunCampaigns(t.Context()))
		uid, _ = d1.offer()
		assert.Empty(t, uid, "no attempts left")
		c = e.await(id, "finished", func(c campaignView) bool { return c.Status == "finished" })
		assert.Equal(t, map[string]int{"pending": 0, "inFlight": 0, "finished": 1, "failed": 2, "canceled": 0}, c.Counts)
	})

	t.Run("a continuous campaign takes vehicles that come to match later into its last group", func(t *testing.T) {
		e := newCoreEnv(t)
		rolloutFleet(e, 4)
		e.ok("POST", "/api/v1/filters", map[string]any{"name": "eu", "expression": `attr "region" == "EU"`})
		e.ok("PUT", "/api/v1/packages/eufm/1.0.0", map[string]any{})
		e.binaries(pkgID("eufm", "1.0.0"))
		e.ok("PUT", "/api/v1/packages/eufm/1.0.0/filter/eu", nil)
		e.ok("PUT", "/api/v1/vehicles/"+testVIN(1)+"/attributes", map[string]any{"region": "EU"})
		var cp map[string]any
		e.do("POST", "/api/v1/campaigns", map[string]any{"name": "c", "packageId": pkgID("eufm", "1.0.0"), "continuous": true,
			"endTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, &cp)
		id := cp["id"].(string)
		var l map[string]any
		e.do("POST", "/api/v1/campaigns/"+id+"/launch", nil, &l)
		assert.Equal(t, 1.0, l["vehicles"])
		require.True(t, e.simDevice(testVIN(1)).install(0))
		// a changed attribute and a new vehicle come to match
		e.ok("PUT", "/api/v1/vehicles/"+testVIN(2)+"/attributes", map[string]any{"region": "EU"})
		e.ok("PUT", "/api/v1/vehicles/"+testVIN(9), map[string]any{"attributes": map[string]any{"region": "EU"}})
		require.NoError(t, e.deps.Engine.RunCampaigns(t.Context()))
		c := e.campaign(id)
		assert.Equal(t, "running", c.Status, "a continuous campaign runs until its end")
		assert.Equal(t, 3, c.Groups[0].Vehicles)
		assert.Equal(t, map[string]int{"pending": 2, "inFlight": 0, "finished": 1, "failed": 0, "canceled": 0}, c.Counts)
		for _, vin := range []string{testVIN(2), testVIN(9)} {
			uid, _ := e.simDevice(vin).offer()
			assert.NotEmpty(t, uid, vin)
		}
		uid, _ := e.simDevice(testVIN(3)).offer()
		assert.Empty(t, uid)
		require.NoError(t, e.deps.Engine.RunCampaigns(t.Context()))
		assert.Equal(t, 3, e.campaign(id).Groups[0].Vehicles, "nobody joins twice")
	})
}

// A paused campaign's update is not offered over hawkBit DDI either; its resume offers it again.
func TestRolloutPausedCampaignOverDDI(t *testing.T) {
	e, _, _, ta, _ := ddiFleet(t)
	A := "TargetToken " + ta
	var cp struct{ ID string }
	e.want(200, "", "POST", "/campaigns", "", map[string]any{"name": "rootfs", "packageId": map[string]string{"name": "rootfs", "version": "1.0.0"}}, &cp)
	e.want(200, "", "POST", "/campaigns/"+cp.ID+"/launch", "", nil, nil)
	require.Contains(t, e.pollDDI(vinA, A).Links, "deploymentBase")
	e.want(200, "", "POST", "/campaigns/"+cp.ID+"/pause", "", nil, nil)
	assert.NotContains(t, e.pollDDI(vinA, A).Links, "deploymentBase", "paused: nothing to deploy")
	e.want(200, "", "POST", "/campaigns/"+cp.ID+"/resume", "", nil, nil)
	assert.Contains(t, e.pollDDI(vinA, A).Links, "deploymentBase")
}
