package api

import (
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
)

// failure sends the request and requires an error answer with that status and code; it returns the
// description.
func (e *coreEnv) failure(method, path string, body any, status int, code string) string {
	e.t.Helper()
	var out map[string]any
	resp := e.do(method, path, body, &out)
	require.Equalf(e.t, status, resp.StatusCode, "%s %s: %v", method, path, out)
	require.Equalf(e.t, code, out["code"], "%s %s: %v", method, path, out)
	d, _ := out["description"].(string)
	require.NotEmpty(e.t, d)
	return d
}

// finish moves a vehicle's update to a final status with a result, as the device API would.
func (e *coreEnv) finish(vin, updateID string, to engine.Status, code int, text string) {
	e.t.Helper()
	_, err := e.deps.Engine.SetStatus(vin, updateID, to, &code, text)
	require.NoError(e.t, err)
}

func (e *coreEnv) requestVehicles(id, status string) []map[string]any {
	e.t.Helper()
	var vs []map[string]any
	path := "/api/v1/update_requests/" + id + "/vehicles"
	if status != "" {
		path += "?status=" + status
	}
	resp := e.do("GET", path, nil, &vs)
	require.Equal(e.t, 200, resp.StatusCode)
	return vs
}

func vinsOf(rows []map[string]any) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r["vin"].(string))
	}
	return out
}

func pkgID(name, version string) map[string]any {
	return map[string]any{"name": name, "version": version}
}

// QUEUE_REQUEST_ADD through the real resolver: the filters select the vehicles, each gets its own
// install list (missing dependencies first), and the vehicle that has the version is left out.
func TestCoreQueueResolvesAndPersistsInstallLists(t *testing.T) {
	e := newCoreEnv(t)
	e.fleet(4)
	e.ok("PUT", "/api/v1/vehicles/"+testVIN(1)+"/package/maps/1.0.0", nil) // has the dependency
	e.ok("PUT", "/api/v1/vehicles/"+testVIN(2)+"/package/nav/2.0.0", nil)  // has the package
	e.ok("PUT", "/api/v1/vehicles/WBA00000000000001", nil)                 // not selected by the filter

	out := e.queueReq(map[string]any{"packageId": pkgID("NAV", "2.0.0"), "priority": 3, "description": "Navigation 2", "requestConfirmation": true})
	assert.Regexp(t, uuidRe, out["id"], "a unique install request id")
	assert.Equal(t, map[string]any{"id": out["id"], "vehicles": 3.0, "skipped": 0.0}, out)
	id := out["id"].(string)
	assert.Equal(t, cnt(3, 0, 0, 0, 0), e.counts(id))

	var r map[string]any
	e.do("GET", "/api/v1/update_requests/"+id, nil, &r)
	assert.Equal(t, pkgID("nav", "2.0.0"), r["packageId"], "the registered spelling of the name")
	assert.Equal(t, 3.0, r["priority"])
	assert.Equal(t, "Navigation 2", r["description"])
	assert.Equal(t, true, r["requestConfirmation"])
	assert.Equal(t, "queued", r["state"])

	install := func(vin string) []any {
		q := e.vehicleQueue(vin)
		if len(q) == 0 {
			return nil
		}
		require.Len(t, q, 1)
		assert.Equal(t, id, q[0]["requestId"])
		assert.Equal(t, "pending", q[0]["status"])
		assert.Equal(t, 3.0, q[0]["priority"])
		assert.Regexp(t, updateIDRe, q[0]["updateId"])
		return q[0]["install"].([]any)
	}
	assert.Equal(t, []any{pkgID("nav", "2.0.0")}, install(testVIN(1)), "the installed dependency is not sent again")
	assert.Nil(t, install(testVIN(2)), "the vehicle that has the version gets nothing")
	assert.Equal(t, []any{pkgID("maps", "1.0.0"), pkgID("nav", "2.0.0")}, install(testVIN(3)), "dependencies first")
	assert.Equal(t, []any{pkgID("maps", "1.0.0"), pkgID("nav", "2.0.0")}, install(testVIN(4)))
	assert.Nil(t, install("WBA00000000000001"))
	assert.Equal(t, []string{testVIN(1), testVIN(3), testVIN(4)}, vinsOf(e.requestVehicles(id, "pending")))

	// Queuing the same version again skips the vehicles that have it pending or in flight; a new
	// vehicle is queued.
	e.ok("PUT", "/api/v1/vehicles/"+testVIN(5), nil)
	again := e.queueReq(map[string]any{"packageId": pkgID("nav", "2.0.0")})
	assert.Equal(t, 1.0, again["vehicles"])
	assert.Equal(t, 3.0, again["skipped"])
	assert.NotEqual(t, id, again["id"])
	assert.Equal(t, []string{testVIN(5)}, vinsOf(e.requestVehicles(again["id"].(string), "")))

	// Both requests are listed, oldest first.
	var list []map[string]any
	resp := e.do("GET", "/api/v1/update_requests", nil, &list)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("X-Total-Count"))
	require.Len(t, list, 2)
	assert.Equal(t, id, list[0]["id"])
	assert.Equal(t, again["id"], list[1]["id"])
	e.do("GET", "/api/v1/update_requests?limit=1&offset=1", nil, &list)
	require.Len(t, list, 1)
	assert.Equal(t, again["id"], list[0]["id"])

	// A package the vehicle lists as in use cannot be deleted while queued.
	e.failure("DELETE", "/api/v1/packages/maps/1.0.0", nil, 409, "package_in_use")
}

