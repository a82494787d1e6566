package main

import (
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/signing"
)

// --signing on needs the image root at the first start, reads it once, and serves the repository
// from the store afterwards; --signing off serves none of it.
func TestSigningFlags(t *testing.T) {
	_, err := parseFlags([]string{"--signing", "maybe"}, env(nil), io.Discard)
	assert.ErrorContains(t, err, "--signing must be on or off")

	data := t.TempDir()
	err = run([]string{"--listen", "127.0.0.1:0", "--data", data, "--store", storetest.Spec(t, data), "--signing", "on", "--admin-password", "a-long-password"}, env(nil), io.Discard)
	assert.ErrorContains(t, err, "--tuf-root")

	keys := t.TempDir()
	require.NoError(t, signing.Init(keys, time.Now()))
	get := func(r *running, path string) (int, []byte) {
		res, err := r.client.Get(r.base + path)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	// each subtest's server stops at its end (startServer's cleanup), before the next opens the store
	storetest.Spec(t, data) // one store for the subtests
	t.Run("first start", func(t *testing.T) {
		r := startServer(t, data, "--signing", "on", "--tuf-root", filepath.Join(keys, "root.json"), "--admin-password", "a-long-password")
		st, b := get(r, "/api/v1/tuf/image/root.json")
		require.Equal(t, http.StatusOK, st, "public metadata: %s", b)
		v, err := signing.Version(b)
		require.NoError(t, err)
		assert.EqualValues(t, 1, v)
		st, _ = get(r, "/api/v1/tuf/image/timestamp.json")
		assert.Equal(t, http.StatusOK, st)
		assert.Contains(t, r.stderr.String(), "OFFLINE private key", "warns about the offline keys next to --tuf-root")
		// the server's online snapshot, timestamp and director keys are in the store: its files are
		// the server user's only
		n := 0
		require.NoError(t, filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			assert.Zerof(t, info.Mode().Perm()&0o077, "%s is %v", p, info.Mode().Perm())
			n++
			return nil
		}))
		if !storetest.Postgres() { // on PostgreSQL the store is in the database, not in --data
			assert.Greater(t, n, 3)
		}
	})
	t.Run("later start", func(t *testing.T) {
		r := startServer(t, data, "--signing", "on", "--admin-password", "a-long-password")
		st, _ := get(r, "/api/v1/tuf/image/1.root.json")
		assert.Equal(t, http.StatusOK, st, "the store keeps the repository")
	})
	t.Run("signing off", func(t *testing.T) {
		r := startServer(t, data, "--admin-password", "a-long-password")
		st, _ := get(r, "/api/v1/tuf/image/root.json")
		assert.NotEqual(t, http.StatusOK, st, "signing off serves no metadata")
	})
}
