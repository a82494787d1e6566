package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/resolver"
	"sota/store"
)

type pid = resolver.PackageID

func p(name, version string) pid { return pid{Name: name, Version: version} }

func TestVehicleAddGetDeleteSurvivesRestart(t *testing.T) {
	fs := newFleetServer(t)

	// PUT is idempotent: 204 twice.
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA, nil)
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA, nil)
	// POST creates; a second POST is 409 "VIN already exists".
	var created map[string]any
	fs.ok("POST", "/vehicles", map[string]string{"vin": vinB}).decode(t, &created)
	assert.Equal(t, vinB, created["vin"])
	assert.Contains(t, created, "lastSeen")
	assert.Contains(t, created, "dataPlan")
	assert.Equal(t, map[string]any{}, created["attributes"])
	r := fs.must(http.StatusConflict, "duplicate_entry", "POST", "/vehicles", map[string]string{"vin": vinB})
	assert.Contains(t, r.description(), "VIN already exists")
	fs.must(http.StatusConflict, "duplicate_entry", "POST", "/vehicles", map[string]string{"vin": vinA})

	fs.restart()

	var v map[string]any
	fs.getJSON("/vehicles/"+vinA, &v)
	assert.Equal(t, vinA, v["vin"])
	assert.Nil(t, v["lastSeen"])
	assert.Nil(t, v["dataPlan"])
	var list []map[string]any
	r = fs.getJSON("/vehicles", &list)
	require.Len(t, list, 2)
	assert.Equal(t, vinA, list[0]["vin"])
	assert.Equal(t, vinB, list[1]["vin"])
	assert.Equal(t, "2", r.header.Get("X-Total-Count"))

	fs.ok("DELETE", "/vehicles/"+vinA, nil)
	fs.must(http.StatusNotFound, "missing_vehicle", "DELETE", "/vehicles/"+vinA, nil)
	fs.restart()
	fs.must(http.StatusNotFound, "missing_vehicle", "GET", "/vehicles/"+vinA, nil)
	fs.getJSON("/vehicles", &list)
	require.Len(t, list, 1)
	assert.Equal(t, vinB, list[0]["vin"])
}

func TestVehicleInputValidation(t *testing.T) {
	fs := newFleetServer(t)
	for _, vin := range []string{"SHORT", "SAJNX5745SC00000I", "SAJNX5745SC00000O", "SAJNX5745SC00000Q", "sajnx5745sc000001", "SAJNX5745SC0000011", "SAJNX5745SC00000-"} {
		t.Run(vin, func(t *testing.T) {
			fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vin, nil)
			fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/vehicles", map[string]string{"vin": vin})
		})
	}
	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/vehicles", "{not json")
	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/vehicles", map[string]int{"vin": 3})
	var list []any
	fs.getJSON("/vehicles", &list)
	assert.Empty(t, list, "bad input changes nothing")
	fs.must(http.StatusNotFound, "missing_vehicle", "GET", "/vehicles/"+vinA, nil)
}

func TestVehicleSearch(t *testing.T) {
	fs := newFleetServer(t)
	for _, vin := range []string{vinA, vinB, vinC} {
		fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vin, nil)
	}
	fs.ok("PUT", "/packages/Nav/1.0.0", map[string]string{"description": "navigation"})
	fs.ok("PUT", "/packages/nav/2.0.0", nil)
	fs.ok("PUT", "/components/ECU1234", map[string]string{"description": "engine"})
	fs.ok("PUT", "/vehicles/"+vinA+"/package/nav/1.0.0", nil)
	fs.ok("PUT", "/vehicles/"+vinC+"/package/NAV/2.0.0", nil)
	fs.ok("PUT", "/vehicles/"+vinC+"/component/ecu1234", nil)
	fs.restart()

	vins := func(query string) []string {
		var list []map[string]any
		fs.getJSON("/vehicles?"+query, &list)
		out := []string{}
		for _, v := range list {
			out = append(out, v["vin"].(string))
		}
		return out
	}
	// Regex: unanchored and case-sensitive.
	assert.Equal(t, []string{vinA, vinB}, vins("regex=5745"))
	assert.Equal(t, []string{vinC}, vins("regex=^WDD"))
	assert.Empty(t, vins("regex=wdd"))
	assert.Equal(t, []string{vinA, vinC}, vins("packageName=nav"))
	assert.Equal(t, []string{vinA}, vins("packageName=NAV&packageVersion=1.0.0"))
	assert.Equal(t, []string{vinC}, vins("component=ECU1234"))
	assert.Equal(t, []string{vinC}, vins("component=ecu1234&regex=WDD"))
	assert.Empty(t, vins("component=ecu1234&regex=SAJ"))
	// Paging.
	r := fs.ok("GET", "/vehicles?limit=1&offset=1", nil)
	var page []map[string]any
	r.decode(t, &page)
	require.Len(t, page, 1)
	assert.Equal(t, vinB, page[0]["vin"])
	assert.Equal(t, "3", r.header.Get("X-Total-Count"))

	// expand adds packages and components.
	var exp []map[string]any
	fs.getJSON("/vehicles?regex=WDD&expand=true", &exp)
	require.Len(t, exp, 1)
	assert.Equal(t, []any{map[string]any{"name": "nav", "version": "2.0.0"}}, exp[0]["packages"])
	assert.Equal(t, []any{"ECU1234"}, exp[0]["components"])
	var plain []map[string]any
	fs.getJSON("/vehicles?regex=WDD", &plain)
	assert.NotContains(t, plain[0], "packages")
	fs.getJSON("/vehicles?regex=5745SC000002&expand=true", &exp)
	assert.Equal(t, []any{}, exp[0]["packages"])

	for _, q := range []string{"regex=(", "regex=", "packageName=", "component=", "packageVersion=1.0.0", "packageName=nav&packageVersion=1.0", "expand=maybe", "limit=10001", "limit=-1", "offset=x"} {
		fs.must(http.StatusBadRequest, "invalid_entity", "GET", "/vehicles?"+q, nil)
	}
}

