package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/api"
	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/resolver"
)

// adminServer is the real server (Badger store, resolver, engine, HTTP API with authentication on) on
// loopback, and an admin API token for the CLI.
type adminServer struct {
	t     *testing.T
	url   string
	token string
}

func newAdminServer(t *testing.T) *adminServer {
	t.Helper()
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, filepath.Join(dir, "db"))
	require.NoError(t, err)
	rs, err := resolver.New(db)
	require.NoError(t, err)
	eng, err := engine.New(db, rs, engine.Options{DataDir: dir})
	require.NoError(t, err)
	accounts := auth.New(db)
	_, _, err = accounts.Bootstrap("admin", "a-long-password")
	require.NoError(t, err)
	token, _, err := accounts.CreateToken("admin", "cli")
	require.NoError(t, err)
	h, _, err := api.New(api.Config{}, api.Deps{Auth: accounts, Resolver: rs, Filters: rs, Engine: eng})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); db.Close() })
	return &adminServer{t: t, url: srv.URL, token: token}
}

// api calls the admin API directly (to seed data) and requires a 2xx answer.
func (s *adminServer) api(method, path, body string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+"/api/v1"+path, strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	resp.Body.Close()
	require.Less(s.t, resp.StatusCode, 300, "%s %s", method, path)
}

