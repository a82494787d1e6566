package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/policy"
)

// auditCase is one successful call of an audited route.
type auditCase struct {
	route  string // the route-table key it calls, "METHOD pattern"
	method string
	path   string // below /api/v1
	body   any    // JSON-encoded, or sent as is when a string or []byte
	ctype  string // content type when not JSON
	target string // the entry's expected target
}

func auditCases(t *testing.T) []auditCase {
	const (
		vin  = "WDD00000000000001"
		vin2 = "WDD00000000000002"
	)
	upload, uploadType := multipartBody(t, "file", bytes.Repeat([]byte("fw"), 500))
	table := policy.DefaultMaster().MarshalIndent()
	return []auditCase{
		{"POST /api/v1/accounts", "POST", "/accounts", map[string]any{"username": "bob", "password": testPassword, "role": "viewer"}, "", "bob"},
		{"PUT /api/v1/accounts/:username/password", "PUT", "/accounts/bob/password", map[string]any{"password": "another password"}, "", "bob"},
		{"POST /api/v1/tokens", "POST", "/tokens", map[string]any{"name": "ci"}, "", "ci"},
		{"POST /api/v1/vehicles", "POST", "/vehicles", map[string]any{"vin": vin}, "", vin},
		{"PUT /api/v1/vehicles/:vin", "PUT", "/vehicles/" + vin2, nil, "", vin2},
		{"PUT /api/v1/vehicles/:vin/attributes", "PUT", "/vehicles/" + vin + "/attributes", map[string]any{"region": "EU"}, "", vin},
		{"POST /api/v1/packages", "POST", "/packages", map[string]any{"id": map[string]any{"name": "nav", "version": "2.0.0"}}, "", "nav/2.0.0"},
		{"PUT /api/v1/packages/:name/:version", "PUT", "/packages/maps/1.0.0", map[string]any{"description": "Maps"}, "", "maps/1.0.0"},
		{"PUT /api/v1/packages/:name/:version", "PUT", "/packages/nav/2.0.0", upload.Bytes(), uploadType, "nav/2.0.0"},
		{"PUT /api/v1/packages/:name/:version/dependencies/:depName/:depVersion", "PUT", "/packages/nav/2.0.0/dependencies/maps/1.0.0", nil, "", "nav/2.0.0/maps/1.0.0"},
		{"DELETE /api/v1/packages/:name/:version/dependencies/:depName/:depVersion", "DELETE", "/packages/nav/2.0.0/dependencies/maps/1.0.0", nil, "", "nav/2.0.0/maps/1.0.0"},
		{"PUT /api/v1/packages/:name/:version/dependencies/:depName", "PUT", "/packages/nav/2.0.0/dependencies/maps", map[string]any{"range": ">=1.0.0"}, "", "nav/2.0.0/maps"},
		{"DELETE /api/v1/packages/:name/:version/dependencies/:depName", "DELETE", "/packages/nav/2.0.0/dependencies/maps", nil, "", "nav/2.0.0/maps"},
		{"PUT /api/v1/vehicles/:vin/package/:name/:version", "PUT", "/vehicles/" + vin + "/package/maps/1.0.0", nil, "", vin + "/maps/1.0.0"},
		{"DELETE /api/v1/vehicles/:vin/package/:name/:version", "DELETE", "/vehicles/" + vin + "/package/maps/1.0.0", nil, "", vin + "/maps/1.0.0"},
		{"PUT /api/v1/vehicles/:vin/packages", "PUT", "/vehicles/" + vin + "/packages", map[string]any{"packages": []any{map[string]any{"name": "maps", "version": "1.0.0"}}}, "", vin},
		{"POST /api/v1/components", "POST", "/components", map[string]any{"partNumber": "ECU1"}, "", "ECU1"},
		{"PUT /api/v1/components/:part", "PUT", "/components/ECU2", nil, "", "ECU2"},
		{"PUT /api/v1/vehicles/:vin/component/:part", "PUT", "/vehicles/" + vin + "/component/ECU2", nil, "", vin + "/ECU2"},
		{"DELETE /api/v1/vehicles/:vin/component/:part", "DELETE", "/vehicles/" + vin + "/component/ECU2", nil, "", vin + "/ECU2"},
		{"DELETE /api/v1/components/:part", "DELETE", "/components/ECU2", nil, "", "ECU2"},
		{"POST /api/v1/filters", "POST", "/filters", map[string]any{"name": "everyone", "expression": `vin_matches "^WDD"`}, "", "everyone"},
		{"PUT /api/v1/filters/:name", "PUT", "/filters/everyone", map[string]any{"expression": `vin_matches "^W"`}, "", "everyone"},
		{"PUT /api/v1/packages/:name/:version/filter/:filter", "PUT", "/packages/nav/2.0.0/filter/everyone", nil, "", "nav/2.0.0/everyone"},
		{"POST /api/v1/fleet/import", "POST", "/fleet/import", `{"vin":"WDD00000000000003"}` + "\n", "application/x-ndjson", ""},
		{"POST /api/v1/vehicles/:vin/token", "POST", "/vehicles/" + vin + "/token", nil, "", vin},
		{"POST /api/v1/data_plans", "POST", "/data_plans", map[string]any{"id": "basic"}, "", "basic"},
		{"POST /api/v1/data_plans/:id/billing_cycles", "POST", "/data_plans/basic/billing_cycles", map[string]any{"start": "2020-01-01T00:00:00Z", "poolBytes": 1 << 20}, "", "basic"},
		{"PUT /api/v1/vehicles/:vin/data_plan", "PUT", "/vehicles/" + vin + "/data_plan", map[string]any{"id": "basic"}, "", vin},
		{"POST /api/v1/vehicles/:vin/traffic", "POST", "/vehicles/" + vin + "/traffic", map[string]any{"bytes": 777}, "", vin},
		{"POST /api/v1/update_requests", "POST", "/update_requests", map[string]any{"packageId": map[string]any{"name": "nav", "version": "2.0.0"}}, "", "nav/2.0.0"},
		{"PUT /api/v1/update_requests/:id/cancel", "PUT", "/update_requests/{request}/cancel", nil, "", "{request}"},
		{"POST /api/v1/campaigns", "POST", "/campaigns", map[string]any{"name": "spring", "packageId": map[string]any{"name": "nav", "version": "2.0.0"},
			"groups": []any{map[string]any{"name": "canary", "percent": 50}}}, "", "spring"},
		{"POST /api/v1/campaigns/:id/launch", "POST", "/campaigns/{campaign}/launch", nil, "", "{campaign}"},
		{"POST /api/v1/campaigns/:id/pause", "POST", "/campaigns/{campaign}/pause", nil, "", "{campaign}"},
		{"POST /api/v1/campaigns/:id/resume", "POST", "/campaigns/{campaign}/resume", nil, "", "{campaign}"},
		{"POST /api/v1/campaigns/:id/release", "POST", "/campaigns/{campaign}/release", nil, "", "{campaign}"},
		{"POST /api/v1/campaigns/:id/abort", "POST", "/campaigns/{campaign}/abort", nil, "", "{campaign}"},
		{"POST /api/v1/vehicles/:vin/get_all_packages", "POST", "/vehicles/" + vin + "/get_all_packages", nil, "", vin},
		{"POST /api/v1/update_requests/purge", "POST", "/update_requests/purge", nil, "", ""},
		{"POST /api/v1/update_requests/xmit", "POST", "/update_requests/xmit", nil, "", ""},
		{"PUT /api/v1/policy/tables/:env", "PUT", "/policy/tables/staging", table, "application/json", "staging"},
		{"DELETE /api/v1/packages/:name/:version/filter/:filter", "DELETE", "/packages/nav/2.0.0/filter/everyone", nil, "", "nav/2.0.0/everyone"},
		{"DELETE /api/v1/filters/:name", "DELETE", "/filters/everyone", nil, "", "everyone"},
		{"DELETE /api/v1/vehicles/:vin", "DELETE", "/vehicles/" + vin2, nil, "", vin2},
		{"POST /api/v1/packages", "POST", "/packages", map[string]any{"id": map[string]any{"name": "old", "version": "1.0.0"}}, "", "old/1.0.0"},
		{"DELETE /api/v1/packages/:name/:version", "DELETE", "/packages/old/1.0.0", nil, "", "old/1.0.0"},
		{"POST /api/v1/webhooks", "POST", "/webhooks", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"vehicle.created"}, "secret": "webhook-secret"}, "", "http://127.0.0.1:9/hook"},
		{"DELETE /api/v1/webhooks/:id", "DELETE", "/webhooks/{webhook}", nil, "", "{webhook}"},
		{"DELETE /api/v1/tokens/:id", "DELETE", "/tokens/{token}", nil, "", "{token}"},
		{"POST /api/v1/ddi/gateway_tokens", "POST", "/ddi/gateway_tokens", map[string]any{"name": "depot"}, "", "gateway:depot"},
		{"DELETE /api/v1/ddi/gateway_tokens/:id", "DELETE", "/ddi/gateway_tokens/{gateway}", nil, "", "{gateway}"},
		{"DELETE /api/v1/accounts/:username", "DELETE", "/accounts/bob", nil, "", "bob"},
	}
}

