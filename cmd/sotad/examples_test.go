package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/examples"
	"sota/examples/load"
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
