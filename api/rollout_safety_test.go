package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
)

// API.md "Safety rules before anything is queued", one rule per subtest, on the real server.
func TestSafetyRules(t *testing.T) {
	t.Run("missing binary refuses the update request and queues nothing", func(t *testing.T) {
		e := newCoreEnv(t)
		for i := 1; i <= 3; i++ {
			e.ok("PUT", "/api/v1/vehicles/"+testVIN(i), nil)
		}
		e.ok("PUT", "/api/v1/packages/nav/2.0.0", map[string]any{})
		e.ok("PUT", "/api/v1/packages/maps/1.0.0", map[string]any{})
		e.ok("PUT", "/api/v1/packages/nav/2.0.0/dependencies/maps/1.0.0", nil)
		e.ok("POST", "/api/v1/filters", map[string]any{"name": "all", "expression": "TRUE"})
		e.ok("PUT", "/api/v1/packages/nav/2.0.0/filter/all", nil)

		var out map[string]any
		resp := e.do("POST", "/api/v1/update_requests", map[string]any{"packageId": pkgID("nav", "2.0.0")}, &out)
		require.Equal(t, 409, resp.StatusCode)
		assert.Equal(t, "missing_binary", out["code"])
		assert.Equal(t, "No binary has been uploaded for maps-1.0.0, nav-2.0.0; upload it before queuing (nothing was queued)", out["description"])
		assert.Equal(t, []any{pkgID("maps", "1.0.0"), pkgID("nav", "2.0.0")}, out["packages"])
		var list []any
		e.do("GET", "/api/v1/update_requests", nil, &list)
		assert.Empty(t, list, "nothing was queued")
		assert.Empty(t, e.vehicleQueue(testVIN(1)))

		// a vehicle that has maps installed needs only nav: the dependency's binary is still needed
		// by the others, so it is still named
		e.binaries(pkgID("nav", "2.0.0"))
		e.ok("PUT", "/api/v1/vehicles/"+testVIN(1)+"/package/maps/1.0.0", nil)
		d := e.failure("POST", "/api/v1/update_requests", map[string]any{"packageId": pkgID("nav", "2.0.0")}, 409, "missing_binary")
		assert.Equal(t, "No binary has been uploaded for maps-1.0.0; upload it before queuing (nothing was queued)", d)

		// the dry run says the same as a problem, with how many vehicles and which
		var dr map[string]any
		resp = e.do("POST", "/api/v1/resolve/dry-run", map[string]any{"package": pkgID("nav", "2.0.0")}, &dr)
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, []any{map[string]any{"code": "missing_binary", "vehicles": 2.0,
			"description": "2 vehicles would install maps-1.0.0, which has no binary: queuing is refused until it is uploaded",
			"sample":      []any{testVIN(2), testVIN(3)}, "packages": []any{pkgID("maps", "1.0.0")}}}, dr["problems"])

		e.binaries(pkgID("maps", "1.0.0"))
		resp = e.do("POST", "/api/v1/resolve/dry-run", map[string]any{"package": pkgID("nav", "2.0.0")}, &dr)
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, []any{}, dr["problems"])
		assert.Equal(t, 3.0, e.queueReq(map[string]any{"packageId": pkgID("nav", "2.0.0")})["vehicles"])
	})

	t.Run("a validity period already over is 400 and a campaign ending in the past is 400", func(t *testing.T) {
		e := newCoreEnv(t)
		e.fleet(2)
		d := e.failure("POST", "/api/v1/update_requests", map[string]any{"packageId": pkgID("nav", "2.0.0"),
			"periodOfValidity": "2020-01-01T00:00:00Z/2020-02-01T00:00:00Z"}, 400, "invalid_entity")
		assert.Equal(t, "period of validity has already ended (2020-02-01T00:00:00Z)", d)
		d = e.failure("POST", "/api/v1/campaigns", map[string]any{"name": "late", "packageId": pkgID("nav", "2.0.0"),
			"startTime": "2020-01-01T00:00:00Z", "endTime": "2020-02-01T00:00:00Z"}, 400, "invalid_entity")
		assert.Equal(t, "endTime 2020-02-01T00:00:00Z is in the past", d)
		var list []any
		e.do("GET", "/api/v1/campaigns", nil, &list)
		assert.Empty(t, list)
		e.do("GET", "/api/v1/update_requests", nil, &list)
		assert.Empty(t, list)
	})

	t.Run("deleting a filter linked to a package is 409 filter_in_use unless forced", func(t *testing.T) {
		e := newCoreEnv(t)
		e.fleet(2)
		var out map[string]any
		resp := e.do("DELETE", "/api/v1/filters/everyone", nil, &out)
		require.Equal(t, 409, resp.StatusCode)
		assert.Equal(t, "filter_in_use", out["code"])
		assert.Equal(t, "Filter everyone is associated with package nav-2.0.0, radio-1.0.0; deleting it would widen their audience (delete it with ?force=true to remove the associations too)", out["description"])
		assert.Equal(t, []any{pkgID("nav", "2.0.0"), pkgID("radio", "1.0.0")}, out["packages"])
		var links []any
		e.do("GET", "/api/v1/packages/filter", nil, &links)
		assert.Len(t, links, 2, "a refused delete changes nothing")
		e.ok("DELETE", "/api/v1/filters/everyone?force=true", nil)
		e.do("GET", "/api/v1/packages/filter", nil, &links)
		assert.Empty(t, links, "force deletes the links too")
		e.failure("POST", "/api/v1/update_requests", map[string]any{"packageId": pkgID("nav", "2.0.0")}, 404, "no_filters")
	})

	t.Run("editing a filter re-checks the filters that reference it", func(t *testing.T) {
		e := newCoreEnv(t)
		e.ok("POST", "/api/v1/filters", map[string]any{"name": "base", "expression": "TRUE"})
		e.ok("POST", "/api/v1/filters", map[string]any{"name": "mid", "expression": `filter "base" AND filter "base"`})
		wide := strings.TrimSuffix(strings.Repeat(`filter "mid" OR `, 20), " OR ")
		e.ok("POST", "/api/v1/filters", map[string]any{"name": "wide", "expression": wide})
		// base alone is fine, but wide would expand past the limit through mid
		big := strings.TrimSuffix(strings.Repeat(`vin_matches "^W" OR `, 1000), " OR ")
		var out map[string]any
		resp := e.do("PUT", "/api/v1/filters/base", map[string]any{"expression": big}, &out)
		require.Equal(t, 406, resp.StatusCode)
		assert.Equal(t, "invalid_filter", out["code"])
		assert.Contains(t, out["description"], "filter wide, which references base, would become invalid")
		var f map[string]any
		e.do("GET", "/api/v1/filters/base", nil, &f)
		assert.Equal(t, "TRUE", f["expression"], "nothing changed")
		// a cycle through a referencing filter is refused too
		e.failure("PUT", "/api/v1/filters/base", map[string]any{"expression": `filter "wide"`}, 406, "invalid_filter")
		e.ok("PUT", "/api/v1/filters/base", map[string]any{"expression": `vin_matches "^W"`})
	})

	t.Run("unknown fields, wrong types and bad JSON are 400 naming the field", func(t *testing.T) {
		e := newCoreEnv(t)
		e.fleet(1)
		for _, tc := range []struct{ path, body, want string }{
			{"/api/v1/update_requests", `{"packageId":{"name":"nav","version":"2.0.0"},"priorty":3}`, `Unknown field "priorty" in the request body`},
			{"/api/v1/update_requests", `{"packageId":{"name":"nav","version":"2.0.0","vendor":"x"}}`, `Unknown field "vendor" in the request body`},
			{"/api/v1/update_requests", `{"packageId":{"name":"nav","version":"2.0.0"},"priority":"high"}`, `Field "priority" must be an integer, not string`},
			{"/api/v1/update_requests", `{"packageId":{"name":"nav","version":2}}`, `Field "packageId.version" must be a string, not number`},
			{"/api/v1/campaigns", `{"name":"c","packageId":{"name":"nav","version":"2.0.0"},"priority":true}`, `Field "priority" must be an integer, not true or false`},
			{"/api/v1/campaigns", `{"name":"c","packageId":{"name":"nav","version":"2.0.0"},"priority":1.5}`, `Field "priority" must be an integer, not number 1.5`},
			{"/api/v1/filters", `["x"]`, `The request body must be an object, not array`},
			{"/api/v1/filters", ``, `The request body is empty; it must be a JSON value`},
			{"/api/v1/filters", `{"name":`, `Invalid JSON body: it ends before the JSON value does`},
		} {
			req, err := http.NewRequest("POST", e.srv.URL+tc.path, bytes.NewReader([]byte(tc.body)))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var out map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
			resp.Body.Close()
			assert.Equal(t, 400, resp.StatusCode, tc.body)
			assert.Equal(t, "invalid_entity", out["code"], tc.body)
			assert.Equal(t, tc.want, out["description"], tc.body)
			assert.NotRegexp(t, `int64|float64|\*engine|resolver\.|struct|map\[`, out["description"], "no Go type names")
		}
		var list []any
		e.do("GET", "/api/v1/update_requests", nil, &list)
		assert.Empty(t, list)
	})

	t.Run("dry runs report unresolved dependencies grouped by reason, data plans and dormant vehicles", func(t *testing.T) {
		c := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		e := newCoreEnvWith(t, engine.Options{Now: c.Now})
		for i := 1; i <= 14; i++ {
			e.ok("PUT", "/api/v1/vehicles/"+testVIN(i), nil)
		}
		e.ok("PUT", "/api/v1/packages/nav/2.0.0", map[string]any{})
		e.ok("PUT", "/api/v1/packages/maps/1.0.0", map[string]any{})
		e.ok("PUT", "/api/v1/packages/nav/2.0.0/dependencies/maps", map[string]any{"range": ">=1.0.0"})
		e.ok("PUT", "/api/v1/packages/nav/3.0.0", map[string]any{})
		e.ok("PUT", "/api/v1/packages/nav/3.0.0/dependencies/maps", map[string]any{"range": ">=9.0.0"})
		e.binaries(pkgID("nav", "2.0.0"), pkgID("maps", "1.0.0"), pkgID("nav", "3.0.0"))
		e.ok("POST", "/api/v1/filters", map[string]any{"name": "all", "expression": "TRUE"})
		e.ok("PUT", "/api/v1/packages/nav/3.0.0/filter/all", nil)
		e.ok("PUT", "/api/v1/packages/nav/2.0.0/filter/all", nil)

		var dr map[string]any
		resp := e.do("POST", "/api/v1/resolve/dry-run", map[string]any{"package": pkgID("nav", "3.0.0")}, &dr)
		require.Equal(t, 200, resp.StatusCode)
		probs := dr["problems"].([]any)
		require.Len(t, probs, 1, "one entry per reason, not one per vehicle: %v", probs)
		p := probs[0].(map[string]any)
		assert.Equal(t, "unresolved_dependencies", p["code"])
		assert.Equal(t, 14.0, p["vehicles"])
		assert.Len(t, p["sample"], 10)
		assert.Contains(t, p["description"], "14 vehicles cannot be resolved: ")

		// a data plan without room for the payload, and a vehicle not seen for 31 days
		e.ok("POST", "/api/v1/data_plans", map[string]any{"id": "tight"})
		e.ok("POST", "/api/v1/data_plans/tight/billing_cycles", map[string]any{"start": "2025-12-01T00:00:00Z", "poolBytes": 5})
		e.ok("PUT", "/api/v1/vehicles/"+testVIN(3)+"/data_plan", map[string]any{"id": "tight"})
		require.NoError(t, e.deps.Engine.Seen(testVIN(5)))
		c.Add(31 * 24 * time.Hour)
		require.NoError(t, e.deps.Engine.Seen(testVIN(6)))
		resp = e.do("POST", "/api/v1/resolve/dry-run", map[string]any{"package": pkgID("nav", "2.0.0")}, &dr)
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, []any{
			map[string]any{"code": "exceeds_data_plan", "vehicles": 1.0, "sample": []any{testVIN(3)},
				"description": "1 vehicles have less room left in their data plan's billing cycle than the update's size; they wait for a cycle with room"},
			map[string]any{"code": "dormant", "vehicles": 1.0, "sample": []any{testVIN(5)},
				"description": "1 target vehicles have not been seen for 30 days; they are woken up but may not answer"},
		}, dr["problems"])

		// A dry run over more vehicles than the per-vehicle checks take says so, and still counts the
		// unresolved ones by reason.
		small := newCoreEnvWith(t, engine.Options{DryRunProblemVehicles: 5})
		for i := 1; i <= 6; i++ {
			small.ok("PUT", "/api/v1/vehicles/"+testVIN(i), nil)
		}
		small.ok("PUT", "/api/v1/packages/nav/3.0.0", map[string]any{})
		small.ok("PUT", "/api/v1/packages/maps/1.0.0", map[string]any{})
		small.ok("PUT", "/api/v1/packages/nav/3.0.0/dependencies/maps", map[string]any{"range": ">=9.0.0"})
		small.ok("POST", "/api/v1/filters", map[string]any{"name": "all", "expression": "TRUE"})
		small.ok("PUT", "/api/v1/packages/nav/3.0.0/filter/all", nil)
		resp = small.do("POST", "/api/v1/resolve/dry-run", map[string]any{"package": pkgID("nav", "3.0.0")}, &dr)
		require.Equal(t, 200, resp.StatusCode)
		probs = dr["problems"].([]any)
		require.Len(t, probs, 2)
		assert.Equal(t, "unresolved_dependencies", probs[0].(map[string]any)["code"])
		assert.Equal(t, 6.0, probs[0].(map[string]any)["vehicles"])
		assert.Equal(t, "not_checked", probs[1].(map[string]any)["code"])
		assert.Equal(t, "missing binaries, data plans and dormant vehicles are checked in dry runs of up to 5 vehicles; the campaign preview and the queue check them always", probs[1].(map[string]any)["description"])
	})
}
