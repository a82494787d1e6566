package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
)

// The Core table of API.md as a checklist, checked by TestMain after a full run of the package like
// the Resolver table (resolver_contract_test.go): every row's success and documented errors must have
// been answered by a Core test server (coreEnv), every read must have been answered 200 after a
// restart, and no row may answer a 5xx or an undocumented 4xx code (400 invalid_entity is allowed
// everywhere).
var coreContract = []contractRow{
	// The multipart row; the JSON row of the same route is the Resolver table's (200).
	{"PUT", "/packages/:name/:version", []string{"204", "400 checksum_mismatch", "400 invalid_entity",
		"413 body_too_large"}}, // 413: a binary over the server's upload limit (engine.Options.MaxUpload)
	{"GET", "/packages/:name/:version/download", []string{"200", "206", "404 missing_binary"}},
	{"POST", "/update_requests", []string{"200", "400 invalid_entity", "404 package_not_found", "404 no_filters", "409 missing_binary"}},
	{"GET", "/update_requests", []string{"200"}},
	{"GET", "/update_requests/:id", []string{"200", "404 missing_update_request"}},
	{"GET", "/update_requests/:id/vehicles", []string{"200", "400 invalid_entity", "404 missing_update_request"}},
	{"PUT", "/update_requests/:id/cancel", []string{"200", "404 missing_update_request"}},
	{"POST", "/campaigns", []string{"200", "400 invalid_entity", "404 package_not_found", "406 invalid_filter"}},
	{"GET", "/campaigns", []string{"200"}},
	{"GET", "/campaigns/:id", []string{"200", "404 missing_campaign"}},
	// 406: a group filter that refers to a saved filter deleted since the campaign was created.
	{"GET", "/campaigns/:id/preview", []string{"200", "404 missing_campaign", "404 no_filters", "406 invalid_filter"}},
	{"POST", "/campaigns/:id/launch", []string{"200", "404 missing_campaign", "404 no_filters", "406 invalid_filter", "409 already_launched",
		"409 missing_binary", "409 campaign_ended"}},
	{"POST", "/campaigns/:id/pause", []string{"200", "404 missing_campaign", "409 invalid_state"}},
	{"POST", "/campaigns/:id/resume", []string{"200", "404 missing_campaign", "409 invalid_state"}},
	{"POST", "/campaigns/:id/release", []string{"200", "404 missing_campaign", "409 invalid_state", "409 no_group"}},
	{"POST", "/campaigns/:id/abort", []string{"200", "404 missing_campaign", "409 invalid_state"}},
	{"GET", "/vehicles/:vin/queue", []string{"200", "404 missing_vehicle"}},
	{"POST", "/update_requests/purge", []string{"200"}},
	{"POST", "/update_requests/xmit", []string{"200"}},
	{"POST", "/vehicles/:vin/get_all_packages", []string{"200", "404 missing_vehicle"}},
	{"GET", "/vehicles/:vin/history", []string{"200", "404 missing_vehicle"}},
	{"GET", "/history", []string{"200", "400 invalid_entity", "404 missing_vehicle"}},
	{"POST", "/data_plans", []string{"200", "400 invalid_entity", "409 duplicate_entry"}},
	{"GET", "/data_plans", []string{"200", "400 invalid_entity"}},
	{"POST", "/data_plans/:id/billing_cycles", []string{"200", "400 invalid_entity", "404 missing_data_plan", "409 duplicate_entry"}},
	{"GET", "/data_plans/:id/billing_cycles", []string{"200", "400 invalid_entity", "404 missing_data_plan"}},
	{"PUT", "/vehicles/:vin/data_plan", []string{"200", "404 missing_vehicle", "404 missing_data_plan"}},
	{"POST", "/vehicles/:vin/traffic", []string{"200", "400 invalid_entity", "404 missing_vehicle"}},
	{"GET", "/wakeup/public_key", []string{"200"}},
}

var coreCalls contractLog

