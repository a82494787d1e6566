package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// authoringFleet is a small fleet with packages, parts, attributes and saved filters, for lint,
// completion and searching vehicles by expression.
func authoringFleet(t *testing.T) *fleetServer {
	fs := newFleetServer(t)
	for _, p := range []struct{ name, version string }{{"nav-engine", "3.1.0"}, {"nav-engine", "3.2.0"}, {"openssl", "1.1.1"}} {
		fs.ok("PUT", "/packages/"+p.name+"/"+p.version, map[string]any{"description": "", "vendor": ""})
	}
	fs.ok("PUT", "/components/ECU1234", map[string]any{"description": "engine"})
	for i, v := range []struct {
		vin, nav string
		year     int
	}{{vinA, "3.1.0", 2019}, {vinB, "3.2.0", 2021}, {vinC, "3.2.0", 2023}} {
		fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+v.vin, nil)
		fs.ok("PUT", "/vehicles/"+v.vin+"/package/nav-engine/"+v.nav, nil)
		fs.ok("PUT", "/vehicles/"+v.vin+"/attributes", map[string]any{"year": v.year, "market": []string{"DE", "FR", "US"}[i]})
	}
	fs.ok("PUT", "/vehicles/"+vinA+"/component/ECU1234", nil)
	fs.ok("PUT", "/vehicles/"+vinA+"/package/openssl/1.1.1", nil)
	fs.ok("POST", "/filters", map[string]string{"name": "production", "expression": `attr "year" >= 2020`})
	return fs
}

type lintAnswer struct {
	Valid    bool
	Errors   []diag
	Warnings []diag
}

type diag struct {
	Line, Column, Offset, Length int
	Message, Suggestion          string
}

func TestLintFilter(t *testing.T) {
	fs := authoringFleet(t)
	lint := func(body any) lintAnswer {
		var a lintAnswer
		fs.ok("POST", "/filters/lint", body).decode(t, &a)
		return a
	}

	t.Run("misspelt predicate is an error with the nearest name", func(t *testing.T) {
		a := lint(map[string]string{"expression": `has_pakage "nav-engine" ""`})
		assert.False(t, a.Valid)
		require.Len(t, a.Errors, 1)
		assert.Equal(t, diag{Line: 1, Column: 1, Offset: 0, Length: 10, Suggestion: "has_package",
			Message: `unexpected word "has_pakage", expected a predicate, NOT, TRUE, FALSE or "("; did you mean has_package?`}, a.Errors[0])
		assert.Empty(t, a.Warnings)
	})
	t.Run("unknown filter suggests the nearest saved filter", func(t *testing.T) {
		a := lint(map[string]string{"expression": `filter "prodution"`})
		require.Len(t, a.Errors, 1)
		assert.Equal(t, `"production"`, a.Errors[0].Suggestion)
		assert.Equal(t, 7, a.Errors[0].Offset)
		assert.Equal(t, 11, a.Errors[0].Length)
	})
	t.Run("names from the fleet are warnings on a valid filter", func(t *testing.T) {
		a := lint(map[string]string{"expression": `has_package "nav-engin" >= "3.0.0" AND attr "yaer" > 2020 AND has_component "ECU1243"`})
		assert.True(t, a.Valid)
		assert.Empty(t, a.Errors)
		require.Len(t, a.Warnings, 3)
		assert.Equal(t, `no installed package is named "nav-engin"; did you mean "nav-engine"?`, a.Warnings[0].Message)
		assert.Equal(t, `"nav-engine"`, a.Warnings[0].Suggestion)
		assert.Equal(t, `no vehicle has attribute "yaer"; did you mean "year"?`, a.Warnings[1].Message)
		assert.Equal(t, `no installed part number contains "ECU1243"; did you mean "ECU1234"?`, a.Warnings[2].Message)
		// a warning does not make the filter invalid: validate and saving accept it
		fs.ok("POST", "/validate/filter", map[string]string{"expression": `has_component "ECU1243"`})
		fs.ok("POST", "/filters", map[string]string{"name": "typo", "expression": `has_component "ECU1243"`})
	})
	t.Run("contradiction", func(t *testing.T) {
		a := lint(map[string]string{"expression": `attr "year" > 2030 AND attr "year" < 2000`})
		assert.True(t, a.Valid)
		require.Len(t, a.Warnings, 1)
		assert.Contains(t, a.Warnings[0].Message, "always false")
	})
	t.Run("a cycle through the named filter", func(t *testing.T) {
		a := lint(map[string]string{"expression": `filter "production"`, "name": "Production"})
		assert.False(t, a.Valid)
		require.Len(t, a.Errors, 1)
		assert.Contains(t, a.Errors[0].Message, "filter reference cycle")
	})
	t.Run("an expression over 64 KiB is an answer, not a 406", func(t *testing.T) {
		a := lint(map[string]string{"expression": strings.Repeat("TRUE OR ", 9000) + "TRUE"})
		assert.False(t, a.Valid)
		require.Len(t, a.Errors, 1)
		assert.Contains(t, a.Errors[0].Message, "expected at most 65536")
	})
	t.Run("a body over the limit is 413", func(t *testing.T) {
		fs.must(http.StatusRequestEntityTooLarge, "body_too_large", "POST", "/filters/lint", `{"expression":"`+strings.Repeat("x", 9<<20)+`"}`)
	})
	fs.restart()
	a := lint(map[string]string{"expression": `filter "production" AND has_attr "market"`})
	assert.True(t, a.Valid)
	assert.Empty(t, a.Warnings)
}

