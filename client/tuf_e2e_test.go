package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"sota/api"
	"sota/auth"
	"sota/client"
	"sota/engine"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/signing"
	"sota/store"
	"sota/wire"
)

// signedServer is the real server with signing on (store, resolver, engine, signing, HTTP on
// loopback), whose signing clock can be moved, restartable on the same data directory.
type signedServer struct {
	t       *testing.T
	dir     string
	keys    string // the release engineers' offline KEYS directory
	rootDir string // what the server was given: root.json, targets.json and the online keys
	skew    atomic.Int64
	db      *store.DB
	eng     *engine.Service
	sig     *signing.Service
	srv     *httptest.Server
}

func newSignedServer(t *testing.T) *signedServer {
	s := &signedServer{t: t, dir: t.TempDir(), keys: t.TempDir(), rootDir: t.TempDir()}
	require.NoError(t, signing.Init(s.keys, time.Now()))
	for _, f := range []string{"root.json", "targets.json", "snapshot_key.json", "timestamp_key.json"} {
		b, err := os.ReadFile(filepath.Join(s.keys, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(s.rootDir, f), b, 0o600))
	}
	s.open()
	t.Cleanup(s.close)
	return s
}

func (s *signedServer) now() time.Time { return time.Now().Add(time.Duration(s.skew.Load())) }

func (s *signedServer) open() {
	db, err := storetest.OpenDir(s.t, s.dir+"/db")
	require.NoError(s.t, err)
	res, err := resolver.New(db)
	require.NoError(s.t, err)
	eng, err := engine.New(db, res, engine.Options{DataDir: s.dir})
	require.NoError(s.t, err)
	sig, err := signing.New(db, eng, signing.Options{RootFile: filepath.Join(s.rootDir, "root.json"), Now: s.now})
	require.NoError(s.t, err)
	h, _, err := api.New(api.Config{AuthNone: true, ChunkSize: 4096}, api.Deps{Auth: auth.New(db), Resolver: res, Filters: res, Engine: eng, Signing: sig})
	require.NoError(s.t, err)
	s.db, s.eng, s.sig, s.srv = db, eng, sig, httptest.NewServer(h)
}

func (s *signedServer) close() {
	if s.srv != nil {
		s.srv.Close()
		require.NoError(s.t, s.db.Close())
		s.srv = nil
	}
}

func (s *signedServer) restart() { s.close(); s.open() }

