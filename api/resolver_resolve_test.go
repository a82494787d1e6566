package api

import (
	"encoding/json"
	"net/http"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const vinD = "WDD12345678900004"

// seedFleet registers four vehicles, packages with dependencies and three filters:
//
//	vinA  nav 1.0.0, maps 2.0.0   ECU1   region EU
//	vinB  nav 2.0.0               ECU1   region EU
//	vinC  (none)                  ECU1   region NA
//	vinD  tachograph 9.0.0 (foreign)  ECU2
//
//	nav 2.0.0 -> maps >=1.0.0 <2.0.0;  maps 1.0.0 and 1.2.0 -> lib 1.0.0;  bad 1.0.0 -> maps >=3.0.0
func seedFleet(fs *fleetServer) {
	for _, id := range []string{"nav/1.0.0", "nav/2.0.0", "maps/1.0.0", "maps/1.2.0", "maps/2.0.0", "lib/1.0.0", "bad/1.0.0", "probe/1.0.0"} {
		fs.ok("PUT", "/packages/"+id, nil)
	}
	fs.ok("PUT", "/packages/nav/2.0.0/dependencies/maps", map[string]string{"range": ">=1.0.0 <2.0.0"})
	fs.ok("PUT", "/packages/maps/1.0.0/dependencies/lib/1.0.0", nil)
	fs.ok("PUT", "/packages/maps/1.2.0/dependencies/lib/1.0.0", nil)
	fs.ok("PUT", "/packages/bad/1.0.0/dependencies/maps", map[string]string{"range": ">=3.0.0"})
	fs.ok("PUT", "/components/ECU1", nil)
	fs.ok("PUT", "/components/ECU2", nil)
	for _, v := range []struct {
		vin    string
		pkgs   []pid
		part   string
		region string
	}{
		{vinA, []pid{p("nav", "1.0.0"), p("maps", "2.0.0")}, "ECU1", "EU"},
		{vinB, []pid{p("nav", "2.0.0")}, "ECU1", "EU"},
		{vinC, nil, "ECU1", "NA"},
		{vinD, []pid{p("tachograph", "9.0.0")}, "ECU2", ""},
	} {
		fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+v.vin, nil)
		fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+v.vin+"/packages", map[string]any{"packages": append([]pid{}, v.pkgs...)})
		fs.ok("PUT", "/vehicles/"+v.vin+"/component/"+v.part, nil)
		if v.region != "" {
			fs.ok("PUT", "/vehicles/"+v.vin+"/attributes", map[string]any{"region": v.region})
		}
	}
	fs.ok("POST", "/filters", map[string]string{"name": "ecu", "expression": `has_component "ECU1"`})
	fs.ok("POST", "/filters", map[string]string{"name": "eu", "expression": `attr "region" == "EU"`})
	fs.ok("POST", "/filters", map[string]string{"name": "all", "expression": `TRUE`})
}

// resolveJSON decodes the [["VIN",[PackageId…]],…] answer.
func resolveJSON(t *testing.T, r response) map[string][]pid {
	t.Helper()
	var raw [][]json.RawMessage
	r.decode(t, &raw)
	out := map[string][]pid{}
	prev := ""
	for _, e := range raw {
		require.Len(t, e, 2)
		var vin string
		var ids []pid
		require.NoError(t, json.Unmarshal(e[0], &vin))
		require.NoError(t, json.Unmarshal(e[1], &ids))
		assert.Greater(t, vin, prev, "sorted by VIN")
		prev = vin
		out[vin] = ids
	}
	return out
}