// auditedElsewhere are audited routes this test cannot call successfully, with the reason.
var auditedElsewhere = map[string]string{
	"POST /api/v1/tuf/image/targets": "needs metadata signed with the offline targets key",
	"POST /api/v1/tuf/image/root":    "needs a root signed with the offline root keys",
}

// auditServer is routeServer without signed metadata.
func auditServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	h, srv := newServer(t, Config{}, fullDeps(t).Deps)
	_, created, err := srv.auth.Bootstrap("admin", testPassword)
	require.NoError(t, err)
	require.True(t, created)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return srv, hs
}

// TestEveryAuditedRouteWritesOneEntry calls every audited route of the table successfully and checks
// that each call wrote exactly one audit entry, in the transaction of its change, naming the actor,
// the route, the target and the status it answered; refused calls write none; and the log survives
// as it was (GET /audit, newest first). A new audited route without a case here fails the test.
func TestEveryAuditedRouteWritesOneEntry(t *testing.T) {
	// the server without signed metadata (with it, queuing needs offline-signed targets; its two
	// audited routes are listed in auditedElsewhere)
	srv, hs := auditServer(t)
	full, _ := routeServer(t)
	secret, _, err := srv.auth.CreateToken("admin", "release-bot")
	require.NoError(t, err)
	ids := map[string]string{}
	call := func(method, path string, body any, ctype string) (int, []byte) {
		var rd io.Reader
		switch b := body.(type) {
		case nil:
		case string:
			rd = strings.NewReader(b)
		case []byte:
			rd = bytes.NewReader(b)
		default:
			j, err := json.Marshal(b)
			require.NoError(t, err)
			rd = bytes.NewReader(j)
			ctype = "application/json"
		}
		for k, v := range ids {
			path = strings.ReplaceAll(path, "{"+k+"}", v)
		}
		req, err := http.NewRequest(method, hs.URL+"/api/v1"+path, rd)
		require.NoError(t, err)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Authorization", "Bearer "+secret)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	entries := func() []auth.AuditEntry {
		st, b := call("GET", "/audit?limit=10000", nil, "")
		require.Equal(t, http.StatusOK, st, "%s", b)
		var out []auth.AuditEntry
		require.NoError(t, json.Unmarshal(b, &out))
		return out
	}

	covered := map[string]bool{}
	for _, tc := range auditCases(t) {
		before := len(entries())
		separate := srv.audit.separate.Load()
		st, body := call(tc.method, tc.path, tc.body, tc.ctype)
		require.Truef(t, st/100 == 2, "%s %s: %d %s", tc.method, tc.path, st, body)
		var created struct{ ID string }
		if json.Unmarshal(body, &created) == nil && created.ID != "" {
			switch tc.route {
			case "POST /api/v1/update_requests":
				ids["request"] = created.ID
			case "POST /api/v1/campaigns":
				ids["campaign"] = created.ID
			case "POST /api/v1/tokens":
				ids["token"] = created.ID
			case "POST /api/v1/webhooks":
				ids["webhook"] = created.ID
			case "POST /api/v1/ddi/gateway_tokens":
				ids["gateway"] = created.ID
			}
		}
		after := entries()
		require.Lenf(t, after, before+1, "%s wrote %d entries", tc.route, len(after)-before)
		e := after[0]
		target := tc.target
		for k, v := range ids {
			target = strings.ReplaceAll(target, "{"+k+"}", v)
		}
		assert.Equal(t, tc.route, e.Method+" "+e.Route)
		assert.Equal(t, "token:release-bot", e.Actor)
		assert.Equal(t, auth.RoleAdmin, e.Role)
		assert.Equal(t, st, e.Status, tc.route)
		assert.Equal(t, target, e.Target, tc.route)
		assert.NotEmpty(t, e.ID)
		assert.WithinDuration(t, time.Now(), e.At, time.Minute)
		row := srv.byRoute[tc.route]
		require.NotNil(t, row, tc.route)
		switch {
		case row.Streaming:
			assert.Equal(t, separate+1, srv.audit.separate.Load(), "a bulk import's entry follows its batches")
		case strings.HasSuffix(tc.path, "/purge") || strings.HasSuffix(tc.path, "/xmit"):
			// nothing was due: the call changed nothing, and its entry has a transaction of its own
		default:
			assert.Equalf(t, separate, srv.audit.separate.Load(),
				"%s: the entry was not written in the change's transaction: call the domain through a handle With(auditOf(c).Hook())", tc.route)
		}
		covered[tc.route] = true

		// the same call refused (no credentials) writes nothing
		if tc.method != "POST" || !strings.HasSuffix(tc.path, "/purge") {
			req, _ := http.NewRequest(tc.method, hs.URL+"/api/v1"+tc.path, nil)
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, http.StatusUnauthorized, res.StatusCode)
			assert.Len(t, entries(), before+1)
		}
	}
	for _, rt := range full.Routes() {
		if rt.Audited && auditedElsewhere[rt.key()] == "" {
			assert.Truef(t, covered[rt.key()], "audited route %s has no case in auditCases", rt.key())
		}
	}

	// reads and refused changes write nothing
	n := len(entries())
	call("GET", "/vehicles", nil, "")
	st, _ := call("POST", "/vehicles", map[string]any{"vin": "bad"}, "")
	require.Equal(t, http.StatusBadRequest, st)
	st, _ = call("DELETE", "/filters/nosuch", nil, "")
	require.Equal(t, http.StatusNotFound, st)
	assert.Len(t, entries(), n, "refused calls are not recorded")
}

