package main

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	assert.Greater(t, n, 3, "the store's files were checked")
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