// QUEUE_REQUEST_ADD X1 and the rest of the bad input: 4xx and nothing queued.
func TestCoreQueueRefusals(t *testing.T) {
	e := newCoreEnv(t)
	e.fleet(2)
	d := e.failure("POST", "/api/v1/update_requests", map[string]any{"packageId": pkgID("nav", "9.9.9")}, 404, "package_not_found")
	assert.Contains(t, d, "Package ID does not exist")
	d = e.failure("POST", "/api/v1/update_requests", map[string]any{"packageId": pkgID("maps", "1.0.0")}, 404, "no_filters")
	assert.Contains(t, d, "No filters associated with package")
	for _, bad := range []any{
		`{"packageId":`,
		map[string]any{},
		map[string]any{"packageId": pkgID("nav", "2.0")},
		map[string]any{"packageId": pkgID("na v", "2.0.0")},
		map[string]any{"packageId": pkgID("nav", "2.0.0"), "priority": -1},
		map[string]any{"packageId": pkgID("nav", "2.0.0"), "priority": 1001},
		map[string]any{"packageId": pkgID("nav", "2.0.0"), "priority": "high"},
		map[string]any{"packageId": pkgID("nav", "2.0.0"), "periodOfValidity": "2025-01-01T00:00:00Z"},
		map[string]any{"packageId": pkgID("nav", "2.0.0"), "periodOfValidity": "2025-02-01T00:00:00Z/2025-01-01T00:00:00Z"},
		map[string]any{"packageId": pkgID("nav", "2.0.0"), "periodOfValidity": "soon/later"},
		map[string]any{"packageId": pkgID("nav", "2.0.0"), "description": string(make([]byte, engine.MaxDescription+1))},
	} {
		st, code := e.status("POST", "/api/v1/update_requests", bad)
		assert.Equalf(t, 400, st, "%v", bad)
		assert.Equalf(t, "invalid_entity", code, "%v", bad)
	}
	var list []map[string]any
	e.do("GET", "/api/v1/update_requests", nil, &list)
	assert.Empty(t, list, "nothing was queued")
	assert.Empty(t, e.vehicleQueue(testVIN(1)))

	// QUEUE_GET_STATUS, QUEUE_GET_*_VINS and QUEUE_REQUEST_CANCEL X1: the request does not exist.
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", "nope"} {
		e.failure("GET", "/api/v1/update_requests/"+id, nil, 404, "missing_update_request")
		e.failure("GET", "/api/v1/update_requests/"+id+"/vehicles?status=finished", nil, 404, "missing_update_request")
		e.failure("PUT", "/api/v1/update_requests/"+id+"/cancel", nil, 404, "missing_update_request")
	}
	id := e.queueReq(map[string]any{"packageId": pkgID("nav", "2.0.0")})["id"].(string)
	e.failure("GET", "/api/v1/update_requests/"+id+"/vehicles?status=done", nil, 400, "invalid_entity")
	e.failure("GET", "/api/v1/update_requests/"+id+"/vehicles?limit=0x", nil, 400, "invalid_entity")
	e.failure("GET", "/api/v1/update_requests?limit=10001", nil, 400, "invalid_entity")
}