// sota runs a command against the server and returns its exit code, stdout and stderr.
func (s *adminServer) sota(args ...string) (int, string, string) {
	s.t.Helper()
	var out, errb bytes.Buffer
	words := 2
	if args[0] == "device" {
		words = 1
	}
	full := append(append(append([]string{}, args[:words]...), "--server", s.url, "--token", s.token), args[words:]...)
	code := run(full, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// The release engineer's main job from a terminal: upload a package, see it, queue it on the fleet,
// follow the request, cancel it, look at the vehicles.
func TestCLIPackageRequestVehicleFlow(t *testing.T) {
	s := newAdminServer(t)
	vins := []string{"1HGCM82633A000001", "1HGCM82633A000002", "WDD00000000000003"}
	for _, v := range vins {
		s.api("PUT", "/vehicles/"+v, "")
	}
	s.api("POST", "/filters", `{"name":"hondas","expression":"vin_matches \"^1HG\""}`)

	bin := filepath.Join(t.TempDir(), "nav-2.0.0.bin")
	content := bytes.Repeat([]byte("navigation "), 1000)
	require.NoError(t, os.WriteFile(bin, content, 0o600))
	sum := sha256.Sum256(content)

	code, out, errs := s.sota("package", "upload", "--name", "nav", "--version", "2.0.0", "--description", "maps 2026", "--vendor", "ACME", bin)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "Uploaded nav 2.0.0: 10.7 KiB (11000 bytes), sha256 "+hex.EncodeToString(sum[:])+"\n", out)

	s.api("POST", "/packages", `{"id":{"name":"radio","version":"1.0.0"},"description":"metadata only"}`)
	code, out, errs = s.sota("package", "list")
	require.Equal(t, 0, code, errs)
	assert.Regexp(t, `(?m)^nav\s+2\.0\.0\s+10\.7 KiB\s+-\s+maps 2026$`, out)
	assert.Regexp(t, `(?m)^radio\s+1\.0\.0\s+none\s+-\s+metadata only$`, out)
	assert.Contains(t, out, "2 package(s)")

	code, out, _ = s.sota("package", "show", "radio", "1.0.0")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Binary:       none: this version cannot be delivered until one is uploaded")
	assert.Contains(t, out, "Filters:      none: the package cannot be queued")

	// Queueing needs a linked filter; the CLI passes the server's reason on.
	code, _, errs = s.sota("request", "create", "--name", "nav", "--version", "2.0.0")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "no_filters")

	s.api("PUT", "/packages/nav/2.0.0/filter/hondas", "")
	code, out, _ = s.sota("package", "show", "nav", "2.0.0")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Binary:       10.7 KiB, sha256 "+hex.EncodeToString(sum[:]))
	assert.Contains(t, out, "  hondas: vin_matches \"^1HG\"")
	assert.Contains(t, out, "Installed on: 0 vehicle(s)")

	code, out, errs = s.sota("request", "create", "--name", "nav", "--version", "2.0.0", "--priority", "5", "--valid-for", "72h", "--description", "new maps")
	require.Equal(t, 0, code, errs)
	m := regexp.MustCompile(`^Update request (\S+): 2 vehicle\(s\) queued, 0 skipped`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	id := m[1]

	code, out, _ = s.sota("request", "show", id)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Package:     nav 2.0.0")
	assert.Contains(t, out, "Priority:    5")
	assert.Regexp(t, `(?m)^Valid:\s+\d{4}-\d\d-\d\dT\S+Z/\d{4}-\d\d-\d\dT\S+Z$`, out)
	assert.Regexp(t, `(?m)^pending\s+2$`, out)
	assert.Regexp(t, `(?m)^in flight\s+0$`, out)

	code, out, _ = s.sota("request", "list")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^`+id+`\s+nav 2\.0\.0\s+5\s+2\s+`, out)

	code, out, _ = s.sota("vehicle", "list")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^`+vins[0]+`\s+never\s+1 pending, 0 in flight\s+0\s+0\s+-$`, out)
	assert.Regexp(t, `(?m)^`+vins[2]+`\s+never\s+-\s+`, out, "not selected by the filter")
	code, out, _ = s.sota("vehicle", "show", vins[0])
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Last seen:  never")
	assert.Regexp(t, `(?m)^\s+\S+\s+nav 2\.0\.0\s+pending\s+5\s+`, out)

	code, out, _ = s.sota("request", "cancel", id)
	require.Equal(t, 0, code)
	assert.Equal(t, "2 pending update(s) canceled\n", out)
	code, out, _ = s.sota("request", "show", id)
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^canceled\s+2$`, out)
	code, out, _ = s.sota("vehicle", "show", vins[0])
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Queue:      nothing pending")

	code, out, _ = s.sota("vehicle", "list", "--regex", "^1HG")
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^`+vins[0]+`\s+never\s+-\s+0\s+0\s+-$`, out, "canceled: nothing waits")
	assert.Contains(t, out, vins[0])
	assert.Contains(t, out, vins[1])
	assert.NotContains(t, out, vins[2])
	assert.Contains(t, out, "vehicles 1-2 of 2")
	code, out, _ = s.sota("vehicle", "list", "--limit", "1")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "vehicles 1-1 of 3 (--offset 1 for the next ones)")

	code, _, errs = s.sota("request", "show", "no-such-request")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "404 Not Found: missing_update_request")
}

