package main

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"sota/api"
	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/signing"
)

// sota tuf init, sign and rotate against a real server with signing on, and sota device --tuf-root
// installing what they signed.
func TestTUFCommands(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"tuf", "init", "--dir", keys}, nil, &out, &errb), errb.String())
	for _, f := range []string{"root_key.json", "targets_key.json", "snapshot_key.json", "timestamp_key.json"} {
		st, err := os.Stat(filepath.Join(keys, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
	require.Equal(t, 1, run([]string{"tuf", "init", "--dir", keys}, nil, &out, &errb), "init refuses to overwrite keys")

	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	defer db.Close()
	res, err := resolver.New(db)
	require.NoError(t, err)
	eng, err := engine.New(db, res, engine.Options{DataDir: dir})
	require.NoError(t, err)
	sig, err := signing.New(db, eng, signing.Options{RootFile: filepath.Join(keys, "root.json")})
	require.NoError(t, err)
	h, _, err := api.New(api.Config{AuthNone: true, ChunkSize: 1024}, api.Deps{Auth: auth.New(db), Resolver: res, Filters: res, Engine: eng, Signing: sig})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	upload := func(version string, content []byte) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		f, _ := w.CreateFormFile("file", "fw.bin")
		f.Write(content)
		w.Close()
		req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/packages/fw/"+version, &b)
		req.Header.Set("Content-Type", w.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 204, resp.StatusCode)
	}
	targetsVersion := func() int64 {
		_, b := call("GET", "/tuf/image/targets.json", "")
		v, err := signing.Version([]byte(b))
		require.NoError(t, err)
		return v
	}
	const vin = "WDD00000000000001"
	call("PUT", "/vehicles/"+vin, "")
	call("POST", "/filters", `{"name":"all","expression":"TRUE"}`)
	content := bytes.Repeat([]byte("firmware "), 1000)
	upload("1.0.0", content)
	call("PUT", "/packages/fw/1.0.0/filter/all", "")
	st, b := call("POST", "/update_requests", `{"packageId":{"name":"fw","version":"1.0.0"}}`)
	require.Equal(t, 409, st, b)
	require.Contains(t, b, "unsigned_target")

	// --file with other bytes than the server holds: nothing is signed
	local := filepath.Join(t.TempDir(), "fw.bin")
	require.NoError(t, os.WriteFile(local, []byte("not the uploaded firmware"), 0o644))
	errb.Reset()
	require.Equal(t, 1, run([]string{"tuf", "sign", "--dir", keys, "--server", srv.URL, "--file", "fw/1.0.0=" + local}, nil, &out, &errb))
	require.Contains(t, errb.String(), "nothing signed")
	require.EqualValues(t, 1, targetsVersion())

	require.NoError(t, os.WriteFile(local, content, 0o644))
	out.Reset()
	require.Equal(t, 0, run([]string{"tuf", "sign", "--dir", keys, "--server", srv.URL, "--file", "fw/1.0.0=" + local}, nil, &out, &errb), errb.String())
	require.Contains(t, out.String(), "fw/1.0.0/fw.bin")
	require.EqualValues(t, 2, targetsVersion())
	out.Reset()
	require.Equal(t, 0, run([]string{"tuf", "sign", "--dir", keys, "--server", srv.URL}, nil, &out, &errb))
	require.Contains(t, out.String(), "nothing to sign")

	st, b = call("POST", "/update_requests", `{"packageId":{"name":"fw","version":"1.0.0"}}`)
	require.Equal(t, 200, st, b)
	var tok struct{ Token string }
	_, b = call("POST", "/vehicles/"+vin+"/token", "")
	require.NoError(t, json.Unmarshal([]byte(b), &tok))
	devDir := filepath.Join(t.TempDir(), "car")
	out.Reset()
	code := run([]string{"device", "--vin", vin, "--token", tok.Token, "--server", srv.URL, "--dir", devDir, "--once", "--tuf-root", filepath.Join(keys, "root.json")}, nil, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Contains(t, out.String(), "fw-1.0.0 success, result OK")

	// rotate the targets key: root version 2, the targets re-signed, the old key kept aside
	out.Reset()
	require.Equal(t, 0, run([]string{"tuf", "rotate", "--dir", keys, "--role", "targets", "--server", srv.URL}, nil, &out, &errb), errb.String())
	_, b = call("GET", "/tuf/image/root.json", "")
	v, _ := signing.Version([]byte(b))
	require.EqualValues(t, 2, v)
	require.FileExists(t, filepath.Join(keys, "targets_key.json.v1.old"))
	upload("2.0.0", bytes.Repeat([]byte("firmware two "), 700))
	require.Equal(t, 0, run([]string{"tuf", "sign", "--dir", keys, "--server", srv.URL}, nil, &out, &errb), errb.String())
	require.EqualValues(t, 4, targetsVersion())
	call("PUT", "/packages/fw/2.0.0/filter/all", "")
	st, b = call("POST", "/update_requests", `{"packageId":{"name":"fw","version":"2.0.0"}}`)
	require.Equal(t, 200, st, b)
	out.Reset()
	code = run([]string{"device", "--vin", vin, "--token", tok.Token, "--server", srv.URL, "--dir", devDir, "--once", "--tuf-root", filepath.Join(keys, "root.json")}, nil, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Contains(t, out.String(), "fw-2.0.0 success, result OK")

	// rotate the root key: root version 3 signed by the old and the new root key; signing goes on
	out.Reset()
	require.Equal(t, 0, run([]string{"tuf", "rotate", "--dir", keys, "--role", "root", "--server", srv.URL}, nil, &out, &errb), errb.String())
	_, b = call("GET", "/tuf/image/root.json", "")
	v, _ = signing.Version([]byte(b))
	require.EqualValues(t, 3, v)
	require.FileExists(t, filepath.Join(keys, "root_key.json.v2.old"))
	upload("3.0.0", bytes.Repeat([]byte("firmware three "), 700))
	require.Equal(t, 0, run([]string{"tuf", "sign", "--dir", keys, "--server", srv.URL}, nil, &out, &errb), errb.String())
	call("PUT", "/packages/fw/3.0.0/filter/all", "")
	st, b = call("POST", "/update_requests", `{"packageId":{"name":"fw","version":"3.0.0"}}`)
	require.Equal(t, 200, st, b)
	out.Reset()
	code = run([]string{"device", "--vin", vin, "--token", tok.Token, "--server", srv.URL, "--dir", devDir, "--once", "--tuf-root", filepath.Join(keys, "root.json")}, nil, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Contains(t, out.String(), "fw-3.0.0 success, result OK")

	// a device whose directory was wiped and that was given only the first root walks the whole chain
	first, err := sig.ImageMetadata("1.root.json")
	require.NoError(t, err)
	firstFile := filepath.Join(t.TempDir(), "root.json")
	require.NoError(t, os.WriteFile(firstFile, first, 0o644))
	upload("4.0.0", bytes.Repeat([]byte("firmware four "), 700))
	require.Equal(t, 0, run([]string{"tuf", "sign", "--dir", keys, "--server", srv.URL}, nil, &out, &errb), errb.String())
	call("PUT", "/packages/fw/4.0.0/filter/all", "")
	st, b = call("POST", "/update_requests", `{"packageId":{"name":"fw","version":"4.0.0"}}`)
	require.Equal(t, 200, st, b)
	out.Reset()
	code = run([]string{"device", "--vin", vin, "--token", tok.Token, "--server", srv.URL, "--dir", filepath.Join(t.TempDir(), "car2"), "--once", "--tuf-root", firstFile}, nil, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Contains(t, out.String(), "fw-4.0.0 success, result OK")
}

// A targets role with two keys and threshold 2: sota tuf sign signs with every targets key of KEYS,
// and the server refuses targets signed by only one of them.
func TestTUFSignThreshold(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	var out, errb bytes.Buffer
	require.Equal(t, 0, run([]string{"tuf", "init", "--dir", keys}, nil, &out, &errb), errb.String())
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	defer db.Close()
	res, err := resolver.New(db)
	require.NoError(t, err)
	eng, err := engine.New(db, res, engine.Options{DataDir: dir})
	require.NoError(t, err)
	sig, err := signing.New(db, eng, signing.Options{RootFile: filepath.Join(keys, "root.json")})
	require.NoError(t, err)
	h, _, err := api.New(api.Config{AuthNone: true}, api.Deps{Auth: auth.New(db), Resolver: res, Filters: res, Engine: eng, Signing: sig})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	// root version 2: a second targets key, threshold 2
	rootKey, err := signing.ReadKeyFile(filepath.Join(keys, "root_key.json"))
	require.NoError(t, err)
	second, err := signing.NewKey()
	require.NoError(t, err)
	rootBytes, err := os.ReadFile(filepath.Join(keys, "root.json"))
	require.NoError(t, err)
	var root metadata.Metadata[metadata.RootType]
	_, err = root.FromBytes(rootBytes)
	require.NoError(t, err)
	require.NoError(t, root.Signed.AddKey(second.TUF(), metadata.TARGETS))
	root.Signed.Roles[metadata.TARGETS].Threshold = 2
	root.Signed.Version = 2
	root.ClearSignatures()
	signer, err := rootKey.Signer()
	require.NoError(t, err)
	_, err = root.Sign(signer)
	require.NoError(t, err)
	rootBytes, err = root.ToBytes(true)
	require.NoError(t, err)
	_, err = sig.UploadRoot(rootBytes)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(keys, "root.json"), rootBytes, 0o644))

	_, err = eng.UploadBinary(resolver.PackageID{Name: "fw", Version: "1.0.0"}, bytes.NewReader([]byte("firmware")), engine.Upload{FileName: "fw.bin"})
	require.NoError(t, err)
	// the server's targets (version 1, one signature) no longer verify under root 2: sign refuses to
	// build on them
	errb.Reset()
	require.Equal(t, 1, run([]string{"tuf", "sign", "--dir", keys, "--server", srv.URL}, nil, &out, &errb))
	require.Contains(t, errb.String(), "do not verify")
	// re-sign version 2 with both keys through the library, as a rotation would
	first, err := signing.ReadKeyFile(filepath.Join(keys, "targets_key.json"))
	require.NoError(t, err)
	cur, err := sig.ImageMetadata("targets.json")
	require.NoError(t, err)
	one, err := signing.SignTargets(cur, nil, time.Now().Add(time.Hour), first)
	require.NoError(t, err)
	_, err = sig.UploadTargets(one)
	require.Error(t, err, "one signature of two")
	both, err := signing.SignTargets(cur, nil, time.Now().Add(time.Hour), first, second)
	require.NoError(t, err)
	_, err = sig.UploadTargets(both)
	require.NoError(t, err)

	require.NoError(t, signing.WriteKeyFile(filepath.Join(keys, "targets_key2.json"), second))
	out.Reset()
	require.Equal(t, 0, run([]string{"tuf", "sign", "--dir", keys, "--server", srv.URL}, nil, &out, &errb), errb.String())
	require.Contains(t, out.String(), "fw/1.0.0/fw.bin")
}