func TestInstalledPackages(t *testing.T) {
	fs := newFleetServer(t)
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA, nil)
	fs.ok("PUT", "/packages/Nav/1.0.0", nil)
	fs.ok("PUT", "/packages/radio/2.1.0", nil)

	fs.must(http.StatusNotFound, "missing_vehicle", "PUT", "/vehicles/"+vinB+"/package/nav/1.0.0", nil)
	fs.must(http.StatusNotFound, "package_not_found", "PUT", "/vehicles/"+vinA+"/package/nav/9.0.0", nil)
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinA+"/package/nav/1.0", nil)
	fs.ok("PUT", "/vehicles/"+vinA+"/package/nav/1.0.0", nil)
	fs.ok("PUT", "/vehicles/"+vinA+"/package/NAV/1.0.0", nil) // idempotent, case-insensitive
	fs.ok("PUT", "/vehicles/"+vinA+"/package/radio/2.1.0", nil)
	fs.restart()

	var ids []pid
	fs.getJSON("/vehicles/"+vinA+"/package", &ids)
	assert.Equal(t, []pid{p("Nav", "1.0.0"), p("radio", "2.1.0")}, ids, "registered case, sorted, once")
	var vins []string
	fs.getJSON("/packages/nav/1.0.0/vehicles", &vins)
	assert.Equal(t, []string{vinA}, vins)
	fs.must(http.StatusNotFound, "package_not_found", "GET", "/packages/nav/3.0.0/vehicles", nil)
	fs.must(http.StatusNotFound, "missing_vehicle", "GET", "/vehicles/"+vinB+"/package", nil)

	fs.ok("DELETE", "/vehicles/"+vinA+"/package/radio/2.1.0", nil)
	r := fs.must(http.StatusConflict, "not_installed", "DELETE", "/vehicles/"+vinA+"/package/radio/2.1.0", nil)
	assert.Contains(t, r.description(), "Package is not installed on VIN")
	fs.must(http.StatusNotFound, "package_not_found", "DELETE", "/vehicles/"+vinA+"/package/radio/9.0.0", nil)
	fs.must(http.StatusNotFound, "missing_vehicle", "DELETE", "/vehicles/"+vinB+"/package/radio/2.1.0", nil)

	// Whole-set replace keeps unknown packages as foreign.
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA+"/packages", map[string]any{"packages": []pid{p("radio", "2.1.0"), p("maps", "5.0.0")}})
	fs.must(http.StatusNotFound, "missing_vehicle", "PUT", "/vehicles/"+vinB+"/packages", map[string]any{"packages": []pid{}})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinA+"/packages", map[string]any{"packages": []pid{p("maps", "5")}})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinA+"/packages", map[string]any{})
	fs.restart()
	fs.getJSON("/vehicles/"+vinA+"/package", &ids)
	assert.Equal(t, []pid{p("maps", "5.0.0"), p("radio", "2.1.0")}, ids)
	fs.getJSON("/packages/nav/1.0.0/vehicles", &vins)
	assert.Empty(t, vins)

	// Registering the foreign package later makes it known, in its registered case.
	fs.ok("POST", "/packages", map[string]any{"id": p("Maps", "5.0.0")})
	fs.getJSON("/packages/maps/5.0.0/vehicles", &vins)
	assert.Equal(t, []string{vinA}, vins)
	fs.getJSON("/vehicles/"+vinA+"/package", &ids)
	assert.Equal(t, []pid{p("Maps", "5.0.0"), p("radio", "2.1.0")}, ids)
}

