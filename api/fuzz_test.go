package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/resolver"
)

// bodyRoute is one POST/PUT route with its path parameters filled with entities that exist.
type bodyRoute struct {
	method, pattern, path string
	device                bool // needs the device token
}

// fuzzWorld is the real handler (every domain service over one Badger store) with a vehicle, packages,
// a filter, a component, a data plan, a queued update and a device token, so that fuzzed bodies reach
// the domain and not only the 404 of a missing entity.
type fuzzWorld struct {
	h      *gin.Engine
	routes []bodyRoute
	token  string
}

func newFuzzWorld(tb testing.TB) *fuzzWorld {
	deps := fullDeps(tb)
	deps.Filters = deps.Resolver
	h, _ := newServer(tb, Config{AuthNone: true, ChunkSize: 1024}, deps.Deps)
	w := &fuzzWorld{h: h}
	do := func(method, path string, body any) []byte {
		tb.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		rec := w.serve(method, path, b, "")
		require.Lessf(tb, rec.Code, 300, "%s %s: %s", method, path, rec.Body)
		return rec.Body.Bytes()
	}
	do("PUT", "/api/v1/vehicles/"+vinA, nil)
	do("PUT", "/api/v1/packages/nav/1.0.0", map[string]string{"description": "n"})
	do("PUT", "/api/v1/packages/radio/1.0.0", map[string]string{"description": "r"})
	for _, n := range []string{"nav", "radio"} {
		_, err := deps.Engine.UploadBinary(resolver.PackageID{Name: n, Version: "1.0.0"}, strings.NewReader("binary of "+n), engine.Upload{})
		require.NoError(tb, err)
	}
	do("PUT", "/api/v1/components/ECU1", map[string]string{"description": "e"})
	do("POST", "/api/v1/filters", map[string]string{"name": "F1", "expression": "TRUE"})
	do("PUT", "/api/v1/packages/nav/1.0.0/filter/F1", nil)
	do("POST", "/api/v1/data_plans", map[string]string{"id": "plan1"})
	var req struct{ ID string }
	require.NoError(tb, json.Unmarshal(do("POST", "/api/v1/update_requests", map[string]any{"packageId": map[string]string{"name": "nav", "version": "1.0.0"}}), &req))
	var camp struct{ ID string }
	require.NoError(tb, json.Unmarshal(do("POST", "/api/v1/campaigns", map[string]any{"name": "c", "packageId": map[string]string{"name": "radio", "version": "1.0.0"}, "priority": 1, "startTime": "2026-01-01T00:00:00Z", "endTime": "2036-01-01T00:00:00Z"}), &camp))
	var tok struct{ Token string }
	require.NoError(tb, json.Unmarshal(do("POST", "/api/v1/vehicles/"+vinA+"/token", nil), &tok))
	w.token = tok.Token
	var queue []struct{ UpdateID string }
	require.NoError(tb, json.Unmarshal(do("GET", "/api/v1/vehicles/"+vinA+"/queue", nil), &queue))
	require.NotEmpty(tb, queue)

	params := map[string]string{
		"vin": vinA, "name": "nav", "version": "1.0.0", "depName": "radio", "depVersion": "1.0.0",
		"part": "ECU1", "filter": "F1", "env": "production", "updateId": queue[0].UpdateID, "index": "1",
		"username": "admin", "tenant": "default", "actionId": "1", "moduleId": "nav@1.0.0", "filename": "nav.bin",
	}
	ids := map[string]string{"/data_plans/": "plan1", "/update_requests/": req.ID, "/campaigns/": camp.ID, "/tokens/": "x"}
	for _, r := range h.Routes() {
		if r.Method != "POST" && r.Method != "PUT" {
			continue
		}
		var segs []string
		for _, seg := range strings.Split(r.Path, "/") {
			if name, ok := strings.CutPrefix(seg, ":"); ok {
				v, known := params[name]
				if name == "id" {
					for prefix, id := range ids {
						if strings.Contains(r.Path, prefix) {
							v, known = id, true
						}
					}
				}
				require.Truef(tb, known, "no value for %s in %s", seg, r.Path)
				seg = v
			}
			segs = append(segs, seg)
		}
		w.routes = append(w.routes, bodyRoute{method: r.Method, pattern: r.Path, path: strings.Join(segs, "/"), device: isDeviceRoute(r.Path)})
	}
	sort.Slice(w.routes, func(i, j int) bool {
		return w.routes[i].pattern+w.routes[i].method < w.routes[j].pattern+w.routes[j].method
	})
	return w
}

func (w *fuzzWorld) serve(method, path string, body []byte, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", deviceAuth(path, token))
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	return rec
}

// isDeviceRoute tells whether a route takes a device token: the device API and hawkBit DDI.
func isDeviceRoute(pattern string) bool {
	return strings.Contains(pattern, "/vehicle_updates/") || strings.Contains(pattern, "/controller/v1/")
}

// deviceAuth is the Authorization header of a device call: TargetToken for DDI, else Bearer.
func deviceAuth(path, token string) string {
	if strings.Contains(path, "/controller/v1/") {
		return "TargetToken " + token
	}
	return "Bearer " + token
}

