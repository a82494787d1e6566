package api

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/examples"
)

func (fs *fleetServer) importLines(lines string) response {
	fs.t.Helper()
	req, err := http.NewRequest("POST", fs.srv.URL+"/api/v1/fleet/import", strings.NewReader(lines))
	require.NoError(fs.t, err)
	req.Header.Set("Content-Type", "application/x-ndjson")
	res, err := fs.srv.Client().Do(req)
	require.NoError(fs.t, err)
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: buf.Bytes()}
}

func TestFleetImport(t *testing.T) {
	fs := newFleetServer(t)
	fs.ok("PUT", "/packages/Nav/1.0.0", nil)
	fs.ok("PUT", "/components/ECU1", nil)
	fs.ok("POST", "/filters", map[string]string{"name": "eu", "expression": `attr "region" == "EU" AND has_package "Nav" ""`})
	lines := `{"vin":"` + vinA + `","packages":[{"name":"nav","version":"1.0.0"},{"name":"tacho","version":"2.0.0"}],"components":["ecu1","NEW7"],"attributes":{"region":"EU","year":2021}}
{"vin":"` + vinB + `","packages":[],"components":[]}

{"vin":"` + vinC + `","attributes":{"region":"EU"}}
`
	r := fs.importLines(lines)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var res struct{ Vehicles, Created, ComponentsCreated, ForeignPackages int }
	r.decode(t, &res)
	assert.Equal(t, 3, res.Vehicles)
	assert.Equal(t, 3, res.Created)
	assert.Equal(t, 1, res.ComponentsCreated)
	assert.Equal(t, 1, res.ForeignPackages)

	check := func() {
		var ids []pid
		fs.getJSON("/vehicles/"+vinA+"/package", &ids)
		assert.Equal(t, []pid{p("Nav", "1.0.0"), p("tacho", "2.0.0")}, ids, "known packages in their registered case, foreign kept")
		var parts []string
		fs.getJSON("/vehicles/"+vinA+"/component", &parts)
		assert.Equal(t, []string{"ECU1", "NEW7"}, parts)
		var vins []string
		fs.getJSON("/components/new7/vehicles", &vins)
		assert.Equal(t, []string{vinA}, vins, "the new part number is registered and indexed")
		var attrs map[string]any
		fs.getJSON("/vehicles/"+vinA+"/attributes", &attrs)
		assert.Equal(t, map[string]any{"region": "EU", "year": 2021.0}, attrs)
		assert.Equal(t, []string{vinA}, selected(t, fs, `filter "eu"`), "the index holds the vehicles as imported")
	}
	fs.ok("PUT", "/packages/probe/1.0.0", nil)
	check()
	fs.restart()
	check()

	// Re-importing replaces packages, components and attributes (the data plan and last contact are
	// the engine's: TestFleetImportKeepsEngineState).
	r = fs.importLines(`{"vin":"` + vinA + `","packages":[{"name":"nav","version":"1.0.0"}],"components":["ECU1"]}` + "\n")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.decode(t, &res)
	assert.Equal(t, 0, res.Created)
	var v map[string]any
	fs.getJSON("/vehicles/"+vinA, &v)
	assert.Equal(t, map[string]any{}, v["attributes"])
	assert.Equal(t, []any{"ECU1"}, v["components"])
	fs.restart()
	var vins []string
	fs.getJSON("/components/NEW7/vehicles", &vins)
	assert.Empty(t, vins)
	var list []map[string]any
	fs.getJSON("/vehicles?packageName=tacho", &list)
	assert.Empty(t, list, "the old foreign install is gone")
	// Registering the package it no longer has does not bring it back.
	fs.ok("PUT", "/packages/tacho/2.0.0", nil)
	fs.getJSON("/packages/tacho/2.0.0/vehicles", &vins)
	assert.Empty(t, vins)
}