func TestVehicleComponentsAndAttributes(t *testing.T) {
	fs := newFleetServer(t)
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA, nil)
	fs.ok("POST", "/components", map[string]string{"partNumber": "ECU1234", "description": "engine"})
	fs.must(http.StatusNotFound, "missing_component", "PUT", "/vehicles/"+vinA+"/component/ECU9", nil)
	fs.must(http.StatusNotFound, "missing_vehicle", "PUT", "/vehicles/"+vinB+"/component/ECU1234", nil)
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinA+"/component/ECU-1", nil)
	fs.ok("PUT", "/vehicles/"+vinA+"/component/ecu1234", nil)
	fs.must(http.StatusConflict, "duplicate_entry", "PUT", "/vehicles/"+vinA+"/component/ECU1234", nil)

	fs.ok("PUT", "/vehicles/"+vinA+"/attributes", map[string]any{"model": "XJ", "year": 2016, "mass.kg": 1650.5})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinA+"/attributes", map[string]any{"ok": true})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinA+"/attributes", map[string]any{"bad key": 1})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinA+"/attributes", `[1]`)
	fs.must(http.StatusNotFound, "missing_vehicle", "PUT", "/vehicles/"+vinB+"/attributes", map[string]any{"a": 1})
	fs.must(http.StatusNotFound, "missing_vehicle", "GET", "/vehicles/"+vinB+"/attributes", nil)
	fs.must(http.StatusBadRequest, "invalid_entity", "GET", "/vehicles/NOPE/attributes", nil)
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/NOPE/attributes", map[string]any{"a": 1})
	fs.restart()

	var parts []string
	fs.getJSON("/vehicles/"+vinA+"/component", &parts)
	assert.Equal(t, []string{"ECU1234"}, parts)
	fs.must(http.StatusNotFound, "missing_vehicle", "GET", "/vehicles/"+vinB+"/component", nil)
	var attrs map[string]any
	fs.getJSON("/vehicles/"+vinA+"/attributes", &attrs)
	assert.Equal(t, map[string]any{"model": "XJ", "year": 2016.0, "mass.kg": 1650.5}, attrs)
	var v map[string]any
	fs.getJSON("/vehicles/"+vinA, &v)
	assert.Equal(t, attrs, v["attributes"])

	var vins []string
	fs.getJSON("/components/ECU1234/vehicles", &vins)
	assert.Equal(t, []string{vinA}, vins)
	r := fs.must(http.StatusConflict, "component_is_installed", "DELETE", "/components/ECU1234", nil)
	assert.Contains(t, r.description(), vinA)

	fs.ok("DELETE", "/vehicles/"+vinA+"/component/ECU1234", nil)
	fs.must(http.StatusNotFound, "missing_component", "DELETE", "/vehicles/"+vinA+"/component/ECU1234", nil)
	fs.must(http.StatusNotFound, "missing_component", "DELETE", "/vehicles/"+vinA+"/component/NOPE", nil)
	fs.must(http.StatusNotFound, "missing_vehicle", "DELETE", "/vehicles/"+vinB+"/component/ECU1234", nil)
	fs.ok("DELETE", "/components/ECU1234", nil)
	fs.must(http.StatusNotFound, "missing_component", "DELETE", "/components/ECU1234", nil)
	fs.must(http.StatusNotFound, "missing_component", "GET", "/components/ECU1234/vehicles", nil)
}

