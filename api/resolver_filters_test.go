package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/resolver"
)

func filterNames(fs []resolver.Filter) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

func TestFilterCRUD(t *testing.T) {
	fs := newFleetServer(t)
	var f resolver.Filter
	fs.ok("POST", "/filters", map[string]string{"name": "Mercedes", "expression": `vin_matches "^WDD"`}).decode(t, &f)
	assert.Equal(t, resolver.Filter{Name: "Mercedes", Expression: `vin_matches "^WDD"`}, f)
	fs.ok("POST", "/filters", map[string]string{"name": "ecu1", "expression": `has_component "ECU1"`})
	fs.ok("POST", "/filters", map[string]string{"name": "both", "expression": `filter "MERCEDES" AND filter "ecu1"`})

	r := fs.must(http.StatusConflict, "duplicate_entry", "POST", "/filters", map[string]string{"name": "mercedes", "expression": "TRUE"})
	assert.Contains(t, r.description(), "Filter already exists")
	for _, name := range []string{"x", strings.Repeat("a", 101), "bad-name", "with space", ""} {
		fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/filters", map[string]string{"name": name, "expression": "TRUE"})
	}
	r = fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/filters", map[string]string{"name": "broken", "expression": `vin_matches "^WDD" AND ?`})
	assert.Contains(t, r.description(), "Filter failed validation")
	var bad struct {
		Errors []struct {
			Line, Column int
			Message      string
		}
	}
	r.decode(t, &bad)
	require.NotEmpty(t, bad.Errors)
	assert.Equal(t, 1, bad.Errors[0].Line)
	assert.Equal(t, 24, bad.Errors[0].Column)
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/filters", map[string]string{"name": "empty", "expression": ""})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/filters", map[string]string{"name": "unknownref", "expression": `filter "nope"`})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/filters", map[string]string{"name": "badre", "expression": `vin_matches "("`})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/filters", map[string]string{"name": "self", "expression": `filter "self"`})
	fs.restart()

	var list []resolver.Filter
	r = fs.getJSON("/filters", &list)
	assert.Equal(t, []string{"both", "ecu1", "Mercedes"}, filterNames(list), "sorted case-insensitively, created case kept")
	assert.Equal(t, "3", r.header.Get("X-Total-Count"))
	fs.getJSON("/filters?regex=^[a-z]", &list)
	assert.Equal(t, []string{"both", "ecu1"}, filterNames(list), "the regex is case-sensitive")
	fs.must(http.StatusBadRequest, "invalid_entity", "GET", "/filters?regex=(", nil)
	fs.getJSON("/filters/MERCEDES", &f)
	assert.Equal(t, "Mercedes", f.Name)
	r = fs.must(http.StatusNotFound, "filter_not_found", "GET", "/filters/nope", nil)
	assert.Contains(t, r.description(), "Filter label does not exist")

	// Update.
	fs.ok("PUT", "/filters/mercedes", map[string]string{"expression": `vin_matches "^WDB"`}).decode(t, &f)
	assert.Equal(t, resolver.Filter{Name: "Mercedes", Expression: `vin_matches "^WDB"`}, f)
	fs.must(http.StatusNotFound, "filter_not_found", "PUT", "/filters/nope", map[string]string{"expression": "TRUE"})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "PUT", "/filters/ecu1", map[string]string{"expression": `has_component`})
	// A reference cycle through the filter being changed is refused.
	fs.must(http.StatusNotAcceptable, "invalid_filter", "PUT", "/filters/ecu1", map[string]string{"expression": `filter "both"`})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "PUT", "/filters/ecu1", map[string]string{"expression": `filter "ecu1"`})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/filters/ecu1", map[string]string{})
	fs.getJSON("/filters/ecu1", &f)
	assert.Equal(t, `has_component "ECU1"`, f.Expression, "refused updates change nothing")

	// Delete: refused while referenced.
	r = fs.must(http.StatusConflict, "filter_in_use", "DELETE", "/filters/Mercedes", nil)
	assert.Contains(t, r.description(), "both")
	fs.restart()
	fs.must(http.StatusConflict, "filter_in_use", "DELETE", "/filters/ecu1", nil)
	// Once the referrer no longer references it, it can go.
	fs.ok("PUT", "/filters/both", map[string]string{"expression": `filter "ecu1"`})
	fs.ok("DELETE", "/filters/mercedes", nil)
	fs.must(http.StatusNotFound, "filter_not_found", "DELETE", "/filters/mercedes", nil)
	fs.ok("DELETE", "/filters/both", nil)
	fs.ok("DELETE", "/filters/ecu1", nil)
	fs.restart()
	fs.getJSON("/filters", &list)
	assert.Empty(t, list)
}