func TestCompleteFilter(t *testing.T) {
	fs := authoringFleet(t)
	type answer struct {
		From, To int
		Items    []struct{ Label, Insert, Kind, Detail string }
	}
	complete := func(expr string, off int) answer {
		var a answer
		fs.ok("POST", "/filters/complete", map[string]any{"expression": expr, "offset": off}).decode(t, &a)
		return a
	}
	a := complete("has_pak", 7)
	assert.Equal(t, 0, a.From)
	assert.Equal(t, 7, a.To)
	require.NotEmpty(t, a.Items)
	assert.Equal(t, "has_package", a.Items[0].Label)
	assert.Equal(t, "predicate", a.Items[0].Kind)

	a = complete(`has_package `, 12)
	require.Len(t, a.Items, 2)
	assert.Equal(t, "nav-engine", a.Items[0].Label, "ranked by vehicles: nav-engine is on 3")
	assert.Equal(t, `"nav-engine"`, a.Items[0].Insert)
	assert.Equal(t, "3 vehicles", a.Items[0].Detail)
	assert.Equal(t, "openssl", a.Items[1].Label)

	a = complete(`has_package "nav-engine" >= "`, 29)
	require.Len(t, a.Items, 2)
	assert.Equal(t, []string{"3.2.0", "3.1.0"}, []string{a.Items[0].Label, a.Items[1].Label})

	a = complete(`attr "market" == `, 17)
	assert.Len(t, a.Items, 3)
	a = complete(`filter "pr`, 10)
	require.Len(t, a.Items, 1)
	assert.Equal(t, "filter", a.Items[0].Kind)

	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/filters/complete", map[string]any{"expression": "TRUE", "offset": 5})
	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/filters/complete", map[string]any{"expression": "TRUE"})
	fs.restart()
	a = complete(`has_component "E`, 16)
	require.Len(t, a.Items, 1)
	assert.Equal(t, "ECU1234", a.Items[0].Label)
}

func TestVehiclesByExpression(t *testing.T) {
	fs := authoringFleet(t)
	var list []map[string]any
	r := fs.getJSON(`/vehicles?expression=`+url.QueryEscape(`filter "production" AND has_package "nav-engine" >= "3.2.0"`), &list)
	assert.Equal(t, "2", r.header.Get("X-Total-Count"))
	require.Len(t, list, 2)
	assert.Equal(t, vinB, list[0]["vin"])
	assert.Equal(t, vinC, list[1]["vin"])

	r = fs.getJSON(`/vehicles?limit=1&offset=1&expression=`+url.QueryEscape(`attr "year" > 2000`), &list)
	assert.Equal(t, "3", r.header.Get("X-Total-Count"))
	require.Len(t, list, 1)
	assert.Equal(t, vinB, list[0]["vin"], "sorted by VIN, then paged")

	// combined with the other parameters
	r = fs.getJSON(`/vehicles?component=ECU1234&expression=`+url.QueryEscape(`attr "year" > 2000`), &list)
	assert.Equal(t, "1", r.header.Get("X-Total-Count"))

	r = fs.must(http.StatusNotAcceptable, "invalid_filter", "GET", `/vehicles?expression=`+url.QueryEscape(`has_pakage "x"`), nil)
	assert.Contains(t, r.description(), "did you mean has_package?")
	fs.must(http.StatusBadRequest, "invalid_entity", "GET", `/vehicles?expression=`, nil)

	fs.restart()
	r = fs.getJSON(`/vehicles?expression=`+url.QueryEscape(`NOT filter "production"`), &list)
	assert.Equal(t, "1", r.header.Get("X-Total-Count"))
	assert.Equal(t, vinA, list[0]["vin"])
}