// GET /audit filters by time, actor and target, pages newest first with X-Total-Count, is admin-only,
// and offers no way to change the log.
func TestAuditQuery(t *testing.T) {
	srv, hs := auditServer(t)
	adminTok, _, err := srv.auth.CreateToken("admin", "root-bot")
	require.NoError(t, err)
	_, err = srv.auth.CreateAccount("olga", testPassword, auth.RoleOperator)
	require.NoError(t, err)
	opTok, _, err := srv.auth.CreateToken("olga", "ops-bot")
	require.NoError(t, err)
	do := func(tok, method, path string, body any) (*http.Response, []byte) {
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, _ := http.NewRequest(method, hs.URL+"/api/v1"+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	vins := []string{"WDD00000000000011", "WDD00000000000012", "WDD00000000000013"}
	for _, v := range vins {
		res, b := do(opTok, "PUT", "/vehicles/"+v, nil)
		require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", b)
	}
	mid := time.Now()
	time.Sleep(5 * time.Millisecond)
	res, _ := do(adminTok, "DELETE", "/vehicles/"+vins[0], nil)
	require.Equal(t, http.StatusOK, res.StatusCode)

	res, _ = do(opTok, "GET", "/audit", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "the audit log is the admin's")

	list := func(q string) ([]auth.AuditEntry, int) {
		res, b := do(adminTok, "GET", "/audit"+q, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
		var out []auth.AuditEntry
		require.NoError(t, json.Unmarshal(b, &out))
		n, err := strconv.Atoi(res.Header.Get("X-Total-Count"))
		require.NoError(t, err)
		return out, n
	}
	all, total := list("")
	require.Equal(t, 4, total)
	assert.Equal(t, "DELETE", all[0].Method, "newest first")
	assert.Equal(t, vins[2], all[1].Target)
	assert.Equal(t, vins[0], all[3].Target)

	got, n := list("?actor=token:ops-bot")
	assert.Equal(t, 3, n)
	assert.Len(t, got, 3)
	got, n = list("?target=" + vins[0])
	assert.Equal(t, 2, n)
	assert.Equal(t, "token:root-bot", got[0].Actor)
	got, n = list("?from=" + mid.UTC().Format(time.RFC3339Nano))
	assert.Equal(t, 1, n)
	assert.Equal(t, "DELETE", got[0].Method)
	_, n = list("?to=" + mid.UTC().Format(time.RFC3339Nano))
	assert.Equal(t, 3, n)
	got, n = list("?limit=2&offset=1")
	assert.Equal(t, 4, n)
	require.Len(t, got, 2)
	assert.Equal(t, all[1].ID, got[0].ID)
	assert.Equal(t, all[2].ID, got[1].ID)
	got, _ = list("?limit=1&offset=3")
	require.Len(t, got, 1)
	assert.Equal(t, all[3].ID, got[0].ID)

	res, _ = do(adminTok, "GET", "/audit?from=yesterday", nil)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		res, _ = do(adminTok, m, "/audit", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "append-only through the API")
	}
}