func TestVehicleDeleteCascades(t *testing.T) {
	fs := newFleetServer(t)
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA, nil)
	fs.ok("PUT", "/packages/nav/1.0.0", nil)
	fs.ok("PUT", "/components/ECU1", nil)
	fs.ok("PUT", "/vehicles/"+vinA+"/package/nav/1.0.0", nil)
	fs.ok("PUT", "/vehicles/"+vinA+"/component/ECU1", nil)
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA+"/packages", map[string]any{"packages": []pid{p("nav", "1.0.0"), p("foreign", "1.0.0")}})
	var deleted []string
	fs.rs.AddHooks(resolver.Hooks{VehicleDeleted: store.NewPart(func(storeTxn) resolver.VehicleHook {
		return func(_ *resolver.Tx, vin string) error {
			deleted = append(deleted, vin)
			return nil
		}
	})})
	fs.ok("DELETE", "/vehicles/"+vinA, nil)
	assert.Equal(t, []string{vinA}, deleted, "the engine's hook ran")
	fs.restart()
	var vins []string
	fs.getJSON("/packages/nav/1.0.0/vehicles", &vins)
	assert.Empty(t, vins)
	fs.getJSON("/components/ECU1/vehicles", &vins)
	assert.Empty(t, vins)
	fs.ok("DELETE", "/components/ECU1", nil) // no longer installed anywhere
	// Re-adding the VIN starts from nothing.
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA, nil)
	var ids []pid
	fs.getJSON("/vehicles/"+vinA+"/package", &ids)
	assert.Empty(t, ids)
	// Registering the once-foreign package does not resurrect the deleted vehicle's install.
	fs.ok("PUT", "/packages/foreign/1.0.0", nil)
	fs.getJSON("/packages/foreign/1.0.0/vehicles", &vins)
	assert.Empty(t, vins)
}

func TestPackages(t *testing.T) {
	fs := newFleetServer(t)
	var pkg map[string]any
	fs.ok("PUT", "/packages/Nav/1.0.0", map[string]string{"description": "navigation", "vendor": "ACME"}).decode(t, &pkg)
	assert.Equal(t, map[string]any{"id": map[string]any{"name": "Nav", "version": "1.0.0"}, "description": "navigation", "vendor": "ACME", "size": 0.0, "checkSum": "", "uri": ""}, pkg)
	fs.ok("PUT", "/packages/nav/1.0.0", map[string]string{"description": "nav 1", "vendor": "ACME"}) // upsert keeps the case
	fs.ok("POST", "/packages", map[string]any{"id": p("nav", "1.10.0"), "description": "ten"})
	fs.ok("POST", "/packages", map[string]any{"id": p("nav", "1.2.0-rc.1")})
	fs.ok("POST", "/packages", map[string]any{"id": p("audio", "3.0.0")})
	r := fs.must(http.StatusConflict, "duplicate_entry", "POST", "/packages", map[string]any{"id": p("NAV", "1.0.0")})
	assert.Contains(t, r.description(), "Package already exists")
	for _, body := range []any{map[string]any{"id": p("nav", "1.0")}, map[string]any{"id": p("na v", "1.0.0")}, map[string]any{"id": p("nav", "v1.0.0")}, map[string]any{}, "{"} {
		fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/packages", body)
	}
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/packages/nav/1.0", nil)
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/packages/n@v/1.0.0", nil)
	fs.restart()

	fs.getJSON("/packages/NAV/1.0.0", &pkg)
	assert.Equal(t, "Nav", pkg["id"].(map[string]any)["name"])
	assert.Equal(t, "nav 1", pkg["description"])
	r = fs.must(http.StatusNotFound, "package_not_found", "GET", "/packages/nav/9.9.9", nil)
	assert.Contains(t, r.description(), "Package ID does not exist")

	var list []resolver.Package
	r = fs.getJSON("/packages", &list)
	var ids []pid
	for _, p := range list {
		ids = append(ids, p.ID)
	}
	assert.Equal(t, []pid{p("audio", "3.0.0"), p("Nav", "1.0.0"), p("nav", "1.2.0-rc.1"), p("nav", "1.10.0")}, ids, "by name, then version precedence")
	assert.Equal(t, "4", r.header.Get("X-Total-Count"))
	fs.getJSON("/packages?regex=^1\\.1", &list)
	require.Len(t, list, 1)
	assert.Equal(t, "1.10.0", list[0].ID.Version)
	fs.getJSON("/packages?regex=nav", &list)
	assert.Len(t, list, 2, "case-sensitive")
	fs.must(http.StatusBadRequest, "invalid_entity", "GET", "/packages?regex=[", nil)

	fs.ok("DELETE", "/packages/nav/1.0.0", nil)
	fs.must(http.StatusNotFound, "package_not_found", "DELETE", "/packages/nav/1.0.0", nil)
	fs.restart()
	fs.must(http.StatusNotFound, "package_not_found", "GET", "/packages/nav/1.0.0", nil)
}