// QUEUE_GET_STATUS, the per-status lists with timestamps and result codes, QUEUE_REQUEST_CANCEL (pending
// → canceled; in flight and finished untouched) and VIN_GET_UPDATE_HISTORY.
func TestCoreRequestStatusCancelAndHistory(t *testing.T) {
	c := &testClock{t: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	e := newCoreEnvWith(t, engine.Options{Now: c.Now})
	e.fleet(5)
	id := e.queueReq(map[string]any{"packageId": pkgID("nav", "2.0.0")})["id"].(string)
	upd := map[string]string{}
	for _, row := range e.requestVehicles(id, "") {
		upd[row["vin"].(string)] = row["updateId"].(string)
		assert.Equal(t, "2025-06-01T08:00:00Z", row["updatedAt"])
		assert.NotContains(t, row, "resultCode")
	}
	require.Len(t, upd, 5)

	c.Add(time.Hour)
	e.setStatus(testVIN(1), upd[testVIN(1)], engine.InFlight)
	e.setStatus(testVIN(2), upd[testVIN(2)], engine.InFlight)
	e.finish(testVIN(2), upd[testVIN(2)], engine.Finished, 0, "installed")
	e.setStatus(testVIN(3), upd[testVIN(3)], engine.InFlight)
	e.finish(testVIN(3), upd[testVIN(3)], engine.Failed, 4, "flash error")
	assert.Equal(t, cnt(2, 1, 1, 1, 0), e.counts(id))

	assert.Equal(t, []string{testVIN(4), testVIN(5)}, vinsOf(e.requestVehicles(id, "pending")))
	inFlight := e.requestVehicles(id, "inFlight")
	require.Len(t, inFlight, 1)
	assert.Equal(t, map[string]any{"vin": testVIN(1), "updateId": upd[testVIN(1)], "status": "inFlight", "updatedAt": "2025-06-01T09:00:00Z"}, inFlight[0])
	done := e.requestVehicles(id, "finished")
	require.Len(t, done, 1)
	assert.Equal(t, map[string]any{"vin": testVIN(2), "updateId": upd[testVIN(2)], "status": "finished", "updatedAt": "2025-06-01T09:00:00Z", "resultCode": 0.0, "resultText": "installed"}, done[0], "QUEUE_GET_COMPLETED_VINS: with the completion time")
	failed := e.requestVehicles(id, "failed")
	require.Len(t, failed, 1)
	assert.Equal(t, map[string]any{"vin": testVIN(3), "updateId": upd[testVIN(3)], "status": "failed", "updatedAt": "2025-06-01T09:00:00Z", "resultCode": 4.0, "resultText": "flash error"}, failed[0], "QUEUE_GET_FAILED_VINS: with the error code and time")
	var page []map[string]any
	resp := e.do("GET", "/api/v1/update_requests/"+id+"/vehicles?limit=2&offset=1", nil, &page)
	assert.Equal(t, "5", resp.Header.Get("X-Total-Count"))
	assert.Equal(t, []string{testVIN(5), testVIN(1)}, vinsOf(page), "every status: pending, inFlight, finished, failed, canceled, each by VIN")

	// Cancel: only the pending ones.
	c.Add(time.Hour)
	var cancel map[string]any
	resp = e.do("PUT", "/api/v1/update_requests/"+id+"/cancel", nil, &cancel)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, map[string]any{"canceled": 2.0}, cancel)
	assert.Equal(t, cnt(0, 1, 1, 1, 2), e.counts(id))
	canceled := e.requestVehicles(id, "canceled")
	assert.Equal(t, []string{testVIN(4), testVIN(5)}, vinsOf(canceled))
	assert.Equal(t, "2025-06-01T10:00:00Z", canceled[0]["updatedAt"])
	e.do("PUT", "/api/v1/update_requests/"+id+"/cancel", nil, &cancel)
	assert.Equal(t, map[string]any{"canceled": 0.0}, cancel, "a second cancel finds nothing pending")
	var r map[string]any
	e.do("GET", "/api/v1/update_requests/"+id, nil, &r)
	assert.Equal(t, "canceled", r["state"])
	assert.Len(t, e.vehicleQueue(testVIN(1)), 1, "the in-flight update is allowed to complete")
	assert.Empty(t, e.vehicleQueue(testVIN(4)))

	// The in-flight update can still finish after the cancel.
	e.finish(testVIN(1), upd[testVIN(1)], engine.Finished, 1, "installed, reboot pending")
	assert.Equal(t, cnt(0, 2, 1, 0, 2), e.counts(id))

	// VIN_GET_UPDATE_HISTORY: every update with its package, status, result and time.
	c.Add(time.Hour)
	radio := e.queueReq(map[string]any{"packageId": pkgID("radio", "1.0.0")})["id"].(string)
	var h []map[string]any
	resp = e.do("GET", "/api/v1/vehicles/"+testVIN(3)+"/history", nil, &h)
	require.Equal(t, 200, resp.StatusCode)
	require.Len(t, h, 2)
	assert.Equal(t, upd[testVIN(3)], h[0]["updateId"])
	assert.Equal(t, id, h[0]["requestId"])
	assert.Equal(t, pkgID("nav", "2.0.0"), h[0]["packageId"])
	assert.Equal(t, []any{pkgID("maps", "1.0.0"), pkgID("nav", "2.0.0")}, h[0]["install"], "with the ids of every package of the update")
	assert.Equal(t, "failed", h[0]["status"])
	assert.Equal(t, 4.0, h[0]["resultCode"])
	assert.Equal(t, "flash error", h[0]["resultText"])
	assert.Equal(t, "2025-06-01T09:00:00Z", h[0]["updatedAt"])
	assert.Equal(t, radio, h[1]["requestId"])
	assert.Equal(t, "pending", h[1]["status"])
	var h2 []map[string]any
	e.do("GET", "/api/v1/history?vin="+testVIN(3), nil, &h2)
	assert.Equal(t, h, h2)
	e.failure("GET", "/api/v1/vehicles/WDD99999999999999/history", nil, 404, "missing_vehicle")
	e.failure("GET", "/api/v1/history?vin=WDD99999999999999", nil, 404, "missing_vehicle")
	e.failure("GET", "/api/v1/history", nil, 400, "invalid_entity")
	e.failure("GET", "/api/v1/vehicles/not-a-vin/history", nil, 400, "invalid_entity")
	e.failure("GET", "/api/v1/vehicles/WDD99999999999999/queue", nil, 404, "missing_vehicle")
}

