package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/wire"
)

// The dashboard's figures come from the domains that own them: the fleet's size and lastSeen counts
// (resolver), failures by result code and active updates per vehicle (engine).
func TestDashboardStats(t *testing.T) {
	c := &testClock{t: time.Now().Add(-40 * 24 * time.Hour)}
	e := newCoreEnvWith(t, engine.Options{Now: c.Now})
	vins := []string{"1HGCM82633A000001", "1HGCM82633A000002", "1HGCM82633A000003", "1HGCM82633A000004"}
	for _, v := range vins {
		require.Equal(t, http.StatusNoContent, e.do("PUT", "/api/v1/vehicles/"+v, nil, nil).StatusCode)
	}
	var fleet struct{ Vehicles, SeenLastDay, SeenLast30Days int }
	e.do("GET", "/api/v1/stats/fleet", nil, &fleet)
	assert.Equal(t, 4, fleet.Vehicles)
	assert.Zero(t, fleet.SeenLastDay)

	// contacts 40 days ago, 10 days ago and now, by the engine's clock
	require.NoError(t, e.deps.Engine.Seen(vins[2]))
	c.Add(30 * 24 * time.Hour)
	require.NoError(t, e.deps.Engine.Seen(vins[1]))
	c.Add(10 * 24 * time.Hour)
	require.NoError(t, e.deps.Engine.Seen(vins[0]))
	e.do("GET", "/api/v1/stats/fleet", nil, &fleet)
	assert.Equal(t, 4, fleet.Vehicles)
	assert.Equal(t, 1, fleet.SeenLastDay)
	assert.Equal(t, 2, fleet.SeenLast30Days)

	// Three vehicles get an update; two fail validation, one is declined; the fourth has none.
	e.do("POST", "/api/v1/packages", map[string]any{"id": map[string]string{"name": "fw", "version": "1.0.0"}}, nil)
	e.binaries(pkgID("fw", "1.0.0"))
	e.do("POST", "/api/v1/filters", map[string]string{"name": "first3", "expression": `vin_matches "00[123]$"`}, nil)
	e.do("PUT", "/api/v1/packages/fw/1.0.0/filter/first3", nil, nil)
	var req struct{ ID string }
	e.do("POST", "/api/v1/update_requests", map[string]any{"packageId": map[string]string{"name": "fw", "version": "1.0.0"}}, &req)
	require.NotEmpty(t, req.ID)

	var active map[string]engine.ActiveCounts
	e.do("GET", "/api/v1/stats/active_updates?vin="+vins[0]+","+vins[1]+"&vin="+vins[3], nil, &active)
	assert.Equal(t, map[string]engine.ActiveCounts{vins[0]: {Pending: 1}, vins[1]: {Pending: 1}, vins[3]: {}}, active)

	for i, code := range []int{wire.ResultValidationFailed, wire.ResultValidationFailed, wire.ResultUserDeclined} {
		var q []engine.Update
		e.do("GET", "/api/v1/vehicles/"+vins[i]+"/queue", nil, &q)
		require.Len(t, q, 1)
		_, _, err := e.deps.Engine.InstallReport(vins[i], q[0].ID, []engine.OperationResult{{ID: "fw", ResultCode: code, ResultText: "no"}})
		require.NoError(t, err)
	}
	var failures struct {
		Hours, Total int
		Failures     []struct {
			Code  *int
			Name  string
			Count int
		}
	}
	e.do("GET", "/api/v1/stats/failures", nil, &failures)
	assert.Equal(t, 24, failures.Hours)
	assert.Equal(t, 3, failures.Total)
	require.Len(t, failures.Failures, 2)
	assert.Equal(t, "VALIDATION_FAILED", failures.Failures[0].Name)
	assert.Equal(t, 2, failures.Failures[0].Count)
	require.NotNil(t, failures.Failures[0].Code)
	assert.Equal(t, wire.ResultValidationFailed, *failures.Failures[0].Code)
	assert.Equal(t, "USER_DECLINED", failures.Failures[1].Name)
	assert.Equal(t, 1, failures.Failures[1].Count)

	active = nil
	e.do("GET", "/api/v1/stats/active_updates?vin="+vins[0], nil, &active)
	assert.Equal(t, map[string]engine.ActiveCounts{vins[0]: {}}, active, "a failed update is no longer active")

	e.restart()
	e.do("GET", "/api/v1/stats/failures?hours=1", nil, &failures)
	assert.Equal(t, 3, failures.Total, "read back after a restart")
	fleet.SeenLastDay, fleet.SeenLast30Days = 0, 0
	e.do("GET", "/api/v1/stats/fleet", nil, &fleet)
	assert.Equal(t, 4, fleet.Vehicles)
	assert.Equal(t, 1, fleet.SeenLastDay, "from the index rebuilt at start")
	assert.Equal(t, 2, fleet.SeenLast30Days)

	for _, bad := range []string{"/api/v1/stats/failures?hours=0", "/api/v1/stats/failures?hours=721", "/api/v1/stats/failures?hours=day", "/api/v1/stats/active_updates", "/api/v1/stats/active_updates?vin="} {
		code, errCode := e.status("GET", bad, nil)
		assert.Equal(t, http.StatusBadRequest, code, bad)
		assert.Equal(t, "invalid_entity", errCode, bad)
	}
}