func TestPackageDeleteRefusedByHook(t *testing.T) {
	fs := newFleetServer(t)
	fs.ok("PUT", "/packages/nav/1.0.0", nil)
	fs.rs.AddHooks(resolver.Hooks{PackageDeleting: store.NewPart(func(storeTxn) resolver.PackageHook {
		return func(_ *resolver.Tx, id resolver.PackageID) error {
			return errsConflict("package_in_use", "Package %s is used by a queued update", id)
		}
	})})
	fs.must(http.StatusConflict, "package_in_use", "DELETE", "/packages/nav/1.0.0", nil)
	fs.ok("GET", "/packages/nav/1.0.0", nil)
}

func TestComponents(t *testing.T) {
	fs := newFleetServer(t)
	fs.ok("PUT", "/components/ECU1", map[string]string{"description": "one"})
	fs.ok("PUT", "/components/ecu1", map[string]string{"description": "uno"})
	fs.ok("POST", "/components", map[string]string{"partNumber": "Abs2"})
	r := fs.must(http.StatusConflict, "duplicate_entry", "POST", "/components", map[string]string{"partNumber": "abs2"})
	assert.Contains(t, r.description(), "Component already exists")
	fs.must(http.StatusBadRequest, "invalid_entity", "POST", "/components", map[string]string{"partNumber": ""})
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/components/ECU_1", nil)
	fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/components/A234567890123456789012345678901", nil)
	fs.restart()
	var list []resolver.Component
	r = fs.getJSON("/components", &list)
	assert.Equal(t, []resolver.Component{{PartNumber: "Abs2", Description: ""}, {PartNumber: "ECU1", Description: "uno"}}, list)
	assert.Equal(t, "2", r.header.Get("X-Total-Count"))
	fs.getJSON("/components?regex=^E", &list)
	assert.Len(t, list, 1)
	fs.getJSON("/components?regex=^e", &list)
	assert.Empty(t, list)
	fs.must(http.StatusBadRequest, "invalid_entity", "GET", "/components?regex=(", nil)
}

// PUT /vehicles/:vin with a body applies it (attributes, on a new or an existing vehicle, surviving a
// restart) or refuses it with 400 and changes nothing; it never ignores a body silently.
func TestPutVehicleBodyIsAppliedOrRefused(t *testing.T) {
	fs := newFleetServer(t)
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA, `{"attributes": {"model": "Civic", "year": 2024}}`)
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinB, `{"vin": "`+vinB+`"}`)
	fs.restart()
	var v map[string]any
	fs.getJSON("/vehicles/"+vinA, &v)
	assert.Equal(t, map[string]any{"model": "Civic", "year": float64(2024)}, v["attributes"])
	fs.getJSON("/vehicles/"+vinB, &v)
	assert.Equal(t, map[string]any{}, v["attributes"])

	// On an existing vehicle the attributes are replaced; its installed packages stay.
	fs.ok("POST", "/packages", map[string]any{"id": p("nav", "1.0.0")})
	fs.ok("PUT", "/vehicles/"+vinA+"/package/nav/1.0.0", nil)
	fs.must(http.StatusNoContent, "", "PUT", "/vehicles/"+vinA, `{"attributes": {"model": "Accord"}}`)
	fs.getJSON("/vehicles/"+vinA, &v)
	assert.Equal(t, map[string]any{"model": "Accord"}, v["attributes"])
	assert.Len(t, v["packages"], 1)
	var found []map[string]any
	fs.getJSON("/vehicles?regex="+vinA, &found)
	require.Len(t, found, 1)

	for name, body := range map[string]string{
		"unknown field":        `{"attributs": {"model": "Jazz"}}`,
		"other vin":            `{"vin": "` + vinB + `", "attributes": {"model": "Jazz"}}`,
		"null attributes":      `{"attributes": null}`,
		"attributes array":     `{"attributes": ["model"]}`,
		"nested attribute":     `{"attributes": {"model": {"name": "Jazz"}}}`,
		"not an object":        `"Jazz"`,
		"two objects":          `{"attributes": {"model": "Jazz"}} {}`,
		"broken JSON":          `{"attributes": {"model": "Jazz"`,
		"dataPlan (elsewhere)": `{"dataPlan": "basic"}`,
	} {
		t.Run(name, func(t *testing.T) {
			fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinA, body)
			fs.getJSON("/vehicles/"+vinA, &v)
			assert.Equal(t, map[string]any{"model": "Accord"}, v["attributes"], "nothing changed")
			fs.must(http.StatusBadRequest, "invalid_entity", "PUT", "/vehicles/"+vinC, body)
			fs.must(http.StatusNotFound, "missing_vehicle", "GET", "/vehicles/"+vinC, nil)
		})
	}
}