func TestValidateEndpointSeesSavedFilters(t *testing.T) {
	fs := newFleetServer(t)
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/validate/filter", map[string]string{"expression": `filter "eu"`})
	fs.ok("POST", "/filters", map[string]string{"name": "eu", "expression": `attr "region" == "EU"`})
	fs.ok("POST", "/validate/filter", map[string]string{"expression": `filter "EU" AND TRUE`})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/validate/filter", map[string]string{"name": "eu", "expression": `filter "eu"`})
	var ok string
	fs.ok("POST", "/validate/filter", map[string]string{"expression": `filter "EU"`}).decode(t, &ok)
	assert.Equal(t, "OK", ok)
	fs.restart()
	var f struct{ Expression string }
	fs.ok("POST", "/filters/format", map[string]string{"expression": `filter 'eu'  and  not vin_matches "^WDD"`}).decode(t, &f)
	assert.Equal(t, `filter "eu" AND NOT vin_matches "^WDD"`, f.Expression)
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/filters/format", map[string]string{"expression": `filter "nope"`})
	fs.must(http.StatusNotAcceptable, "invalid_filter", "POST", "/filters/format", map[string]string{"expression": `TRUE AND`})
}

func TestPackageFilterAssociations(t *testing.T) {
	fs := newFleetServer(t)
	fs.ok("PUT", "/packages/Nav/1.0.0", nil)
	fs.ok("PUT", "/packages/radio/2.0.0", nil)
	fs.ok("POST", "/filters", map[string]string{"name": "All", "expression": "TRUE"})
	fs.ok("POST", "/filters", map[string]string{"name": "eu", "expression": `attr "region" == "EU"`})

	var a resolver.PackageFilter
	fs.ok("PUT", "/packages/nav/1.0.0/filter/all", nil).decode(t, &a)
	assert.Equal(t, resolver.PackageFilter{PackageName: "Nav", PackageVersion: "1.0.0", FilterName: "All"}, a)
	r := fs.must(http.StatusConflict, "duplicate_entry", "PUT", "/packages/NAV/1.0.0/filter/ALL", nil)
	assert.Contains(t, r.description(), "Filter/Package association already exists")
	r = fs.must(http.StatusNotFound, "filter_not_found", "PUT", "/packages/nav/1.0.0/filter/nope", nil)
	assert.Contains(t, r.description(), "Filter label does not exist")
	r = fs.must(http.StatusNotFound, "package_not_found", "PUT", "/packages/nav/9.0.0/filter/all", nil)
	assert.Contains(t, r.description(), "Package ID does not exist")
	fs.ok("PUT", "/packages/nav/1.0.0/filter/eu", nil)
	fs.ok("PUT", "/packages/radio/2.0.0/filter/eu", nil)
	fs.restart()

	var as []resolver.PackageFilter
	fs.getJSON("/packages/filter", &as)
	assert.Equal(t, []resolver.PackageFilter{{PackageName: "Nav", PackageVersion: "1.0.0", FilterName: "All"}, {PackageName: "Nav", PackageVersion: "1.0.0", FilterName: "eu"}, {PackageName: "radio", PackageVersion: "2.0.0", FilterName: "eu"}}, as)
	var list []resolver.Filter
	fs.getJSON("/packages/nav/1.0.0/filter", &list)
	assert.Equal(t, []string{"All", "eu"}, filterNames(list))
	fs.must(http.StatusNotFound, "package_not_found", "GET", "/packages/nav/3.0.0/filter", nil)
	var pkgs []resolver.Package
	fs.getJSON("/filters/EU/package", &pkgs)
	require.Len(t, pkgs, 2)
	assert.Equal(t, p("Nav", "1.0.0"), pkgs[0].ID)
	assert.Equal(t, p("radio", "2.0.0"), pkgs[1].ID)
	fs.must(http.StatusNotFound, "filter_not_found", "GET", "/filters/nope/package", nil)

	fs.ok("DELETE", "/packages/nav/1.0.0/filter/all", nil)
	fs.must(http.StatusNotFound, "filter_not_found", "DELETE", "/packages/nav/1.0.0/filter/all", nil)
	fs.must(http.StatusNotFound, "filter_not_found", "DELETE", "/packages/nav/1.0.0/filter/nope", nil)
	// Deleting a linked filter needs force (it would widen the package's audience) and then drops its
	// links; deleting a package drops its links.
	fs.ok("DELETE", "/packages/radio/2.0.0", nil)
	fs.restart()
	fs.getJSON("/filters/eu/package", &pkgs)
	require.Len(t, pkgs, 1)
	assert.Equal(t, p("Nav", "1.0.0"), pkgs[0].ID)
	inUse := fs.must(http.StatusConflict, "filter_in_use", "DELETE", "/filters/eu", nil)
	assert.Equal(t, "Filter eu is associated with package Nav-1.0.0; deleting it would widen their audience (delete it with ?force=true to remove the associations too)", inUse.description())
	fs.getJSON("/filters/eu/package", &pkgs)
	require.Len(t, pkgs, 1, "a refused delete changes nothing")
	fs.must(http.StatusBadRequest, "invalid_entity", "DELETE", "/filters/eu?force=yes", nil)
	fs.ok("DELETE", "/filters/eu?force=true", nil)
	fs.must(http.StatusNotFound, "filter_not_found", "GET", "/filters/eu", nil)
	fs.getJSON("/packages/filter", &as)
	assert.Empty(t, as)
	fs.getJSON("/packages/nav/1.0.0/filter", &list)
	assert.Empty(t, list)
}

