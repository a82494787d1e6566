package main

import (
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
)

// Finding 8: the data directory's files (bcrypt hashes, the wake-up signing key) were 0644 in 0755
// directories. What sotad creates is its user's only, and what an older version left open is closed.
func TestDataDirectoryIsPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	// an older installation: world-readable
	require.NoError(t, os.MkdirAll(filepath.Join(data, "blobs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "blobs", "old"), []byte("x"), 0o644))
	require.NoError(t, os.Chmod(data, 0o755))
	r := startServer(t, data, "--admin-password", "release-engineer-pw")
	resp, err := r.client.Get(r.base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	n := 0
	require.NoError(t, filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		info, err := d.Info()
		require.NoError(t, err)
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		n++
		assert.Zerof(t, info.Mode().Perm()&0o077, "%s is %v", p, info.Mode().Perm())
		return nil
	}))
	if !storetest.Postgres() { // on PostgreSQL the store and the binaries (--blob-store db) are in the database
		assert.Greater(t, n, 3, "the store's files were checked")
	}
}

// Finding 1 at the flags: --rvi-url with --auth on and no --rvi-token is refused.
func TestRVIURLNeedsAToken(t *testing.T) {
	_, err := parseFlags([]string{"--rvi-url", "http://127.0.0.1:1"}, env(nil), io.Discard)
	assert.ErrorContains(t, err, "--rvi-token")
	_, err = parseFlags([]string{"--rvi-url", "http://127.0.0.1:1", "--rvi-token", "s3cret"}, env(nil), io.Discard)
	assert.NoError(t, err)
	_, err = parseFlags([]string{"--rvi-url", "http://127.0.0.1:1", "--auth", "none"}, env(nil), io.Discard)
	assert.NoError(t, err)
	_, err = parseFlags([]string{"--trusted-proxy", "10.0.0.1,not-an-ip"}, env(nil), io.Discard)
	assert.ErrorContains(t, err, "--trusted-proxy")
	_, err = parseFlags([]string{"--max-connections", "0"}, env(nil), io.Discard)
	assert.Error(t, err)
}

// --metrics-listen serves /metrics without auth on its own address (and the main listener has none);
// --log-format json writes one JSON object a line.
func TestMetricsListenAndJSONLogs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	maddr := ln.Addr().String()
	ln.Close()
	r := startServer(t, t.TempDir(), "--admin-password", "release-engineer-pw", "--metrics-listen", maddr, "--log-format", "json")
	res, err := http.Get("http://" + maddr + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "sota_http_requests_total")
	assert.Contains(t, string(body), "go_goroutines")
	res, err = r.client.Get(r.base + "/metrics")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	lines := strings.Split(strings.TrimSpace(r.stderr.String()), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		if l == "" {
			continue
		}
		var rec map[string]any
		assert.NoErrorf(t, json.Unmarshal([]byte(l), &rec), "not a JSON line: %s", l)
	}
	_, err = parseFlags([]string{"--log-format", "xml"}, env(nil), io.Discard)
	assert.Error(t, err)
}