// -o json prints the API's answer: a listing decodes as the JSON array the API documents.
func TestCLIListingsPrintJSON(t *testing.T) {
	s := newAdminServer(t)
	s.api("PUT", "/vehicles/1HGCM82633A000001", "")
	bin := filepath.Join(t.TempDir(), "nav.bin")
	require.NoError(t, os.WriteFile(bin, []byte("navigation"), 0o600))
	code, _, errs := s.sota("package", "upload", "--name", "nav", "--version", "1.0.0", bin)
	require.Equal(t, 0, code, errs)
	s.api("POST", "/filters", `{"name":"all","expression":"TRUE"}`)
	s.api("PUT", "/packages/nav/1.0.0/filter/all", "")
	s.api("POST", "/update_requests", `{"packageId":{"name":"nav","version":"1.0.0"}}`)
	for _, cmd := range [][]string{{"package", "list"}, {"request", "list"}, {"vehicle", "list"}, {"filter", "list"}} {
		code, out, errs := s.sota(append(cmd, "-o", "json")...)
		require.Equal(t, 0, code, "%v: %s", cmd, errs)
		var list []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &list), "%v: %s", cmd, out)
		assert.Len(t, list, 1, "%v", cmd)
	}
	// Every listing command, of any area, takes -o json and prints a JSON array.
	n := 0
	for _, c := range commands {
		if !strings.HasSuffix(c.name, " list") {
			continue
		}
		n++
		assert.Contains(t, c.usage, "-o json", "sota %s", c.name)
		code, out, errs := s.sota(append(strings.Fields(c.name), "-o", "json")...)
		require.Equal(t, 0, code, "sota %s -o json: %s", c.name, errs)
		var list []json.RawMessage
		assert.NoError(t, json.Unmarshal([]byte(out), &list), "sota %s -o json: %s", c.name, out)
	}
	assert.GreaterOrEqual(t, n, 4)

	code, _, errs = s.sota("package", "list", "-o", "yaml")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "-o must be table or json")

	// The saved filters as JSON are the --filters file of filter validate.
	code, out, _ := s.sota("filter", "list", "-o", "json")
	require.Equal(t, 0, code)
	file := filepath.Join(t.TempDir(), "filters.json")
	require.NoError(t, os.WriteFile(file, []byte(out), 0o600))
	var o, e bytes.Buffer
	assert.Equal(t, 0, run([]string{"filter", "validate", "--filters", file, "-"}, strings.NewReader(`filter "all" AND vin_matches "^1"`), &o, &e), e.String())
	assert.Equal(t, "OK\n", o.String())
	o.Reset()
	e.Reset()
	assert.Equal(t, 1, run([]string{"filter", "validate", "-"}, strings.NewReader(`filter "all"`), &o, &e))
	assert.Contains(t, e.String(), "This filter refers to saved filters, which live on the server: give them with --filters FILE")
}

