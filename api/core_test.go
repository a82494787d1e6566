package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/policy"
	"sota/resolver"
)

// coreEnv is a real server on loopback over a real store, wired as sotad wires it, that can be
// restarted on the same data directory. Its calls count for the Core checklist (core_contract_test.go).
type coreEnv struct {
	t        *testing.T
	srv      *httptest.Server
	deps     testDeps
	dir      string // data directory
	opt      engine.Options
	restarts int
}

func newCoreEnv(t *testing.T) *coreEnv { return newCoreEnvWith(t, engine.Options{}) }

func newCoreEnvWith(t *testing.T, o engine.Options) *coreEnv {
	e := &coreEnv{t: t, dir: t.TempDir(), opt: o}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *coreEnv) open() {
	e.t.Helper()
	db, err := storetest.OpenDir(e.t, e.dir+"/db")
	require.NoError(e.t, err)
	res, err := resolver.New(db)
	require.NoError(e.t, err)
	o := e.opt
	o.DataDir = e.dir
	eng, err := engine.New(db, res, o)
	require.NoError(e.t, err)
	e.deps = testDeps{DB: db, Deps: Deps{Auth: auth.New(db), Engine: eng, Resolver: res, Filters: res, Policy: policy.NewService(db)}}
	h, _ := newServer(e.t, Config{AuthNone: true}, e.deps.Deps)
	e.srv = httptest.NewServer(recordInto(&coreCalls, h, func() bool { return e.restarts > 0 }))
}

func (e *coreEnv) close() {
	if e.srv != nil {
		e.srv.Close()
		require.NoError(e.t, e.deps.DB.Close())
		e.srv = nil
	}
}

// restart stops the server and the store and opens both again on the same data directory.
func (e *coreEnv) restart() {
	e.t.Helper()
	e.close()
	e.restarts++
	e.open()
}