func TestDependencies(t *testing.T) {
	fs := newFleetServer(t)
	for _, name := range []string{"a", "b1", "b2", "c1", "d1", "d2"} {
		fs.ok("PUT", "/packages/"+name+"/1.0.0", nil)
	}
	// The example of PACKAGE_GET_DEPENDENCIES: A1 needs B1 and B2, B2 needs C1, C1 needs D1 and D2.
	for _, e := range [][2]string{{"a", "b1"}, {"a", "b2"}, {"b2", "c1"}, {"c1", "d1"}, {"c1", "d2"}} {
		fs.ok("PUT", "/packages/"+e[0]+"/1.0.0/dependencies/"+e[1]+"/1.0.0", nil)
	}
	r := fs.must(http.StatusConflict, "duplicate_entry", "PUT", "/packages/A/1.0.0/dependencies/B1/1.0.0", nil)
	assert.Contains(t, r.description(), "already exists")
	r = fs.must(http.StatusConflict, "dependency_cycle", "PUT", "/packages/d2/1.0.0/dependencies/a/1.0.0", nil)
	assert.Contains(t, r.description(), "d2-1.0.0 -> a-1.0.0 -> b2-1.0.0 -> c1-1.0.0 -> d2-1.0.0")
	r = fs.must(http.StatusConflict, "dependency_cycle", "PUT", "/packages/a/1.0.0/dependencies/a/1.0.0", nil)
	assert.Contains(t, r.description(), "a-1.0.0 -> a-1.0.0")
	fs.must(http.StatusNotFound, "package_not_found", "PUT", "/packages/a/1.0.0/dependencies/zz/1.0.0", nil)
	fs.must(http.StatusNotFound, "package_not_found", "PUT", "/packages/zz/1.0.0/dependencies/a/1.0.0", nil)
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/packages/a/1.0.0/dependencies/b1/1.0", nil)
	fs.restart()

	type edge = resolver.DependencyEdge
	e := func(a, b string) edge { return edge{Dependent: p(a, "1.0.0"), Dependency: p(b, "1.0.0")} }
	var edges []edge
	fs.getJSON("/packages/a/1.0.0/dependencies", &edges)
	assert.Equal(t, []edge{e("a", "b1"), e("a", "b2")}, edges)
	fs.getJSON("/packages/a/1.0.0/dependencies?recursive=true", &edges)
	assert.Equal(t, []edge{e("a", "b1"), e("c1", "d1"), e("c1", "d2"), e("b2", "c1"), e("a", "b2")}, edges)
	fs.must(http.StatusNotFound, "package_not_found", "GET", "/packages/zz/1.0.0/dependencies", nil)
	fs.must(http.StatusBadRequest, "invalid_entity", "GET", "/packages/a/1.0.0/dependencies?recursive=yes", nil)

	// Ranges.
	fs.ok("PUT", "/packages/d1/1.5.0", nil)
	fs.ok("PUT", "/packages/d1/2.0.0", nil)
	fs.ok("PUT", "/packages/b1/1.0.0/dependencies/D1", map[string]string{"range": ">=1.2.0 <2.0.0"})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/packages/b1/1.0.0/dependencies/d1", map[string]string{"range": ">=1.2"})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/packages/b1/1.0.0/dependencies/d1", map[string]string{})
	fs.must(http.StatusNotFound, "package_not_found", "PUT", "/packages/zz/1.0.0/dependencies/d1", map[string]string{"range": ">=1.0.0"})
	fs.must(http.StatusNotFound, "package_not_found", "PUT", "/packages/b1/1.0.0/dependencies/zz", map[string]string{"range": ">=1.0.0"})
	r = fs.must(http.StatusConflict, "dependency_cycle", "PUT", "/packages/c1/1.0.0/dependencies/a", map[string]string{"range": ">=0.1.0"})
	assert.Contains(t, r.description(), "c1-1.0.0 -> a-1.0.0 -> b2-1.0.0 -> c1-1.0.0")
	fs.restart()
	fs.getJSON("/packages/b1/1.0.0/dependencies", &edges)
	assert.Equal(t, []edge{{Dependent: p("b1", "1.0.0"), Dependency: p("d1", "1.5.0"), Range: ">=1.2.0 <2.0.0"}}, edges)
	fs.ok("DELETE", "/packages/b1/1.0.0/dependencies/d1", nil)
	fs.must(http.StatusNotFound, "missing_dependency", "DELETE", "/packages/b1/1.0.0/dependencies/d1", nil)
	fs.must(http.StatusNotFound, "package_not_found", "DELETE", "/packages/zz/1.0.0/dependencies/d1", nil)

	fs.ok("DELETE", "/packages/c1/1.0.0/dependencies/d2/1.0.0", nil)
	r = fs.must(http.StatusNotFound, "missing_dependency", "DELETE", "/packages/c1/1.0.0/dependencies/d2/1.0.0", nil)
	assert.Contains(t, r.description(), "Dependency does not exist")
	fs.must(http.StatusNotFound, "package_not_found", "DELETE", "/packages/c1/1.0.0/dependencies/zz/1.0.0", nil)
	fs.must(http.StatusNotFound, "package_not_found", "DELETE", "/packages/zz/1.0.0/dependencies/d2/1.0.0", nil)

	// Deleting a package drops the dependencies on it and its own.
	fs.ok("DELETE", "/packages/c1/1.0.0", nil)
	fs.restart()
	fs.getJSON("/packages/a/1.0.0/dependencies?recursive=true", &edges)
	assert.Equal(t, []edge{e("a", "b1"), e("a", "b2")}, edges)
	fs.ok("PUT", "/packages/c1/1.0.0", nil)
	fs.getJSON("/packages/c1/1.0.0/dependencies", &edges)
	assert.Empty(t, edges)
}