func TestResolve(t *testing.T) {
	fs := newFleetServer(t)
	seedFleet(fs)
	r := fs.must(http.StatusNotFound, "no_filters", "GET", "/resolve/nav/2.0.0", nil)
	assert.Contains(t, r.description(), "No filters associated with package")
	r = fs.must(http.StatusNotFound, "package_not_found", "GET", "/resolve/nav/3.0.0", nil)
	assert.Contains(t, r.description(), "Package ID does not exist")
	fs.must(http.StatusBadRequest, "invalid_entity", "GET", "/resolve/nav/3.0", nil)

	fs.ok("PUT", "/packages/nav/2.0.0/filter/ecu", nil)
	fs.restart() // the index is rebuilt from the store

	got := resolveJSON(t, fs.ok("GET", "/resolve/nav/2.0.0", nil))
	assert.Equal(t, map[string][]pid{
		// vinA has maps 2.0.0, outside the range: it gets the highest in range, after its dependency lib.
		vinA: {p("lib", "1.0.0"), p("maps", "1.2.0"), p("nav", "2.0.0")},
		vinC: {p("lib", "1.0.0"), p("maps", "1.2.0"), p("nav", "2.0.0")},
	}, got, "vinB has nav 2.0.0 already; vinD lacks ECU1")
	// The exact JSON shape.
	r = fs.ok("GET", "/resolve/nav/2.0.0", nil)
	assert.JSONEq(t, `[["`+vinA+`",[{"name":"lib","version":"1.0.0"},{"name":"maps","version":"1.2.0"},{"name":"nav","version":"2.0.0"}]],`+
		`["`+vinC+`",[{"name":"lib","version":"1.0.0"},{"name":"maps","version":"1.2.0"},{"name":"nav","version":"2.0.0"}]]]`, string(r.body))

	// An installed version in the range is kept, and its own dependencies are taken as present.
	fs.ok("PUT", "/vehicles/"+vinC+"/package/maps/1.0.0", nil)
	got = resolveJSON(t, fs.ok("GET", "/resolve/nav/2.0.0", nil))
	assert.Equal(t, []pid{p("nav", "2.0.0")}, got[vinC])

	// Filters of a package are ANDed.
	fs.ok("PUT", "/packages/nav/2.0.0/filter/eu", nil)
	got = resolveJSON(t, fs.ok("GET", "/resolve/nav/2.0.0", nil))
	assert.Equal(t, []string{vinA}, keys(got))

	// Vehicles whose dependencies cannot be satisfied are left out.
	fs.ok("PUT", "/packages/bad/1.0.0/filter/all", nil)
	assert.Empty(t, resolveJSON(t, fs.ok("GET", "/resolve/bad/1.0.0", nil)))
}

func keys(m map[string][]pid) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type dryRun struct {
	Matched          int `json:"matched"`
	AlreadyInstalled int `json:"alreadyInstalled"`
	TotalVehicles    int `json:"totalVehicles"`
	UnresolvedCount  int `json:"unresolvedCount"`
	Unresolved       []struct {
		VIN    string `json:"vin"`
		Reason string `json:"reason"`
	} `json:"unresolved"`
	UnresolvedByReason []struct {
		Reason   string   `json:"reason"`
		Vehicles int      `json:"vehicles"`
		Sample   []string `json:"sample"`
	} `json:"unresolvedByReason"`
	Sample []struct {
		VIN     string `json:"vin"`
		Install []pid  `json:"install"`
	} `json:"sample"`
	ElapsedMs *float64 `json:"elapsedMs"`
}

func (d dryRun) sampleVINs() []string {
	out := []string{}
	for _, s := range d.Sample {
		out = append(out, s.VIN)
	}
	return out
}

// selected dry-runs the probe package (no dependencies, installed nowhere) with expr and returns the
// VINs that pass it.
func selected(t *testing.T, fs *fleetServer, expr string) []string {
	t.Helper()
	var d dryRun
	fs.ok("POST", "/resolve/dry-run", map[string]any{"package": p("probe", "1.0.0"), "expression": expr}).decode(t, &d)
	require.Equal(t, d.Matched, len(d.Sample))
	return d.sampleVINs()
}