func TestFleetImportRefusesBadInputWhole(t *testing.T) {
	fs := newFleetServer(t)
	good := `{"vin":"` + vinA + `"}` + "\n"
	for name, c := range map[string]struct{ lines, want string }{
		"bad json":       {good + `{"vin":` + "\n", "line 2"},
		"bad vin":        {good + `{"vin":"NOPE"}` + "\n", "line 2: Invalid VIN"},
		"bad version":    {good + `{"vin":"` + vinB + `","packages":[{"name":"a","version":"1.0"}]}`, "line 2: Invalid version"},
		"bad part":       {good + `{"vin":"` + vinB + `","components":["a-b"]}`, "line 2: Invalid part number"},
		"bad attribute":  {good + `{"vin":"` + vinB + `","attributes":{"a":true}}`, "line 2: Attribute"},
		"unknown field":  {good + `{"vin":"` + vinB + `","colour":"red"}`, "line 2"},
		"duplicate vin":  {good + good, "line 2: VIN " + vinA + " is already on line 1"},
		"two objects":    {good + `{"vin":"` + vinB + `"} {"vin":"` + vinC + `"}`, "line 2: one JSON object per line"},
		"too long":       {good + `{"vin":"` + vinB + `","attributes":{"a":"` + strings.Repeat("x", 1<<20) + `"}}`, "line 2: longer than"},
		"several errors": {`{"vin":"X"}` + "\n" + good + `{"vin":"Y"}`, "line 1: Invalid VIN \"X\""},
	} {
		t.Run(name, func(t *testing.T) {
			r := fs.importLines(c.lines)
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			assert.Equal(t, "invalid_entity", r.code())
			assert.Contains(t, r.description(), c.want)
			assert.Contains(t, r.description(), "nothing was written")
			fs.must(http.StatusNotFound, "missing_vehicle", "GET", "/vehicles/"+vinA, nil)
		})
	}
	r := fs.importLines(`{"vin":"X"}` + "\n" + good + `{"vin":"Y"}`)
	var body struct{ Errors []string }
	r.decode(t, &body)
	assert.Equal(t, []string{`line 1: Invalid VIN "X": a VIN is 17 characters of A-Z and 0-9 except I, O and Q`, `line 3: Invalid VIN "Y": a VIN is 17 characters of A-Z and 0-9 except I, O and Q`}, body.Errors)
}

// A generated fleet of 10,000 vehicles (about 9 MB, over the 8 MiB limit of JSON bodies) imports
// through the streaming route and survives a restart.
func TestFleetImportOfTheExampleFleet(t *testing.T) {
	fs := newFleetServer(t)
	buf := exampleJSONL(t, 1, 10000)
	require.Greater(t, buf.Len(), 8<<20)
	r := fs.importLines(buf.String())
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var res struct{ Vehicles, ForeignPackages int }
	r.decode(t, &res)
	assert.Equal(t, 10000, res.Vehicles)
	assert.Equal(t, 10000*examples.PackagesPerVehicle, res.ForeignPackages, "no package is registered yet")
	fs.restart()
	r = fs.ok("GET", "/vehicles?limit=1", nil)
	assert.Equal(t, strconv.Itoa(10000), r.header.Get("X-Total-Count"))
	first := examples.Fleet(1, 1)[0]
	var parts []string
	fs.getJSON("/vehicles/"+first.VIN+"/component", &parts)
	assert.Len(t, parts, examples.ComponentsPerVehicle)
	var ids []pid
	fs.getJSON("/vehicles/"+first.VIN+"/package", &ids)
	assert.Len(t, ids, examples.PackagesPerVehicle)
}

// exampleJSONL is the example fleet as import lines.
func exampleJSONL(t testing.TB, seed int64, n int) *bytes.Buffer {
	var buf bytes.Buffer
	require.NoError(t, examples.WriteJSONL(&buf, seed, n))
	return &buf
}

// Re-importing a vehicle leaves what the engine knows of it, its data plan and last contact, as it
// was, also after a restart.
func TestFleetImportKeepsEngineState(t *testing.T) {
	e := newCoreEnv(t)
	vin := "SAJNX5745SC000001"
	e.ok("PUT", "/api/v1/vehicles/"+vin, nil)
	e.ok("POST", "/api/v1/data_plans", map[string]any{"id": "Basic"})
	e.ok("PUT", "/api/v1/vehicles/"+vin+"/data_plan", map[string]any{"id": "basic"})
	require.NoError(t, e.deps.Engine.Seen(vin))
	var before map[string]any
	e.do("GET", "/api/v1/vehicles/"+vin, nil, &before)
	require.NotNil(t, before["lastSeen"])
	require.Equal(t, "Basic", before["dataPlan"])

	resp := e.do("POST", "/api/v1/fleet/import", `{"vin":"`+vin+`","components":["ECU1"]}`+"\n", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, restarted := range []bool{false, true} {
		if restarted {
			e.restart()
		}
		var v map[string]any
		e.do("GET", "/api/v1/vehicles/"+vin, nil, &v)
		assert.Equal(t, []any{"ECU1"}, v["components"], "imported (restarted: %v)", restarted)
		assert.Equal(t, before["lastSeen"], v["lastSeen"], "restarted: %v", restarted)
		assert.Equal(t, "Basic", v["dataPlan"], "restarted: %v", restarted)
	}
}
