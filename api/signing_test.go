package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/engine"
	"sota/resolver"
	"sota/signing"
)

// withSigning turns signing on for deps (data directory dir): a fresh offline repository from
// `sota tuf init` in a temporary KEYS directory.
func withSigning(tb testing.TB, d Deps) Deps {
	tb.Helper()
	keys := tb.TempDir()
	require.NoError(tb, signing.Init(keys, time.Now()))
	sig, err := signing.New(d.DB, d.Engine, signing.Options{RootFile: filepath.Join(keys, "root.json")})
	require.NoError(tb, err)
	d.Signing = sig
	return d
}

// The two signed-metadata uploads, with auth on: admin only, each successful one writes exactly one
// audit entry in the transaction of its change, and a refused one (bad signature) writes none and
// changes nothing.
func TestSigningUploadsAuditedAndAdminOnly(t *testing.T) {
	keys := t.TempDir()
	require.NoError(t, signing.Init(keys, time.Now()))
	d := fullDeps(t)
	sig, err := signing.New(d.DB, d.Engine, signing.Options{RootFile: filepath.Join(keys, "root.json")})
	require.NoError(t, err)
	d.Signing = sig
	h, srv := New(Config{}, d)
	_, _, err = srv.auth.Bootstrap("admin", testPassword)
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	admin, _, err := srv.auth.CreateToken("admin", "release-bot")
	require.NoError(t, err)
	_, err = srv.auth.CreateAccount("olga", testPassword, auth.RoleOperator)
	require.NoError(t, err)
	operator, _, err := srv.auth.CreateToken("olga", "ops")
	require.NoError(t, err)
	call := func(token, method, path string, body []byte) (int, []byte) {
		req, err := http.NewRequest(method, hs.URL+"/api/v1"+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	entries := func() []auth.AuditEntry {
		st, b := call(admin, "GET", "/audit?limit=10000", nil)
		require.Equal(t, 200, st, "%s", b)
		var out []auth.AuditEntry
		require.NoError(t, json.Unmarshal(b, &out))
		return out
	}
	content := []byte("firmware")
	_, err = d.Engine.UploadBinary(resolver.PackageID{Name: "fw", Version: "1.0.0"}, bytes.NewReader(content), engine.Upload{FileName: "fw.bin"})
	require.NoError(t, err)
	k, err := signing.ReadKeyFile(filepath.Join(keys, "targets_key.json"))
	require.NoError(t, err)
	st, cur := call("", "GET", "/tuf/image/targets.json", nil)
	require.Equal(t, 200, st, "public metadata needs no credentials")
	sum := sha256.Sum256(content)
	next, err := signing.SignTargets(cur, []signing.Target{{Name: "fw", Version: "1.0.0", FileName: "fw.bin", Length: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}}, time.Now().Add(time.Hour), k)
	require.NoError(t, err)

	before, separate := len(entries()), srv.audit.separate.Load()
	st, b := call("", "POST", "/tuf/image/targets", next)
	require.Equal(t, 401, st, "%s", b)
	st, b = call(operator, "POST", "/tuf/image/targets", next)
	require.Equal(t, 403, st, "%s", b)
	foreign := t.TempDir()
	require.NoError(t, signing.Init(foreign, time.Now()))
	fk, err := signing.ReadKeyFile(filepath.Join(foreign, "targets_key.json"))
	require.NoError(t, err)
	bad, err := signing.SignTargets(cur, nil, time.Now().Add(time.Hour), fk)
	require.NoError(t, err)
	st, b = call(admin, "POST", "/tuf/image/targets", bad)
	require.Equal(t, 400, st, "%s", b)
	require.Len(t, entries(), before, "refused calls write no entry")

	st, b = call(admin, "POST", "/tuf/image/targets", next)
	require.Equal(t, 200, st, "%s", b)
	after := entries()
	require.Len(t, after, before+1)
	require.Equal(t, "POST /api/v1/tuf/image/targets", after[0].Method+" "+after[0].Route)
	require.Equal(t, "token:release-bot", after[0].Actor)
	require.Equal(t, separate, srv.audit.separate.Load(), "the entry is written in the change's transaction")

	rootKey, err := signing.ReadKeyFile(filepath.Join(keys, "root_key.json"))
	require.NoError(t, err)
	_, root := call("", "GET", "/tuf/image/root.json", nil)
	_, cur = call("", "GET", "/tuf/image/targets.json", nil)
	nk, err := signing.NewKey()
	require.NoError(t, err)
	rot, err := signing.Rotate(root, cur, "targets", []signing.KeyFile{rootKey}, nk, nil, time.Now())
	require.NoError(t, err)
	st, b = call(admin, "POST", "/tuf/image/root", rot.Root)
	require.Equal(t, 200, st, "%s", b)
	require.Len(t, entries(), before+2)
	require.Equal(t, separate, srv.audit.separate.Load())
	st, b = call(admin, "POST", "/tuf/image/root", rot.Root)
	require.Equal(t, 400, st, "the same version again: %s", b)
	require.Len(t, entries(), before+2)
}