// The filter semantics of the original resolver, over the real store and index.
func TestFilterSemanticsOfTheOriginalResolver(t *testing.T) {
	fs := newFleetServer(t)
	seedFleet(fs)
	fs.restart()
	for _, c := range []struct {
		name, expr string
		want       []string
	}{
		{"regex is unanchored", `vin_matches "5745"`, []string{vinA, vinB}},
		{"regex is case-sensitive", `vin_matches "sajnx"`, []string{}},
		{"anchors work", `vin_matches "^WDD"`, []string{vinC, vinD}},
		{"name and version on the same package", `has_package "nav" "2.0.0"`, []string{vinB}},
		{"either package's version", `has_package "nav|maps" "2.0.0"`, []string{vinA, vinB}},
		{"a vehicle without packages fails has_package with empty regexes", `has_package "" ""`, []string{vinA, vinB}},
		{"foreign packages are ignored by filters", `has_package "tachograph" ""`, []string{}},
		{"typed version comparison", `has_package "NAV" >= "1.5.0"`, []string{vinB}},
		{"component regex", `has_component "^ECU"`, []string{vinA, vinB, vinC, vinD}},
		{"attributes", `attr "region" == "EU" AND NOT has_component "ECU2"`, []string{vinA, vinB}},
		{"missing attribute", `NOT has_attr "region"`, []string{vinD}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, selected(t, fs, c.expr))
		})
	}
}

func TestDryRun(t *testing.T) {
	fs := newFleetServer(t)
	seedFleet(fs)
	r := fs.must(http.StatusNotFound, "no_filters", "POST", "/resolve/dry-run", map[string]any{"package": p("nav", "2.0.0")})
	assert.Contains(t, r.description(), "No filters associated with package")
	fs.ok("PUT", "/packages/nav/2.0.0/filter/ecu", nil)
	fs.restart()

	var d dryRun
	fs.ok("POST", "/resolve/dry-run", map[string]any{"package": p("nav", "2.0.0")}).decode(t, &d)
	assert.Equal(t, 2, d.Matched)
	assert.Equal(t, 1, d.AlreadyInstalled)
	assert.Equal(t, 4, d.TotalVehicles)
	assert.Empty(t, d.Unresolved)
	assert.Equal(t, []string{vinA, vinC}, d.sampleVINs())
	assert.Equal(t, []pid{p("lib", "1.0.0"), p("maps", "1.2.0"), p("nav", "2.0.0")}, d.Sample[0].Install)
	require.NotNil(t, d.ElapsedMs)

	fs.ok("POST", "/resolve/dry-run", map[string]any{"package": p("nav", "2.0.0"), "sample": 1}).decode(t, &d)
	assert.Equal(t, []string{vinA}, d.sampleVINs())
	assert.Equal(t, 2, d.Matched)

	// An unsaved expression replaces the associations.
	fs.ok("POST", "/resolve/dry-run", map[string]any{"package": p("nav", "2.0.0"), "expression": `vin_matches "^WDD"`}).decode(t, &d)
	assert.Equal(t, []string{vinC, vinD}, d.sampleVINs())
	assert.Equal(t, 0, d.AlreadyInstalled)

	// Unresolvable vehicles are counted as matched and listed with a reason naming the packages.
	fs.ok("POST", "/resolve/dry-run", map[string]any{"package": p("bad", "1.0.0"), "expression": `TRUE`}).decode(t, &d)
	assert.Equal(t, 4, d.Matched)
	assert.Equal(t, 4, d.UnresolvedCount)
	require.Len(t, d.Unresolved, 4)
	assert.Equal(t, vinA, d.Unresolved[0].VIN)
	assert.Contains(t, d.Unresolved[0].Reason, "maps")
	assert.Empty(t, d.Sample)
	// grouped by reason, each group with its count and first VINs
	total := 0
	var grouped []string
	for _, g := range d.UnresolvedByReason {
		assert.Contains(t, g.Reason, "maps")
		assert.Len(t, g.Sample, g.Vehicles)
		total += g.Vehicles
		grouped = append(grouped, g.Sample...)
	}
	assert.Equal(t, 4, total)
	assert.ElementsMatch(t, []string{vinA, vinB, vinC, vinD}, grouped)
	// the list of unresolved vehicles is as long as the sample; the count and the groups say the rest
	fs.ok("POST", "/resolve/dry-run", map[string]any{"package": p("bad", "1.0.0"), "expression": `TRUE`, "sample": 1}).decode(t, &d)
	assert.Equal(t, 4, d.UnresolvedCount)
	require.Len(t, d.Unresolved, 1)
	assert.Equal(t, vinA, d.Unresolved[0].VIN)

	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/resolve/dry-run", map[string]any{"package": p("nav", "2.0.0"), "expression": ""})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/resolve/dry-run", map[string]any{"package": p("nav", "2.0.0"), "expression": `has_package "x" >= "1"`})
	fs.must(http.StatusNotFound, "package_not_found", "POST", "/resolve/dry-run", map[string]any{"package": p("nav", "9.0.0")})
	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/resolve/dry-run", map[string]any{"package": p("nav", "2.0.0"), "sample": 1001})
	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/resolve/dry-run", map[string]any{})
	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/resolve/dry-run", "[")
}

