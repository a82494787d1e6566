package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/internal/storetest"
	"sota/policy"
	"sota/store"
)

// policyEnv is the real server (auth on) with the policy service over Badger in a temporary
// directory; admin calls carry an API token, head-unit calls carry nothing.
type policyEnv struct {
	t     *testing.T
	dir   string
	db    *store.DB
	hs    *httptest.Server
	token string
}

func newPolicyEnv(t *testing.T) *policyEnv {
	e := &policyEnv{t: t, dir: t.TempDir()}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *policyEnv) open() {
	db, err := storetest.OpenDir(e.t, e.dir)
	require.NoError(e.t, err)
	h, srv := newServer(e.t, Config{}, Deps{Auth: auth.New(db), Policy: policy.NewService(db)})
	if e.token == "" {
		_, _, err = srv.auth.Bootstrap("admin", testPassword)
		require.NoError(e.t, err)
		e.token, _, err = srv.auth.CreateToken("admin", "policy tests")
		require.NoError(e.t, err)
	}
	e.db, e.hs = db, httptest.NewServer(h)
}

func (e *policyEnv) close() {
	if e.hs != nil {
		e.hs.Close()
		require.NoError(e.t, e.db.Close())
		e.hs, e.db = nil, nil
	}
}

type policyResp struct {
	status int
	body   []byte
}

func (r policyResp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

func (e *policyEnv) call(method, path string, body []byte, admin bool) policyResp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.hs.URL+path, bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	if admin {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return policyResp{status: res.StatusCode, body: b}
}

func sdlFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../policy/testdata/" + name)
	require.NoError(t, err)
	return b
}

// realSnapshot is the snapshot SDL makes of its real preloaded table with apps 123 and 456 registered.
func realSnapshot(t *testing.T) []byte {
	local, err := policy.Parse(sdlFile(t, "sdl_core-sdl_preloaded_pt.json"))
	require.NoError(t, err)
	return policy.MakeSnapshot(local, policy.SnapshotInfo{VIN: "WDD1234567890ABCD", Apps: []string{"123", "456"}, DeviceID: "phone-1"}).MarshalIndent()
}

func TestPolicyServerAnswersTheRealSnapshot(t *testing.T) {
	e := newPolicyEnv(t)
	for _, env := range []string{"production", "staging"} {
		t.Run(env, func(t *testing.T) {
			r := e.call("POST", "/api/v1/"+env+"/policy", realSnapshot(t), false)
			require.Equal(t, http.StatusOK, r.status, string(r.body))
			var got struct {
				Meta struct {
					RequestID string `json:"request_id"`
					Code      int    `json:"code"`
					Message   *string
				}
				Data []json.RawMessage
			}
			require.NoError(t, json.Unmarshal(r.body, &got))
			assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, got.Meta.RequestID)
			assert.Equal(t, 200, got.Meta.Code)
			assert.Nil(t, got.Meta.Message)
			assert.Contains(t, string(r.body), `"message":null`)
			require.Len(t, got.Data, 1)

			ptu, err := policy.Parse(got.Data[0])
			require.NoError(t, err)
			rep := policy.Validate(policy.Update, ptu)
			assert.True(t, rep.Valid, "%v", rep.Errors)
			apps := ptu.Section("app_policies")
			assert.Equal(t, "default", apps["123"])
			assert.Equal(t, "default", apps["456"])
			assert.Contains(t, apps, "device")

			// the validate endpoint agrees, on the whole envelope as SDL receives it, Base64-encoded
			v := e.call("POST", "/api/v1/policy/validate?kind=ptu", []byte(base64.StdEncoding.EncodeToString(r.body)), true)
			require.Equal(t, http.StatusOK, v.status, string(v.body))
			assert.Equal(t, true, v.json(t)["valid"])
		})
	}
}

func TestPolicyServerRejectsIncompleteSnapshots(t *testing.T) {
	e := newPolicyEnv(t)
	// the preloaded table itself is no snapshot: it has no device_data
	r := e.call("POST", "/api/v1/production/policy", sdlFile(t, "sdl_core-sdl_preloaded_pt.json"), false)
	assert.Equal(t, http.StatusBadRequest, r.status)
	body := r.json(t)
	assert.Equal(t, "Please provide device data information", body["error"])
	assert.Equal(t, "invalid_snapshot", body["code"])

	r = e.call("POST", "/api/v1/staging/policy", []byte(`{"policy_table": {"app_policies": {}}}`), false)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "Please provide consumer friendly messages information", r.json(t)["error"])

	r = e.call("POST", "/api/v1/staging/policy", []byte(`{"snapshot": true}`), false)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "Please provide policy table information", r.json(t)["error"])

	r = e.call("POST", "/api/v1/production/policy", []byte(`<xml/>`), false)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "invalid_entity", r.json(t)["code"])
}