// testClock is an injectable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// updateIDRe: update ids are name-based (version 5) UUIDs of the request id and the VIN.
var updateIDRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// Campaigns: create (404 "Unknown Package ID", 400), list and get, preview = dry run that queues
// nothing, launch = an update request with the campaign's priority and window, once.
func TestCoreCampaigns(t *testing.T) {
	e := newCoreEnv(t)
	e.fleet(3)
	e.ok("PUT", "/api/v1/vehicles/"+testVIN(1)+"/package/nav/2.0.0", nil)

	var cp map[string]any
	resp := e.do("POST", "/api/v1/campaigns", map[string]any{"name": "Spring navigation", "packageId": pkgID("Nav", "2.0.0"), "priority": 2,
		"startTime": "2020-01-01T00:00:00Z", "endTime": "2999-01-01T00:00:00+01:00"}, &cp)
	require.Equal(t, 200, resp.StatusCode)
	assert.Regexp(t, uuidRe, cp["id"])
	assert.Equal(t, "Campaign created", cp["message"])
	assert.Equal(t, "created", cp["status"])
	assert.Equal(t, "Spring navigation", cp["name"])
	assert.Equal(t, pkgID("nav", "2.0.0"), cp["packageId"])
	assert.Equal(t, 2.0, cp["priority"])
	assert.Equal(t, "2020-01-01T00:00:00Z", cp["startTime"])
	assert.Equal(t, "2998-12-31T23:00:00Z", cp["endTime"])
	id := cp["id"].(string)

	d := e.failure("POST", "/api/v1/campaigns", map[string]any{"name": "x", "packageId": pkgID("ghost", "1.0.0")}, 404, "package_not_found")
	assert.Contains(t, d, "Unknown Package ID")
	for _, bad := range []any{
		`{"name":`,
		map[string]any{"packageId": pkgID("nav", "2.0.0")},
		map[string]any{"name": "  ", "packageId": pkgID("nav", "2.0.0")},
		map[string]any{"name": "x", "packageId": pkgID("nav", "2")},
		map[string]any{"name": "x", "packageId": pkgID("nav", "2.0.0"), "priority": -3},
		map[string]any{"name": "x", "packageId": pkgID("nav", "2.0.0"), "startTime": "tomorrow"},
		map[string]any{"name": "x", "packageId": pkgID("nav", "2.0.0"), "startTime": "2025-02-01T00:00:00Z", "endTime": "2025-01-01T00:00:00Z"},
	} {
		st, code := e.status("POST", "/api/v1/campaigns", bad)
		assert.Equalf(t, 400, st, "%v", bad)
		assert.Equalf(t, "invalid_entity", code, "%v", bad)
	}

	var list []map[string]any
	resp = e.do("GET", "/api/v1/campaigns", nil, &list)
	require.Equal(t, 200, resp.StatusCode)
	require.Len(t, list, 1, "refused campaigns are not stored")
	assert.Equal(t, id, list[0]["id"])
	var got map[string]any
	resp = e.do("GET", "/api/v1/campaigns/"+id, nil, &got)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "Spring navigation", got["name"])
	for _, missing := range []string{"00000000-0000-4000-8000-000000000000", "nope"} {
		e.failure("GET", "/api/v1/campaigns/"+missing, nil, 404, "missing_campaign")
		e.failure("GET", "/api/v1/campaigns/"+missing+"/preview", nil, 404, "missing_campaign")
		e.failure("POST", "/api/v1/campaigns/"+missing+"/launch", nil, 404, "missing_campaign")
	}

	// Preview: the resolver's dry run for the campaign's package; nothing is queued.
	var pv map[string]any
	resp = e.do("GET", "/api/v1/campaigns/"+id+"/preview?sample=1", nil, &pv)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, 2.0, pv["matched"])
	assert.Equal(t, 1.0, pv["alreadyInstalled"])
	assert.Equal(t, 3.0, pv["totalVehicles"])
	assert.Equal(t, []any{map[string]any{"vin": testVIN(2), "install": []any{pkgID("maps", "1.0.0"), pkgID("nav", "2.0.0")}}}, pv["sample"])
	assert.Equal(t, []any{}, pv["unresolved"])
	e.failure("GET", "/api/v1/campaigns/"+id+"/preview?sample=many", nil, 400, "invalid_entity")
	e.failure("GET", "/api/v1/campaigns/"+id+"/preview?sample=1001", nil, 400, "invalid_entity")
	e.do("GET", "/api/v1/update_requests", nil, &list)
	assert.Empty(t, list, "a preview queues nothing")

	// Launch: an update request with the campaign's priority, name and window.
	var l map[string]any
	resp = e.do("POST", "/api/v1/campaigns/"+id+"/launch", nil, &l)
	require.Equal(t, 200, resp.StatusCode)
	assert.Regexp(t, uuidRe, l["updateRequest"])
	assert.Equal(t, 2.0, l["vehicles"])
	var r map[string]any
	e.do("GET", "/api/v1/update_requests/"+l["updateRequest"].(string), nil, &r)
	assert.Equal(t, id, r["campaignId"])
	assert.Equal(t, 2.0, r["priority"])
	assert.Equal(t, "Spring navigation", r["description"])
	assert.Equal(t, "2020-01-01T00:00:00Z/2998-12-31T23:00:00Z", r["periodOfValidity"])
	assert.Equal(t, cnt(2, 0, 0, 0, 0), r["counts"])
	assert.Equal(t, []string{testVIN(2), testVIN(3)}, vinsOf(e.requestVehicles(l["updateRequest"].(string), "pending")))
	e.do("GET", "/api/v1/campaigns/"+id, nil, &got)
	assert.Equal(t, "running", got["status"])
	assert.Equal(t, l["updateRequest"], got["updateRequest"])
	assert.NotEmpty(t, got["launchedAt"])
	e.failure("POST", "/api/v1/campaigns/"+id+"/launch", nil, 409, "already_launched")
	e.do("GET", "/api/v1/update_requests", nil, &list)
	assert.Len(t, list, 1, "launched once")

	// A package without filters: preview and launch are no_filters, and the campaign stays created.
	resp = e.do("POST", "/api/v1/campaigns", map[string]any{"name": "maps only", "packageId": pkgID("maps", "1.0.0")}, &cp)
	require.Equal(t, 200, resp.StatusCode)
	e.failure("GET", "/api/v1/campaigns/"+cp["id"].(string)+"/preview", nil, 404, "no_filters")
	e.failure("POST", "/api/v1/campaigns/"+cp["id"].(string)+"/launch", nil, 404, "no_filters")
	e.do("GET", "/api/v1/campaigns/"+cp["id"].(string), nil, &got)
	assert.Equal(t, "created", got["status"])
}