func TestExplain(t *testing.T) {
	fs := newFleetServer(t)
	seedFleet(fs)
	fs.restart()
	var res struct {
		Result bool `json:"result"`
		Tree   struct {
			Expression string `json:"expression"`
			Value      bool   `json:"value"`
			Children   []struct {
				Expression string `json:"expression"`
				Value      bool   `json:"value"`
			} `json:"children"`
		} `json:"tree"`
	}
	fs.ok("POST", "/filters/explain", map[string]string{"expression": `filter "eu" AND has_component "ECU2"`, "vin": vinA}).decode(t, &res)
	assert.False(t, res.Result)
	assert.False(t, res.Tree.Value)
	require.Len(t, res.Tree.Children, 2)
	assert.True(t, res.Tree.Children[0].Value, "vinA is in the EU")
	assert.False(t, res.Tree.Children[1].Value, "vinA has ECU1, not ECU2")
	fs.ok("POST", "/filters/explain", map[string]string{"expression": `has_component "ECU2"`, "vin": vinD}).decode(t, &res)
	assert.True(t, res.Result)

	fs.must(http.StatusNotFound, "missing_vehicle", "POST", "/filters/explain", map[string]string{"expression": "TRUE", "vin": "SAJNX5745SC000099"})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/filters/explain", map[string]string{"expression": "TRUE AND", "vin": vinA})
	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/filters/explain", map[string]string{"expression": "TRUE", "vin": "nope"})
}

// A compiled filter inlines the filters it references: changing one of those must change the result.
func TestChangingAReferencedFilterChangesResolution(t *testing.T) {
	fs := newFleetServer(t)
	seedFleet(fs)
	fs.ok("POST", "/filters", map[string]string{"name": "base", "expression": `vin_matches "^SAJ"`})
	fs.ok("POST", "/filters", map[string]string{"name": "wrapper", "expression": `filter "base" AND TRUE`})
	fs.ok("PUT", "/packages/probe/1.0.0/filter/wrapper", nil)
	assert.Equal(t, []string{vinA, vinB}, keys(resolveJSON(t, fs.ok("GET", "/resolve/probe/1.0.0", nil))))
	fs.ok("PUT", "/filters/base", map[string]string{"expression": `vin_matches "^WDD"`})
	assert.Equal(t, []string{vinC, vinD}, keys(resolveJSON(t, fs.ok("GET", "/resolve/probe/1.0.0", nil))))
	fs.restart()
	assert.Equal(t, []string{vinC, vinD}, keys(resolveJSON(t, fs.ok("GET", "/resolve/probe/1.0.0", nil))))
	// Installing the package takes the vehicle out of the next resolution.
	fs.ok("PUT", "/vehicles/"+vinC+"/package/probe/1.0.0", nil)
	assert.Equal(t, []string{vinD}, keys(resolveJSON(t, fs.ok("GET", "/resolve/probe/1.0.0", nil))))
	// Deleting a vehicle takes it out of the index.
	fs.ok("DELETE", "/vehicles/"+vinD, nil)
	assert.Empty(t, resolveJSON(t, fs.ok("GET", "/resolve/probe/1.0.0", nil)))
}
