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
	"sota/errs"
	"sota/resolver"
	"sota/signing"
)

// withSigning turns signing on for deps (data directory dir): a fresh offline repository from
// `sota tuf init` in a temporary KEYS directory.
func withSigning(tb testing.TB, d testDeps) testDeps {
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
	h, srv := newServer(t, Config{}, d.Deps)
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

// With signing on, an update request and a campaign launch whose install lists hold a binary that is
// not in the signed targets (a dependency here) are 409 unsigned_target naming it, and queue nothing;
// once it is signed both go through.
func TestQueueAndLaunchNeedSignedTargets(t *testing.T) {
	keys := t.TempDir()
	require.NoError(t, signing.Init(keys, time.Now()))
	d := fullDeps(t)
	sig, err := signing.New(d.DB, d.Engine, signing.Options{RootFile: filepath.Join(keys, "root.json")})
	require.NoError(t, err)
	d.Signing = sig
	h, _ := newServer(t, Config{AuthNone: true}, d.Deps)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	call := func(method, path string, body any) (int, string) {
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, hs.URL+"/api/v1"+path, bytes.NewReader(j))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	contents := map[string][]byte{"lib": []byte("library"), "app": []byte("application")}
	var signed []signing.Target
	for name, c := range contents {
		_, err := d.Engine.UploadBinary(resolver.PackageID{Name: name, Version: "1.0.0"}, bytes.NewReader(c), engine.Upload{FileName: name + ".bin"})
		require.NoError(t, err)
		sum := sha256.Sum256(c)
		signed = append(signed, signing.Target{Name: name, Version: "1.0.0", FileName: name + ".bin", Length: int64(len(c)), SHA256: hex.EncodeToString(sum[:])})
	}
	st, b := call("PUT", "/packages/app/1.0.0/dependencies/lib/1.0.0", nil)
	require.Equal(t, 200, st, b)
	call("PUT", "/vehicles/WDD00000000000001", nil)
	call("POST", "/filters", map[string]any{"name": "all", "expression": "TRUE"})
	call("PUT", "/packages/app/1.0.0/filter/all", nil)
	k, err := signing.ReadKeyFile(filepath.Join(keys, "targets_key.json"))
	require.NoError(t, err)
	sign := func(ts ...signing.Target) {
		cur, err := sig.ImageMetadata("targets.json")
		require.NoError(t, err)
		next, err := signing.SignTargets(cur, ts, time.Now().Add(time.Hour), k)
		require.NoError(t, err)
		_, err = sig.UploadTargets(next)
		require.NoError(t, err)
	}
	for _, tg := range signed {
		if tg.Name == "app" {
			sign(tg) // only the package itself, not its dependency
		}
	}
	app := map[string]string{"name": "app", "version": "1.0.0"}
	st, b = call("POST", "/update_requests", map[string]any{"packageId": app})
	require.Equal(t, 409, st, b)
	require.Contains(t, b, "unsigned_target")
	require.Contains(t, b, "lib-1.0.0")
	st, b = call("POST", "/campaigns", map[string]any{"name": "spring", "packageId": app})
	require.Equal(t, 200, st, b)
	var camp struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(b), &camp))
	st, b = call("POST", "/campaigns/"+camp.ID+"/launch", nil)
	require.Equal(t, 409, st, b)
	require.Contains(t, b, "unsigned_target")
	_, b = call("GET", "/vehicles/WDD00000000000001/queue", nil)
	require.Equal(t, "[]", b, "nothing queued")

	for _, tg := range signed {
		if tg.Name == "lib" {
			sign(tg)
		}
	}
	st, b = call("POST", "/campaigns/"+camp.ID+"/launch", nil)
	require.Equal(t, 200, st, b)
	// a signed binary cannot be replaced
	_, err = d.Engine.UploadBinary(resolver.PackageID{Name: "lib", Version: "1.0.0"}, bytes.NewReader([]byte("other")), engine.Upload{FileName: "lib.bin"})
	require.True(t, errs.Is(err, "signed_target"), "%v", err)
}