// Every Core read answers the same after a restart of the server on the same data directory: what
// was acknowledged is durable, and the engine rebuilds its in-memory request table from the store.
func TestCoreReadsAfterRestart(t *testing.T) {
	e := newCoreEnv(t)
	e.fleet(3)
	content := bytes.Repeat([]byte("firmware"), 1000)
	st, _ := e.upload("/api/v1/packages/nav/2.0.0", "file", content)
	require.Equal(t, 204, st)
	id := e.queueReq(map[string]any{"packageId": pkgID("nav", "2.0.0"), "priority": 4, "periodOfValidity": "2020-01-01T00:00:00Z/2999-01-01T00:00:00Z"})["id"].(string)
	q := e.vehicleQueue(testVIN(1))
	require.Len(t, q, 1)
	e.setStatus(testVIN(1), q[0]["updateId"].(string), engine.InFlight)
	e.finish(testVIN(1), q[0]["updateId"].(string), engine.Failed, 3, "no space")
	var cp map[string]any
	require.Equal(t, 200, e.do("POST", "/api/v1/campaigns", map[string]any{"name": "radio", "packageId": pkgID("radio", "1.0.0")}, &cp).StatusCode)
	camp := cp["id"].(string)
	e.ok("POST", "/api/v1/campaigns/"+camp+"/launch", nil)
	e.ok("PUT", "/api/v1/update_requests/"+id+"/cancel", nil)
	e.ok("POST", "/api/v1/vehicles/"+testVIN(2)+"/get_all_packages", nil)
	e.ok("POST", "/api/v1/data_plans", map[string]any{"id": "Basic"})
	e.ok("POST", "/api/v1/data_plans/basic/billing_cycles", map[string]any{"start": "2020-01-01T00:00:00Z", "poolBytes": 1 << 20})
	e.ok("PUT", "/api/v1/vehicles/"+testVIN(3)+"/data_plan", map[string]any{"id": "basic"})
	e.ok("POST", "/api/v1/vehicles/"+testVIN(3)+"/traffic", map[string]any{"bytes": 777})

	reads := []string{
		"/api/v1/update_requests",
		"/api/v1/update_requests/" + id,
		"/api/v1/update_requests/" + id + "/vehicles",
		"/api/v1/update_requests/" + id + "/vehicles?status=failed",
		"/api/v1/campaigns",
		"/api/v1/campaigns/" + camp,
		"/api/v1/campaigns/" + camp + "/preview",
		"/api/v1/vehicles/" + testVIN(2) + "/queue",
		"/api/v1/vehicles/" + testVIN(1) + "/history",
		"/api/v1/history?vin=" + testVIN(2),
		"/api/v1/data_plans",
		"/api/v1/data_plans/basic/billing_cycles",
		"/api/v1/wakeup/public_key",
	}
	read := func() map[string]string {
		out := map[string]string{}
		for _, path := range reads {
			var raw json.RawMessage
			resp := e.do("GET", path, nil, &raw)
			require.Equalf(t, 200, resp.StatusCode, "%s: %s", path, raw)
			out[path] = string(raw)
		}
		resp, err := http.Get(e.srv.URL + "/api/v1/packages/nav/2.0.0/download")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		out["download"] = string(b)
		return out
	}
	before := read()
	assert.Equal(t, string(content), before["download"])
	assert.Contains(t, before["/api/v1/update_requests/"+id+"/vehicles?status=failed"], `"resultText":"no space"`)
	e.restart()
	after := read()
	for _, path := range append(reads, "download") {
		if strings.HasSuffix(path, "/preview") {
			var a, b map[string]any
			require.NoError(t, json.Unmarshal([]byte(before[path]), &a))
			require.NoError(t, json.Unmarshal([]byte(after[path]), &b))
			delete(a, "elapsedMs")
			delete(b, "elapsedMs")
			assert.Equal(t, a, b, path)
			continue
		}
		assert.Equal(t, before[path], after[path], path)
	}
}

// A binary over the upload limit is 413 and an upload that breaks off is 400; neither leaves a file
// or a package behind.
func TestCoreFailedUploadsLeaveNothing(t *testing.T) {
	e := newCoreEnvWith(t, engine.Options{MaxUpload: 1000})
	st, out := e.upload("/api/v1/packages/fw/1.0.0", "file", bytes.Repeat([]byte("x"), 1001))
	assert.Equal(t, 413, st)
	assert.Equal(t, "body_too_large", out["code"])
	assert.Empty(t, blobFiles(t, e.dir))

	// The multipart body ends in the middle of the file.
	body, ct := multipartBody(t, "file", bytes.Repeat([]byte("y"), 900))
	cut := body.Bytes()[:body.Len()-60]
	req, err := http.NewRequest("PUT", e.srv.URL+"/api/v1/packages/fw/1.0.0", bytes.NewReader(cut))
	require.NoError(t, err)
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)
	assert.Empty(t, blobFiles(t, e.dir))
	e.failure("GET", "/api/v1/packages/fw/1.0.0", nil, 404, "package_not_found")

	st, _ = e.upload("/api/v1/packages/fw/1.0.0", "file", bytes.Repeat([]byte("z"), 1000))
	assert.Equal(t, 204, st, "at the limit")
	assert.Len(t, blobFiles(t, e.dir), 1)
}