// newWakeupReceiver is a wake-up endpoint (the SMS gateway we do not own) that checks nothing and
// reports each VIN; it returns its URL.
func newWakeupReceiver(t *testing.T, got func(vin string)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wk engine.Wakeup
		if json.NewDecoder(r.Body).Decode(&wk) == nil {
			got(wk.VIN)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func cut(s string) (string, string, bool) { return strings.Cut(s, "/") }

// do sends a JSON request (body nil: none) and decodes the JSON answer into out (when not nil).
func (e *coreEnv) do(method, path string, body any, out any) *http.Response {
	e.t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, err := json.Marshal(body)
		require.NoError(e.t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	if out != nil && len(b) > 0 {
		require.NoErrorf(e.t, json.Unmarshal(b, out), "%s %s answered %d %s", method, path, resp.StatusCode, b)
	}
	return resp
}

// status sends the request and returns the status and the error code of the answer, if any.
func (e *coreEnv) status(method, path string, body any) (int, string) {
	e.t.Helper()
	var out map[string]any
	var raw json.RawMessage
	resp := e.do(method, path, body, &raw)
	_ = json.Unmarshal(raw, &out)
	code, _ := out["code"].(string)
	if resp.StatusCode >= 400 {
		assert.NotEmptyf(e.t, out["description"], "%s %s: an error has a description", method, path)
	}
	return resp.StatusCode, code
}

func TestCoreDataPlansAndBillingCycles(t *testing.T) {
	e := newCoreEnv(t)
	var plan map[string]any
	resp := e.do("POST", "/api/v1/data_plans", map[string]any{"id": "Fleet-Basic"}, &plan)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "Fleet-Basic", plan["id"])
	e.do("POST", "/api/v1/data_plans", map[string]any{"id": "premium"}, nil)

	// PLAN_ADD X1: the plan exists (names compare case-insensitively).
	st, code := e.status("POST", "/api/v1/data_plans", map[string]any{"id": "fleet-basic"})
	assert.Equal(t, 409, st)
	assert.Equal(t, "duplicate_entry", code)
	for _, bad := range []any{map[string]any{"id": ""}, map[string]any{"id": "a/b"}, map[string]any{"id": strings.Repeat("x", 101)}, `{"id":`} {
		st, code = e.status("POST", "/api/v1/data_plans", bad)
		assert.Equalf(t, 400, st, "%v", bad)
		assert.Equal(t, "invalid_entity", code)
	}

	// PLAN_SEARCH
	var plans []map[string]any
	resp = e.do("GET", "/api/v1/data_plans?regex=^Fleet", nil, &plans)
	require.Equal(t, 200, resp.StatusCode)
	require.Len(t, plans, 1)
	assert.Equal(t, "Fleet-Basic", plans[0]["id"])
	e.do("GET", "/api/v1/data_plans", nil, &plans)
	assert.Len(t, plans, 2)
	e.do("GET", "/api/v1/data_plans?regex=^nothing", nil, &plans)
	assert.Empty(t, plans)
	st, _ = e.status("GET", "/api/v1/data_plans?regex=(", nil)
	assert.Equal(t, 400, st)

	// PLAN_ADD_BILLING_CYCLE
	var cy map[string]any
	resp = e.do("POST", "/api/v1/data_plans/fleet-basic/billing_cycles", map[string]any{"start": "2025-01-01T00:00:00Z", "poolBytes": 1000}, &cy)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, map[string]any{"start": "2025-01-01T00:00:00Z", "poolBytes": 1000.0, "usedBytes": 0.0}, cy)
	e.do("POST", "/api/v1/data_plans/fleet-basic/billing_cycles", map[string]any{"start": "2025-02-01T00:00:00+01:00", "poolBytes": 2000}, nil)
	e.do("POST", "/api/v1/data_plans/fleet-basic/billing_cycles", map[string]any{"start": "2025-03-01T00:00:00Z", "poolBytes": 3000}, nil)
	st, code = e.status("POST", "/api/v1/data_plans/nope/billing_cycles", map[string]any{"start": "2025-01-01T00:00:00Z", "poolBytes": 1})
	assert.Equal(t, 404, st, "X1: the plan does not exist")
	assert.Equal(t, "missing_data_plan", code)
	for _, bad := range []map[string]any{{"start": "yesterday", "poolBytes": 1}, {"start": "2025-01-01T00:00:00Z"}, {"start": "2025-01-01T00:00:00Z", "poolBytes": -1}} {
		st, _ = e.status("POST", "/api/v1/data_plans/fleet-basic/billing_cycles", bad)
		assert.Equalf(t, 400, st, "%v", bad)
	}
	st, code = e.status("POST", "/api/v1/data_plans/fleet-basic/billing_cycles", map[string]any{"start": "2025-01-01T00:00:00Z", "poolBytes": 5})
	assert.Equal(t, 409, st)
	assert.Equal(t, "duplicate_entry", code)

	// PLAN_GET_BILLING_CYCLES with an earliest and latest start.
	var cycles []map[string]any
	resp = e.do("GET", "/api/v1/data_plans/FLEET-BASIC/billing_cycles", nil, &cycles)
	require.Equal(t, 200, resp.StatusCode)
	require.Len(t, cycles, 3)
	assert.Equal(t, "2025-01-31T23:00:00Z", cycles[1]["start"], "times are normalised to UTC")
	e.do("GET", "/api/v1/data_plans/fleet-basic/billing_cycles?from=2025-01-15T00:00:00Z&to=2025-03-01T00:00:00Z", nil, &cycles)
	require.Len(t, cycles, 2)
	assert.Equal(t, 2000.0, cycles[0]["poolBytes"])
	assert.Equal(t, 3000.0, cycles[1]["poolBytes"])
	e.do("GET", "/api/v1/data_plans/premium/billing_cycles", nil, &cycles)
	assert.Empty(t, cycles)
	st, code = e.status("GET", "/api/v1/data_plans/nope/billing_cycles", nil)
	assert.Equal(t, 404, st, "X1: the plan does not exist")
	assert.Equal(t, "missing_data_plan", code)
	st, _ = e.status("GET", "/api/v1/data_plans/fleet-basic/billing_cycles?from=soon", nil)
	assert.Equal(t, 400, st)
}

func TestCoreSchedulerTriggersAndWakeupKey(t *testing.T) {
	e := newCoreEnv(t)
	var out map[string]any
	resp := e.do("POST", "/api/v1/update_requests/purge", nil, &out)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, map[string]any{"purged": 0.0}, out)
	var woken map[string]any
	resp = e.do("POST", "/api/v1/update_requests/xmit", nil, &woken)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, map[string]any{"woken": 0.0}, woken)

	var key map[string]any
	resp = e.do("GET", "/api/v1/wakeup/public_key", nil, &key)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "ed25519", key["algorithm"])
	assert.Len(t, key["publicKey"], 44, "32 bytes in base64")
	assert.Equal(t, `sota-wakeup\n<vin>\n<nonce>\n<issuedAt>`, key["signedMessage"], "the layout, with backslash-n as two characters")
	assert.Len(t, key, 3)
}