func TestPolicyMasterTables(t *testing.T) {
	e := newPolicyEnv(t)
	def := policy.DefaultMaster().MarshalIndent()

	r := e.call("GET", "/api/v1/policy/tables/staging", nil, true)
	require.Equal(t, http.StatusOK, r.status)
	assert.JSONEq(t, string(def), string(r.body))

	// an invalid table is refused with every problem, and nothing changes
	r = e.call("PUT", "/api/v1/policy/tables/staging", sdlFile(t, "sdl_atf_test_scripts-invalid_PTU_missing_seconds_between_retries.json"), true)
	require.Equal(t, http.StatusNotAcceptable, r.status, string(r.body))
	body := r.json(t)
	assert.Equal(t, "invalid_policy_table", body["code"])
	assert.Contains(t, body["errors"], map[string]any{"path": "policy_table.module_config.seconds_between_retries", "message": "is required in PT_UPDATE but missing"})
	assert.Len(t, body["errors"], 5)
	r = e.call("GET", "/api/v1/policy/tables/staging", nil, true)
	assert.JSONEq(t, string(def), string(r.body))

	// a valid one, sent as a Base64 envelope, replaces staging only, and survives a restart
	valid := sdlFile(t, "sdl_atf_test_scripts-valid_PTU_all_sections.json")
	var inner any
	require.NoError(t, json.Unmarshal(valid, &inner))
	env, _ := json.Marshal(map[string]any{"data": []any{inner}})
	r = e.call("PUT", "/api/v1/policy/tables/staging", []byte(base64.StdEncoding.EncodeToString(env)), true)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.Equal(t, true, r.json(t)["valid"])

	e.close()
	e.open()
	r = e.call("GET", "/api/v1/policy/tables/staging", nil, true)
	assert.JSONEq(t, string(valid), string(r.body))
	r = e.call("GET", "/api/v1/policy/tables/production", nil, true)
	assert.JSONEq(t, string(def), string(r.body))

	// a known app gets its policy from the master
	local, err := policy.Parse(sdlFile(t, "sdl_core-sdl_preloaded_pt.json"))
	require.NoError(t, err)
	pts := policy.MakeSnapshot(local, policy.SnapshotInfo{Apps: []string{"123456", "999"}})
	r = e.call("POST", "/api/v1/staging/policy", pts.MarshalIndent(), false)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	apps := r.json(t)["data"].([]any)[0].(map[string]any)["policy_table"].(map[string]any)["app_policies"].(map[string]any)
	assert.Equal(t, []any{"Base-4"}, apps["123456"].(map[string]any)["groups"])
	assert.Equal(t, "default", apps["999"])

	r = e.call("GET", "/api/v1/policy/tables/testing", nil, true)
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, "unknown_environment", r.json(t)["code"])
	r = e.call("PUT", "/api/v1/policy/tables/production", []byte("nope"), true)
	assert.Equal(t, http.StatusBadRequest, r.status)

	// admin routes need authentication; the head-unit route does not
	r = e.call("GET", "/api/v1/policy/tables/production", nil, false)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	r = e.call("PUT", "/api/v1/policy/tables/production", valid, false)
	assert.Equal(t, http.StatusUnauthorized, r.status)
}

func TestPolicyValidateEndpoint(t *testing.T) {
	e := newPolicyEnv(t)
	preloaded := sdlFile(t, "sdl_core-sdl_preloaded_pt.json")
	cases := []struct {
		kind   string
		body   []byte
		valid  bool
		errors []any
	}{
		{"preloaded", preloaded, true, []any{}},
		{"ptu", sdlFile(t, "sdl_atf_test_scripts-valid_PTU_all_sections.json"), true, []any{}},
		{"ptu", sdlFile(t, "sdl_atf_test_scripts-PTU_has_omitted.json"), false, []any{
			map[string]any{"path": "policy_table.module_config.preloaded_date", "message": "should be omitted in PT_UPDATE"}}},
		{"pts", preloaded, false, []any{
			map[string]any{"path": "policy_table.consumer_friendly_messages.messages", "message": "should be omitted in PT_SNAPSHOT"},
			map[string]any{"path": "policy_table.vehicle_data.schema_items", "message": "should be omitted in PT_SNAPSHOT"}}},
		{"pts", realSnapshot(t), true, []any{}},
	}
	for _, c := range cases {
		r := e.call("POST", "/api/v1/policy/validate?kind="+c.kind, c.body, true)
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		body := r.json(t)
		assert.Equal(t, c.valid, body["valid"], c.kind)
		assert.Equal(t, c.errors, body["errors"], c.kind)
	}

	r := e.call("POST", "/api/v1/policy/validate?kind=ptu", []byte("this is neither JSON nor Base64"), true)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "invalid_entity", r.json(t)["code"])
	r = e.call("POST", "/api/v1/policy/validate?kind=ptu", []byte(base64.StdEncoding.EncodeToString([]byte("plain text"))), true)
	assert.Equal(t, http.StatusBadRequest, r.status)
	r = e.call("POST", "/api/v1/policy/validate?kind=xyz", preloaded, true)
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Contains(t, r.json(t)["description"], "kind must be ptu, pts or preloaded")
	r = e.call("POST", "/api/v1/policy/validate", preloaded, false)
	assert.Equal(t, http.StatusUnauthorized, r.status)
}
