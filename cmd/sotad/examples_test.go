package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/examples"
	"sota/examples/load"
	"sota/internal/storetest"
)

func (r *running) getJSON(t *testing.T, path string, v any) http.Header {
	t.Helper()
	resp, err := r.client.Get(r.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
	require.NoError(t, json.Unmarshal(b, v))
	return resp.Header
}

// --examples loads the example fleet and filters into an empty store (what `make run` shows), and
// leaves a store with data alone on the next start.
func TestExamplesLoadIntoAnEmptyStore(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data, "--auth=none", "--examples")
	var vehicles []map[string]any
	h := srv.getJSON(t, "/api/v1/vehicles?regex=^WDD&limit=5", &vehicles)
	assert.Len(t, vehicles, 5)
	for _, v := range vehicles {
		assert.True(t, strings.HasPrefix(v["vin"].(string), "WDD"))
	}
	assert.NotEqual(t, "0", h.Get("X-Total-Count"))
	h = srv.getJSON(t, "/api/v1/vehicles?limit=1", &vehicles)
	assert.Equal(t, strconv.Itoa(load.DefaultVehicles), h.Get("X-Total-Count"))
	var filters []map[string]any
	srv.getJSON(t, "/api/v1/filters?limit=100", &filters)
	assert.Len(t, filters, len(examples.Filters))
	var resolved []json.RawMessage
	srv.getJSON(t, "/api/v1/resolve/nav-engine/3.2.0", &resolved)
	assert.NotEmpty(t, resolved)
	assert.Contains(t, srv.stderr.String(), "loaded the example fleet")
}

func TestExamplesLeaveAStoreWithDataAlone(t *testing.T) {
	data := t.TempDir()
	storetest.Spec(t, data)                        // one store for the subtests
	t.Run("without examples", func(t *testing.T) { // the server stops at the end of the subtest
		srv := startServer(t, data, "--auth=none")
		req, _ := http.NewRequest("PUT", srv.base+"/api/v1/vehicles/SAJNX5745SC000001", nil)
		resp, err := srv.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode)
	})
	srv := startServer(t, data, "--auth=none", "--examples")
	var vehicles []map[string]any
	h := srv.getJSON(t, "/api/v1/vehicles", &vehicles)
	assert.Equal(t, "1", h.Get("X-Total-Count"))
	assert.Contains(t, srv.stderr.String(), "the examples are not loaded")
}

// Every curl call of the README's External Resolver section works on the server `make run` starts
// (the example fleet): 200, or the status its comment names.
func TestREADMEResolverCallsWorkOnTheExampleFleet(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n## External Resolver")
	require.True(t, ok, "README has no External Resolver section")
	section, _, _ = strings.Cut(section, "\n## ")
	srv := startServer(t, t.TempDir(), "--auth=none", "--examples")
	status := regexp.MustCompile(`#.*\b([1-5][0-9][0-9])\b`)
	n := 0
	for _, line := range strings.Split(section, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		n++
		method, body := "GET", ""
		if strings.Contains(line, "-XPOST") {
			method = "POST"
		}
		if _, rest, ok := strings.Cut(line, "-d '"); ok {
			body, _, _ = strings.Cut(rest, "'")
		}
		var url string
		for _, f := range strings.Fields(line) {
			if f = strings.Trim(f, `"`); strings.HasPrefix(f, "$B") {
				url = srv.base + "/api/v1" + strings.TrimPrefix(f, "$B")
				break
			}
		}
		require.NotEmpty(t, url, line)
		want := http.StatusOK
		if m := status.FindStringSubmatch(line); m != nil {
			want, _ = strconv.Atoi(m[1])
		}
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := srv.client.Do(req)
		require.NoError(t, err)
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, "%s\n%s", line, answer)
		assert.NotEqual(t, "[]", strings.TrimSpace(string(answer)), "%s: an empty answer shows nothing", line)
	}
	assert.GreaterOrEqual(t, n, 8, "the README's curl calls were not found")
}
