package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/api"
	"sota/auth"
	"sota/examples"
	"sota/internal/storetest"
	"sota/resolver"
)

// importServer is the real server with authentication on, over the resolver on Badger, and an API
// token for the CLI.
func importServer(t *testing.T) (url, token string, rs *resolver.Service) {
	db, err := storetest.OpenDir(t, t.TempDir())
	require.NoError(t, err)
	rs, err = resolver.New(db)
	require.NoError(t, err)
	auth := auth.New(db)
	_, _, err = auth.Bootstrap("admin", "a-long-password")
	require.NoError(t, err)
	token, _, err = auth.CreateToken("admin", "cli")
	require.NoError(t, err)
	h, _, err := api.New(api.Config{}, api.Deps{Auth: auth, Resolver: rs, Filters: rs})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); db.Close() })
	return srv.URL, token, rs
}

func TestFleetImportStreamsAFileWithProgress(t *testing.T) {
	url, token, rs := importServer(t)
	file := filepath.Join(t.TempDir(), "fleet.jsonl")
	var buf bytes.Buffer
	require.NoError(t, examples.WriteJSONL(&buf, 7, 3000))
	require.NoError(t, os.WriteFile(file, buf.Bytes(), 0o600))
	defer func(d time.Duration) { progressInterval = d }(progressInterval)
	progressInterval = time.Millisecond

	var out, errb bytes.Buffer
	code := run([]string{"fleet", "import", "--server", url + "/", "--token", token, file}, nil, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	var res resolver.ImportResult
	require.NoError(t, json.Unmarshal(out.Bytes(), &res), out.String())
	assert.Equal(t, 3000, res.Vehicles)
	assert.Equal(t, 3000, res.Created)
	// The progress bar: bytes of the file's size, vehicles and rates, one line redrawn, ending in a newline.
	progress := errb.String()
	last := progress[strings.LastIndexByte(strings.TrimSuffix(progress, "\n"), '\r')+1:]
	assert.Contains(t, last, "(100%), 3000 vehicles sent in ")
	assert.Contains(t, last, "MiB/s")
	assert.Contains(t, last, "vehicles/s)")
	assert.True(t, strings.HasSuffix(progress, "\n"))
	_, total, err := rs.ListVehicles(resolver.VehicleQuery{}, resolver.Page{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 3000, total)
	first := examples.Fleet(7, 1)[0]
	parts, err := rs.VehicleComponents(first.VIN)
	require.NoError(t, err)
	assert.Len(t, parts, examples.ComponentsPerVehicle)
}

// Standard input, the server and token from the environment, --quiet; a bad line refuses the
// whole import with the server's error, and nothing is written.
func TestFleetImportFromStdinAndErrors(t *testing.T) {
	url, token, rs := importServer(t)
	t.Setenv("SOTA_SERVER", url)
	t.Setenv("SOTA_TOKEN", token)
	good := examples.Fleet(3, 2)
	line := func(v examples.Vehicle) string { b, _ := json.Marshal(v); return string(b) + "\n" }

	var out, errb bytes.Buffer
	code := run([]string{"fleet", "import", "--quiet", "-"}, strings.NewReader(line(good[0])+"\n"+line(good[1])), &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Empty(t, errb.String())
	assert.Contains(t, out.String(), `"vehicles": 2`)

	out.Reset()
	errb.Reset()
	code = run([]string{"fleet", "import", "-"}, strings.NewReader(line(examples.Fleet(4, 1)[0])+`{"vin":"NOPE"}`), &out, &errb)
	assert.Equal(t, 1, code)
	assert.Empty(t, out.String())
	assert.Contains(t, errb.String(), "400 Bad Request: invalid_entity")
	assert.Contains(t, errb.String(), `line 2: Invalid VIN "NOPE"`)
	assert.Contains(t, errb.String(), "2 vehicles sent")
	_, total, err := rs.ListVehicles(resolver.VehicleQuery{}, resolver.Page{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, total, "nothing of the refused import was written")

	// The token is what lets the CLI in.
	errb.Reset()
	code = run([]string{"fleet", "import", "--token", "", "--quiet", "-"}, strings.NewReader(line(good[0])), &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "401")

	errb.Reset()
	assert.Equal(t, 1, run([]string{"fleet", "import", filepath.Join(t.TempDir(), "missing.jsonl")}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "no such file")
	assert.Equal(t, 2, run([]string{"fleet", "import"}, nil, &out, &errb))
	assert.Equal(t, 2, run([]string{"fleet", "import", "a", "b"}, nil, &out, &errb))
}