// A package is in use while a pending update installs it; the install lists of vehicles a request
// skipped (they already had the package pending from an earlier request) do not count.
func TestCorePackageInUseOnlyByQueuedInstallLists(t *testing.T) {
	e := newCoreEnv(t)
	ok := func(method, path string, body any) {
		t.Helper()
		st, code := e.status(method, path, body)
		require.Truef(t, st/100 == 2, "%s %s: %d %s", method, path, st, code)
	}
	v1, v2, v3 := testVIN(1), testVIN(2), testVIN(3)
	ok("PUT", "/api/v1/packages/nav/1.0.0", map[string]any{})
	ok("PUT", "/api/v1/packages/radio/1.0.0", map[string]any{})
	ok("PUT", "/api/v1/packages/radio/1.0.0/dependencies/nav/1.0.0", nil)
	e.binaries(pkgID("nav", "1.0.0"), pkgID("radio", "1.0.0"))
	ok("POST", "/api/v1/filters", map[string]any{"name": "all", "expression": "TRUE"})
	ok("PUT", "/api/v1/packages/radio/1.0.0/filter/all", nil)
	ok("PUT", "/api/v1/vehicles/"+v1, nil)
	ok("PUT", "/api/v1/vehicles/"+v2, nil)
	ok("PUT", "/api/v1/vehicles/"+v2+"/package/nav/1.0.0", nil)

	r1 := e.queueReq(map[string]any{"packageId": pkgID("radio", "1.0.0")})["id"].(string) // v1: nav, radio; v2: radio
	ok("PUT", "/api/v1/vehicles/"+v3, nil)
	ok("PUT", "/api/v1/vehicles/"+v3+"/package/nav/1.0.0", nil)
	r2 := e.queueReq(map[string]any{"packageId": pkgID("radio", "1.0.0")}) // v3: radio; v1 and v2 skipped
	require.Equal(t, float64(1), r2["vehicles"])
	require.Equal(t, float64(2), r2["skipped"])

	e.failure("DELETE", "/api/v1/packages/nav/1.0.0", nil, 409, "package_in_use") // r1 installs nav on v1
	ok("PUT", "/api/v1/update_requests/"+r1+"/cancel", nil)
	ok("DELETE", "/api/v1/packages/nav/1.0.0", nil) // r2's pending update (v3) installs radio only
}