func TestCLIErrorsSayWhatToDo(t *testing.T) {
	s := newAdminServer(t)
	var out, errb bytes.Buffer

	// A missing required flag is named.
	assert.Equal(t, 2, run([]string{"request", "create", "--version", "1.0.0", "--server", s.url}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "sota request create: --name is required")
	errb.Reset()
	assert.Equal(t, 2, run([]string{"package", "upload", "--name", "x", "--server", s.url}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "sota package upload: --version is required")
	errb.Reset()
	assert.Equal(t, 2, run([]string{"package", "show", "onlyname", "--server", s.url}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "sota package show: give the package's NAME and VERSION")

	// No token, or a wrong one.
	errb.Reset()
	assert.Equal(t, 1, run([]string{"package", "list", "--server", s.url, "--token", ""}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "401 Unauthorized")
	assert.Contains(t, errb.String(), "give an admin API token with --token or $SOTA_TOKEN")
	errb.Reset()
	assert.Equal(t, 1, run([]string{"package", "list", "--server", s.url, "--token", "sota_wrong"}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "the token given with --token or $SOTA_TOKEN is not valid")

	// A server that is down fails within seconds, saying so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + ln.Addr().String()
	ln.Close()
	for _, cmd := range [][]string{{"package", "list"}, {"vehicle", "show", "1HGCM82633A000001"}, {"request", "cancel", "x"}, {"filter", "list"}} {
		errb.Reset()
		start := time.Now()
		assert.Equal(t, 1, run(append(cmd, "--server", down), nil, &out, &errb), "%v", cmd)
		assert.Less(t, time.Since(start), 5*time.Second, "%v", cmd)
		assert.Contains(t, errb.String(), "cannot reach the server at "+down+": connection refused (is sotad running? set --server or $SOTA_SERVER)", "%v", cmd)
	}
	errb.Reset()
	assert.Equal(t, 1, run([]string{"fleet", "import", "--server", down, "--quiet", "-"}, strings.NewReader(""), &out, &errb))
	assert.Contains(t, errb.String(), "cannot reach the server at "+down)
	errb.Reset()
	assert.Equal(t, 1, run([]string{"package", "list", "--server", "localhost:8080"}, nil, &out, &errb))
	assert.Contains(t, errb.String(), `--server "localhost:8080" is not an http:// or https:// URL`)
}

// The scripting forms: request create -q prints the ID alone, vehicle token the device token alone,
// and the two drive a simulated vehicle to an installed update.
func TestCLIScriptFormsDriveADevice(t *testing.T) {
	s := newAdminServer(t)
	const vin = "WDD00000000000001"
	s.api("PUT", "/vehicles/"+vin, "")
	s.api("POST", "/filters", `{"name":"all","expression":"TRUE"}`)
	bin := filepath.Join(t.TempDir(), "fw.bin")
	require.NoError(t, os.WriteFile(bin, bytes.Repeat([]byte("fw"), 5000), 0o600))
	code, _, errs := s.sota("package", "upload", "--name", "fw", "--version", "1.0.0", bin)
	require.Equal(t, 0, code, errs)
	s.api("PUT", "/packages/fw/1.0.0/filter/all", "")

	code, out, errs := s.sota("request", "create", "--name", "fw", "--version", "1.0.0", "-q")
	require.Equal(t, 0, code, errs)
	id := strings.TrimSpace(out)
	assert.Regexp(t, `^[0-9a-f-]{36}$`, id)

	code, out, errs = s.sota("vehicle", "token", vin)
	require.Equal(t, 0, code, errs)
	token := strings.TrimSpace(out)
	assert.True(t, strings.HasPrefix(token, "sotadev_"), token)

	var o, e bytes.Buffer
	require.Equal(t, 0, run([]string{"device", "--vin", vin, "--token", token, "--server", s.url, "--dir", t.TempDir(), "--once"}, nil, &o, &e), e.String())
	code, out, _ = s.sota("request", "show", id)
	require.Equal(t, 0, code)
	assert.Regexp(t, `(?m)^finished\s+1$`, out)
	code, out, _ = s.sota("vehicle", "show", vin)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "  fw 1.0.0\n")
	assert.NotContains(t, out, "Last seen:  never")

	code, _, errs = s.sota("vehicle", "token", "WDD00000000000009")
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "404 Not Found: missing_vehicle")
}

// request cancel --in-flight cancels an update a device has started: its next call is 409 update_canceled.
func TestCLIRequestCancelInFlight(t *testing.T) {
	s := newAdminServer(t)
	vin := "1HGCM82633A000001"
	s.api("PUT", "/vehicles/"+vin, "")
	s.api("POST", "/filters", `{"name":"all","expression":"TRUE"}`)
	bin := filepath.Join(t.TempDir(), "nav.bin")
	require.NoError(t, os.WriteFile(bin, []byte("navigation"), 0o600))
	code, _, errs := s.sota("package", "upload", "--name", "nav", "--version", "2.0.0", bin)
	require.Equal(t, 0, code, errs)
	s.api("PUT", "/packages/nav/2.0.0/filter/all", "")
	code, out, errs := s.sota("request", "create", "--name", "nav", "--version", "2.0.0", "-q")
	require.Equal(t, 0, code, errs)
	id := strings.TrimSpace(out)
	code, tok, errs := s.sota("vehicle", "token", vin)
	require.Equal(t, 0, code, errs)
	device := func(method, path string) int {
		req, err := http.NewRequest(method, s.url+"/api/v1/vehicle_updates/"+vin+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	req, err := http.NewRequest("GET", s.url+"/api/v1/vehicle_updates/"+vin, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var rows []struct{ UpdateID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rows))
	resp.Body.Close()
	require.Len(t, rows, 1)
	require.Equal(t, 200, device("POST", "/"+rows[0].UpdateID+"/start"))

	code, out, _ = s.sota("request", "cancel", id)
	require.Equal(t, 0, code)
	assert.Equal(t, "0 pending update(s) canceled\n", out, "in flight: it goes on")
	code, out, errs = s.sota("request", "cancel", id, "--in-flight")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "1 update(s) canceled or asked to cancel, pending and in flight\n", out)
	assert.Equal(t, http.StatusConflict, device("GET", "/"+rows[0].UpdateID+"/chunk"))
}
