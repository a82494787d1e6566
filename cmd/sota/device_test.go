package main

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/api"
	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/resolver"
)

// sota device --once against a real server: downloads with a progress bar, installs, reports.
func TestDeviceCommandInstalls(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	defer db.Close()
	res, err := resolver.New(db)
	require.NoError(t, err)
	eng, err := engine.New(db, res, engine.Options{DataDir: dir})
	require.NoError(t, err)
	h, _, err := api.New(api.Config{AuthNone: true, ChunkSize: 1024}, api.Deps{Auth: auth.New(db), Resolver: res, Filters: res, Engine: eng})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(method, path, body string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, "%s %s", method, path)
		if out != nil {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
		}
	}
	const vin = "WDD00000000000001"
	call("PUT", "/vehicles/"+vin, "", nil)
	content := bytes.Repeat([]byte("firmware "), 1000)
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	f, _ := w.CreateFormFile("file", "fw.bin")
	f.Write(content)
	w.Close()
	req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/packages/fw/1.0.0", &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	call("POST", "/filters", `{"name":"all","expression":"TRUE"}`, nil)
	call("PUT", "/packages/fw/1.0.0/filter/all", "", nil)
	call("POST", "/update_requests", `{"packageId":{"name":"fw","version":"1.0.0"},"requestConfirmation":true,"description":"new firmware"}`, nil)
	var tok struct{ Token string }
	call("POST", "/vehicles/"+vin+"/token", "", &tok)

	devDir := filepath.Join(t.TempDir(), "car")
	var out, errb bytes.Buffer
	code := run([]string{"device", "--vin", vin, "--token", tok.Token, "--server", srv.URL, "--dir", devDir, "--once", "--ask"}, strings.NewReader("y\n"), &out, &errb)
	require.Equal(t, 0, code, "stderr: %s", errb.String())
	assert.Contains(t, out.String(), "Install fw 1.0.0 (8.8 KiB, new firmware)? [y/N]")
	assert.Contains(t, out.String(), "100%")
	assert.Contains(t, out.String(), "fw-1.0.0 success, result OK")
	got, err := os.ReadFile(filepath.Join(devDir, "packages", "fw", "1.0.0"))
	require.NoError(t, err)
	assert.Equal(t, content, got)

	out.Reset()
	require.Equal(t, 0, run([]string{"device", "--vin", vin, "--token", tok.Token, "--server", srv.URL, "--dir", devDir, "--once"}, nil, &out, &errb))
	assert.Equal(t, "nothing to do\n", out.String())

	out.Reset()
	errb.Reset()
	assert.Equal(t, 1, run([]string{"device", "--vin", vin, "--token", "sotadev_wrong", "--server", srv.URL, "--dir", devDir, "--once"}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "invalid_token")
	assert.Equal(t, 2, run([]string{"device", "--vin", vin}, nil, &out, &errb))
}