// FuzzBodies sends arbitrary bodies to every POST and PUT route of the real handler: none may answer
// 5xx or panic, and an /api/v1 error answer is {"code","description"} (the SDL policy server's
// documented {"error"} aside).
func FuzzBodies(f *testing.F) {
	w := newFuzzWorld(f)
	seeds := []string{``, `{}`, `null`, `[]`, `"x"`, `{"vin":"` + vinA + `"}`, `{"name":"F2","expression":"TRUE"}`,
		`{"expression":"vin_matches \"^SAJ\" AND has_package \"nav\" >= \"1.0.0\"","vin":"` + vinA + `"}`,
		`{"id":{"name":"nav","version":"2.0.0"},"description":"d"}`, `{"packages":[{"name":"nav","version":"1.0.0"}]}`,
		`{"packageId":{"name":"nav","version":"1.0.0"},"priority":-1,"periodOfValidity":"2020-01-01T00:00:00Z/2019-01-01T00:00:00Z"}`,
		`{"package":{"name":"nav","version":"1.0.0"},"sample":-5}`, `{"range":">=1.0.0 <2.0.0"}`, `{"chunks":[0,1,99999999999]}`,
		`{"operation_results":[{"id":"x","result_code":7,"result_text":"t"}]}`, `{"start":"2026-01-01T00:00:00Z","poolBytes":-1}`,
		`{"bytes":9223372036854775807}`, `{"policy_table":{"module_config":{}}}`, `{"a":1.5e308,"b":"x"}`,
		`{"vin":"` + vinA + `","packages":[{"name":"nav","version":"1.0.0"}],"components":["ECU1"]}` + "\n{",
		`{"name":"c2","packageId":{"name":"nav","version":"1.0.0"},"startTime":"x"}`, `{"username":"u","password":"p"}`,
		`[{"name":"nav","version":"1.0.0"}]`, `{"chunks":1,"sha256":"00"}`, `{"k":{"nested":[1,2]}}`}
	for i := range w.routes {
		f.Add(uint8(i), []byte(`{}`))
	}
	for i, s := range seeds {
		f.Add(uint8(i*7%len(w.routes)), []byte(s))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := w.routes[int(route)%len(w.routes)]
		token := ""
		if r.device {
			token = w.token
		}
		rec := w.serve(r.method, r.path, body, token)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (%s) with %q: %d %s", r.method, r.path, r.pattern, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && strings.HasPrefix(r.pattern, "/api/v1/") && !strings.HasSuffix(r.pattern, "/policy") {
			var e struct{ Code, Description string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Description == "" {
				t.Fatalf("%s %s with %q: %d without {code, description}: %s", r.method, r.pattern, body, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzPaths sends every route of the real handler, whatever its method, with an arbitrary value in
// each path parameter and an arbitrary query string: no 5xx, no panic, and /api/v1 errors are
// {"code","description"}.
func FuzzPaths(f *testing.F) {
	w := newFuzzWorld(f)
	var routes []bodyRoute
	for _, r := range w.h.Routes() {
		if strings.Contains(r.Path, ":") || strings.Contains(r.Path, "*") || r.Method == "GET" {
			routes = append(routes, bodyRoute{method: r.Method, pattern: r.Path, device: isDeviceRoute(r.Path)})
		}
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].pattern+routes[i].method < routes[j].pattern+routes[j].method })
	seeds := [][2]string{{vinA, ""}, {"nav", "limit=0"}, {"1.0.0", "limit=-1&offset=99999999999999999999"}, {"", "regex=("},
		{"..", "expand=maybe"}, {"%00", "packageName=&component=x"}, {"ÄÖ", "status=nope"}, {"a/b", "from=x&to=y"},
		{strings.Repeat("9", 40), "limit=10001"}, {"F1", "recursive=yes"}, {"production", "kind=nope"}, {"1", "regex=%ZZ"}}
	for i := range routes {
		s := seeds[i%len(seeds)]
		f.Add(uint8(i), s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, route uint8, param, query string) {
		r := routes[int(route)%len(routes)]
		var segs []string
		for _, seg := range strings.Split(r.pattern, "/") {
			if strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") {
				seg = param
			}
			segs = append(segs, seg)
		}
		req := httptest.NewRequest(r.method, "/", nil)
		req.URL.Path = strings.Join(segs, "/")
		req.URL.RawQuery = query
		if r.device {
			req.Header.Set("Authorization", deviceAuth(r.pattern, w.token))
		}
		rec := httptest.NewRecorder()
		w.h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (%s) ?%s: %d %s", r.method, req.URL.Path, r.pattern, query, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && strings.HasPrefix(req.URL.Path, "/api/v1/") && !strings.HasSuffix(r.pattern, "/policy") {
			var e struct{ Code, Description string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Description == "" {
				t.Fatalf("%s %s (%s) ?%s: %d without {code, description}: %s", r.method, req.URL.Path, r.pattern, query, rec.Code, rec.Body)
			}
		}
	})
}