// call sends a request (a []byte body as it is, anything else as JSON) and returns status and body.
func (s *signedServer) call(method, path string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.srv.URL+"/api/v1"+path, rd)
	require.NoError(s.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// want requires the status and, for an error, the code.
func (s *signedServer) want(status int, code, method, path string, body any) []byte {
	s.t.Helper()
	st, b := s.call(method, path, body)
	require.Equalf(s.t, status, st, "%s %s: %s", method, path, b)
	if code != "" {
		var e struct{ Code string }
		require.NoError(s.t, json.Unmarshal(b, &e))
		require.Equalf(s.t, code, e.Code, "%s %s: %s", method, path, b)
	}
	return b
}

func (s *signedServer) upload(name, version, file string, content []byte) (int, []byte) {
	s.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	f, err := w.CreateFormFile("file", file)
	require.NoError(s.t, err)
	f.Write(content)
	require.NoError(s.t, w.Close())
	req, err := http.NewRequest("PUT", s.srv.URL+"/api/v1/packages/"+name+"/"+version, &b)
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// sign is `sota tuf sign` with the given key: the server's current targets plus the files, next version.
func (s *signedServer) sign(key string, add ...signing.Target) []byte {
	s.t.Helper()
	k, err := signing.ReadKeyFile(filepath.Join(s.keys, key))
	require.NoError(s.t, err)
	cur := s.want(200, "", "GET", "/tuf/image/targets.json", nil)
	next, err := signing.SignTargets(cur, add, time.Now().Add(24*time.Hour), k)
	require.NoError(s.t, err)
	return next
}

func target(name, version, file string, content []byte) signing.Target {
	sum := sha256.Sum256(content)
	return signing.Target{Name: name, Version: version, FileName: file, Length: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
}

// release uploads, signs and queues a package version for the fleet filter.
func (s *signedServer) release(name, version string, content []byte) signing.Target {
	s.t.Helper()
	file := name + "-" + version + ".bin"
	st, b := s.upload(name, version, file, content)
	require.Equalf(s.t, 204, st, "%s", b)
	tg := target(name, version, file, content)
	s.want(200, "", "POST", "/tuf/image/targets", s.sign("targets_key.json", tg))
	s.want(200, "", "PUT", "/packages/"+name+"/"+version+"/filter/fleet", nil)
	return tg
}

func (s *signedServer) queue(name, version string) {
	s.t.Helper()
	s.want(200, "", "POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": name, "version": version}})
}

// replayer is the network between vehicle and server: it forwards everything, but answers the paths
// it was given with recorded bytes (an attacker replaying old metadata).
type replayer struct {
	mu     sync.Mutex
	replay map[string][]byte
	cut    bool // cut the connection of every metadata request (the network drops)
	srv    *httptest.Server
}

func newReplayer(t *testing.T, target string) *replayer {
	u, _ := url.Parse(target)
	r := &replayer{replay: map[string][]byte{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		b, ok := r.replay[req.URL.Path]
		cut := r.cut && strings.Contains(req.URL.Path, "/tuf/")
		r.mu.Unlock()
		if cut {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		if ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *replayer) set(path string, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b == nil {
		delete(r.replay, path)
	} else {
		r.replay[path] = b
	}
}

// End to end with signing on: the real server, the device client verifying both repositories, and
// the attacks signed metadata is there for.
func TestSignedReleasesEndToEnd(t *testing.T) {
	s := newSignedServer(t)
	ctx := context.Background()
	const vin = "WDD00000000000001"
	s.want(204, "", "PUT", "/vehicles/"+vin, nil)
	s.want(200, "", "POST", "/filters", map[string]any{"name": "fleet", "expression": `vin_matches "^WDD"`})
	var tok struct{ Token string }
	require.NoError(t, json.Unmarshal(s.want(200, "", "POST", "/vehicles/"+vin+"/token", nil), &tok))
	imageRoot, err := os.ReadFile(filepath.Join(s.keys, "root.json"))
	require.NoError(t, err)
	px := newReplayer(t, s.srv.URL)
	devDir := t.TempDir()
	// device is a fresh client process on the same directory each time (what it keeps survives)
	device := func() *client.Manager {
		return &client.Manager{Dir: devDir, ImageRoot: imageRoot, Client: &client.Client{Server: px.srv.URL, VIN: vin, Token: tok.Token, Backoff: client.Backoff{Attempts: 2}}}
	}
	runOne := func() client.Outcome {
		t.Helper()
		out, err := device().RunOnce(ctx)
		require.NoError(t, err)
		require.Len(t, out, 1)
		return out[0]
	}
	history := func() []engine.Update {
		var h []engine.Update
		require.NoError(t, json.Unmarshal(s.want(200, "", "GET", "/vehicles/"+vin+"/history", nil), &h))
		return h
	}
	// resultOf is the result text the server recorded for an update
	resultOf := func(o client.Outcome) string {
		for _, u := range history() {
			if u.ID == o.UpdateID {
				t.Logf("update %s: %s", o.UpdateID, u.ResultText)
				return u.ResultText
			}
		}
		return ""
	}
	oldTimestamp := s.want(200, "", "GET", "/tuf/image/timestamp.json", nil)
	oldSnapshot := s.want(200, "", "GET", "/tuf/image/1.snapshot.json", nil)

	// an uploaded binary that is not signed cannot be queued
	fw1 := []byte(strings.Repeat("firmware one ", 1000))
	st, b := s.upload("fw", "1.0.0", "fw-1.0.0.bin", fw1)
	require.Equalf(t, 204, st, "%s", b)
	s.want(200, "", "PUT", "/packages/fw/1.0.0/filter/fleet", nil)
	b = s.want(409, "unsigned_target", "POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": "fw", "version": "1.0.0"}})
	require.Contains(t, string(b), "fw-1.0.0")

	t.Run("targets the server refuses", func(t *testing.T) {
		foreign := t.TempDir()
		require.NoError(t, signing.Init(foreign, time.Now()))
		fk, err := signing.ReadKeyFile(filepath.Join(foreign, "targets_key.json"))
		require.NoError(t, err)
		cur := s.want(200, "", "GET", "/tuf/image/targets.json", nil)
		bad, err := signing.SignTargets(cur, []signing.Target{target("fw", "1.0.0", "fw-1.0.0.bin", fw1)}, time.Now().Add(time.Hour), fk)
		require.NoError(t, err)
		b := s.want(400, "invalid_metadata", "POST", "/tuf/image/targets", bad)
		require.Contains(t, string(b), "threshold")
		// wrong length, unknown binary, wrong file name, a version that skips one, expired
		wrong := target("fw", "1.0.0", "fw-1.0.0.bin", fw1)
		wrong.Length++
		s.want(400, "invalid_metadata", "POST", "/tuf/image/targets", s.sign("targets_key.json", wrong))
		s.want(400, "invalid_metadata", "POST", "/tuf/image/targets", s.sign("targets_key.json", target("nope", "1.0.0", "x.bin", fw1)))
		s.want(400, "invalid_metadata", "POST", "/tuf/image/targets", s.sign("targets_key.json", target("fw", "1.0.0", "other.bin", fw1)))
		k, _ := signing.ReadKeyFile(filepath.Join(s.keys, "targets_key.json"))
		skip, err := signing.SignTargets(s.sign("targets_key.json"), nil, time.Now().Add(time.Hour), k)
		require.NoError(t, err)
		b = s.want(400, "invalid_metadata", "POST", "/tuf/image/targets", skip)
		require.Contains(t, string(b), "next version")
		expired, err := signing.SignTargets(cur, []signing.Target{target("fw", "1.0.0", "fw-1.0.0.bin", fw1)}, time.Now().Add(-time.Minute), k)
		require.NoError(t, err)
		s.want(400, "invalid_metadata", "POST", "/tuf/image/targets", expired)
		// nothing changed: still version 1, and the package still cannot be queued
		v, err := signing.Version(s.want(200, "", "GET", "/tuf/image/targets.json", nil))
		require.NoError(t, err)
		require.EqualValues(t, 1, v)
		s.want(409, "unsigned_target", "POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": "fw", "version": "1.0.0"}})
	})

	t.Run("a signed release installs", func(t *testing.T) {
		s.want(200, "", "POST", "/tuf/image/targets", s.sign("targets_key.json", target("fw", "1.0.0", "fw-1.0.0.bin", fw1)))
		s.queue("fw", "1.0.0")
		o := runOne()
		require.Equalf(t, wire.ResultOK, o.Code, "%+v %s", o, resultOf(o))
		got, err := os.ReadFile(device().PackagePath(resolver.PackageID{Name: "fw", Version: "1.0.0"}))
		require.NoError(t, err)
		require.Equal(t, fw1, got)
		// a signed binary cannot be replaced
		st, b := s.upload("fw", "1.0.0", "fw-1.0.0.bin", []byte("something else"))
		require.Equalf(t, 409, st, "%s", b)
		require.Contains(t, string(b), "signed_target")
	})

	t.Run("an independent TUF client verifies the image repository", func(t *testing.T) {
		cfg, err := config.New(s.srv.URL+"/api/v1/tuf/image", imageRoot)
		require.NoError(t, err)
		cfg.LocalMetadataDir, cfg.LocalTargetsDir = t.TempDir(), t.TempDir()
		up, err := updater.New(cfg)
		require.NoError(t, err)
		require.NoError(t, up.Refresh())
		ti, err := up.GetTargetInfo("fw/1.0.0/fw-1.0.0.bin")
		require.NoError(t, err)
		_, data, err := up.DownloadTarget(ti, "", "")
		require.NoError(t, err)
		require.Equal(t, fw1, data)
	})

	t.Run("binary replaced in the blob store", func(t *testing.T) {
		fw2 := []byte(strings.Repeat("firmware two ", 1000))
		tg := s.release("fw", "2.0.0", fw2)
		evil := bytes.Repeat([]byte("X"), len(fw2))
		blob := filepath.Join(s.dir, "blobs", "sha256", tg.SHA256[:2], tg.SHA256)
		require.NoError(t, os.WriteFile(blob, evil, 0o644))
		s.queue("fw", "2.0.0")
		o := runOne()
		require.Equal(t, wire.ResultValidationFailed, o.Code)
		require.Contains(t, resultOf(o), "do not match the signed targets")
		_, err := os.Stat(device().PackagePath(resolver.PackageID{Name: "fw", Version: "2.0.0"}))
		require.True(t, os.IsNotExist(err), "nothing installed")
	})

	t.Run("a director listing a target the image repository lacks", func(t *testing.T) {
		// a compromised server: it queues an unsigned binary (its own check bypassed) and its director,
		// signed with the server's online key, vouches for it
		fw3 := []byte("firmware three, never signed by the release engineers")
		st, b := s.upload("fw", "3.0.0", "fw-3.0.0.bin", fw3)
		require.Equalf(t, 204, st, "%s", b)
		s.want(200, "", "PUT", "/packages/fw/3.0.0/filter/fleet", nil)
		s.eng.SetSigning(nil)
		s.queue("fw", "3.0.0")
		s.eng.SetSigning(s.sig)
		o := runOne()
		require.Equal(t, wire.ResultValidationFailed, o.Code)
		require.Contains(t, resultOf(o), "not in the image repository")
		_, err := os.Stat(device().PackagePath(resolver.PackageID{Name: "fw", Version: "3.0.0"}))
		require.True(t, os.IsNotExist(err))
	})

	t.Run("replayed older timestamp and snapshot", func(t *testing.T) {
		fw4 := []byte(strings.Repeat("firmware four ", 900))
		s.release("fw", "4.0.0", fw4)
		s.queue("fw", "4.0.0")
		px.set("/api/v1/tuf/image/timestamp.json", oldTimestamp)
		o := runOne()
		px.set("/api/v1/tuf/image/timestamp.json", nil)
		require.Equal(t, wire.ResultValidationFailed, o.Code)
		require.Contains(t, resultOf(o), "timestamp")

		// the current timestamp, with the snapshot it names replaced by an older one
		fw5 := []byte(strings.Repeat("firmware five ", 900))
		s.release("fw", "5.0.0", fw5)
		var ts struct {
			Signed struct {
				Meta map[string]struct{ Version int } `json:"meta"`
			} `json:"signed"`
		}
		require.NoError(t, json.Unmarshal(s.want(200, "", "GET", "/tuf/image/timestamp.json", nil), &ts))
		snapPath := "/api/v1/tuf/image/" + strconv.Itoa(ts.Signed.Meta["snapshot.json"].Version) + ".snapshot.json"
		px.set(snapPath, oldSnapshot)
		s.queue("fw", "5.0.0")
		o = runOne()
		px.set(snapPath, nil)
		require.Equal(t, wire.ResultValidationFailed, o.Code)
		// the timestamp names the snapshot's hash, so the replayed one fails it
		require.Contains(t, resultOf(o), "image repository: length/hash verification error")
		// with the network honest again the same release installs (queued anew)
		s.queue("fw", "5.0.0")
		o = runOne()
		require.Equalf(t, wire.ResultOK, o.Code, "%s", resultOf(o))
	})

	t.Run("expired metadata", func(t *testing.T) {
		s.skew.Store(int64(-36 * time.Hour)) // the server signs a timestamp that expired 12 hours ago
		fw6 := []byte(strings.Repeat("firmware six ", 900))
		s.release("fw", "6.0.0", fw6)
		s.queue("fw", "6.0.0")
		o := runOne()
		require.Equal(t, wire.ResultValidationFailed, o.Code)
		require.Contains(t, resultOf(o), "expired")
		// the scheduler's refresh re-signs the timestamp once the clock is right
		s.skew.Store(0)
		signed, err := s.sig.Refresh()
		require.NoError(t, err)
		require.True(t, signed)
		s.queue("fw", "6.0.0")
		o = runOne()
		require.Equalf(t, wire.ResultOK, o.Code, "%s", resultOf(o))
	})

	t.Run("targets key rotated through a new root", func(t *testing.T) {
		rootKey, err := signing.ReadKeyFile(filepath.Join(s.keys, "root_key.json"))
		require.NoError(t, err)
		newKey, err := signing.NewKey()
		require.NoError(t, err)
		cur := s.want(200, "", "GET", "/tuf/image/targets.json", nil)
		rot, err := signing.Rotate(s.want(200, "", "GET", "/tuf/image/root.json", nil), cur, "targets", []signing.KeyFile{rootKey}, newKey, nil, time.Now())
		require.NoError(t, err)
		// a root not signed by the current root key is refused
		stranger, _ := signing.NewKey()
		forged, err := signing.Rotate(s.want(200, "", "GET", "/tuf/image/root.json", nil), cur, "targets", []signing.KeyFile{stranger}, newKey, nil, time.Now())
		require.NoError(t, err)
		s.want(400, "invalid_metadata", "POST", "/tuf/image/root", forged.Root)
		s.want(200, "", "POST", "/tuf/image/root", rot.Root)
		s.want(200, "", "POST", "/tuf/image/targets", rot.Targets)
		require.NoError(t, os.Rename(filepath.Join(s.keys, "targets_key.json"), filepath.Join(s.keys, "targets_key.old.json")))
		require.NoError(t, signing.WriteKeyFile(filepath.Join(s.keys, "targets_key.json"), newKey))
		// both root versions are served
		s.want(200, "", "GET", "/tuf/image/1.root.json", nil)
		s.want(200, "", "GET", "/tuf/image/2.root.json", nil)

		fw7 := []byte(strings.Repeat("firmware seven ", 900))
		st, b := s.upload("fw", "7.0.0", "fw-7.0.0.bin", fw7)
		require.Equalf(t, 204, st, "%s", b)
		tg := target("fw", "7.0.0", "fw-7.0.0.bin", fw7)
		b = s.want(400, "invalid_metadata", "POST", "/tuf/image/targets", s.sign("targets_key.old.json", tg))
		require.Contains(t, string(b), "threshold")
		s.want(200, "", "POST", "/tuf/image/targets", s.sign("targets_key.json", tg))
		s.want(200, "", "PUT", "/packages/fw/7.0.0/filter/fleet", nil)
		s.queue("fw", "7.0.0")
		o := runOne() // the device still holds root 1 and walks to root 2
		require.Equalf(t, wire.ResultOK, o.Code, "%s", resultOf(o))
		stored, err := os.ReadFile(filepath.Join(devDir, "tuf", "image", "root.json"))
		require.NoError(t, err)
		v, _ := signing.Version(stored)
		require.EqualValues(t, 2, v)
	})

	t.Run("a network failure while fetching metadata is not a verdict", func(t *testing.T) {
		fw8 := []byte(strings.Repeat("firmware eight ", 900))
		s.release("fw", "8.0.0", fw8)
		s.queue("fw", "8.0.0")
		px.mu.Lock()
		px.cut = true
		px.mu.Unlock()
		out, err := device().RunOnce(ctx)
		px.mu.Lock()
		px.cut = false
		px.mu.Unlock()
		require.Error(t, err, "the round fails and is tried again later")
		require.Empty(t, out, "nothing was reported")
		o := runOne()
		require.Equalf(t, wire.ResultOK, o.Code, "%s", resultOf(o))
	})

	t.Run("the repository survives a restart", func(t *testing.T) {
		before := s.want(200, "", "GET", "/tuf/image/timestamp.json", nil)
		s.restart()
		require.Equal(t, before, s.want(200, "", "GET", "/tuf/image/timestamp.json", nil))
		s.want(409, "unsigned_target", "POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": "fw", "version": "3.0.0"}})
	})
}
