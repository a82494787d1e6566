package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/store"
)

// copyClient calls a running server with an admin API token.
type copyClient struct {
	t     *testing.T
	r     *running
	token string
}

func (c copyClient) do(method, path, token string, hdr map[string]string, body io.Reader) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.r.base+path, body)
	require.NoError(c.t, err)
	if _, ok := hdr["Content-Type"]; !ok && body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.r.client.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, resp.Header, b
}

// must sends a JSON body (nil: none) with the admin token and wants a 2xx answer, decoded into out.
func (c copyClient) must(method, path string, body any, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	code, _, b := c.do(method, path, c.token, nil, rd)
	require.Lessf(c.t, code, 300, "%s %s: %d %s", method, path, code, b)
	if out != nil {
		require.NoError(c.t, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
}

// copyFixture is what the source server was given, to be found again on every copy.
type copyFixture struct {
	adminToken string
	devTokens  map[string]string // VIN -> device token
	request    string
	updates    map[string]string // VIN -> update id
	binary     []byte
}

const (
	copyVIN1         = "1HGCM82633A004352" // the vehicle r.tokens creates: a transfer in flight
	copyVIN2         = "WDDCXPY0000000002" // a finished update
	copyPassword     = "copy-test-admin-pw"
	copyOperatorPass = "copy-test-operator-pw"
)

// fillSource gives a server on the example fleet what a copy must carry: an API token and accounts, a
// package binary, a filter, an update request queued to the whole fleet with one transfer in flight
// and one update finished, a data plan with a billing cycle, a campaign and, through all of that, an
// audit log.
func fillSource(t *testing.T, r *running) copyFixture {
	ck := r.login(t, "admin", copyPassword)
	adminToken, devToken := r.tokens(t, ck)
	c := copyClient{t: t, r: r, token: adminToken}
	f := copyFixture{adminToken: adminToken, devTokens: map[string]string{copyVIN1: devToken}, updates: map[string]string{}}

	c.must("POST", "/api/v1/accounts", map[string]string{"username": "operator1", "password": copyOperatorPass, "role": "operator"}, nil)
	c.must("PUT", "/api/v1/vehicles/"+copyVIN2, nil, nil)
	var tok struct{ Token string }
	c.must("POST", "/api/v1/vehicles/"+copyVIN2+"/token", nil, &tok)
	f.devTokens[copyVIN2] = tok.Token

	f.binary = make([]byte, 700<<10+123) // more than two chunks of the db blob store
	rand.New(rand.NewSource(13)).Read(f.binary)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "copytest-1.0.0.bin")
	require.NoError(t, err)
	fw.Write(f.binary)
	mw.Close()
	code, _, b := c.do("PUT", "/api/v1/packages/copytest/1.0.0?description=copied", adminToken, map[string]string{"Content-Type": mw.FormDataContentType()}, &body)
	require.Equal(t, http.StatusNoContent, code, "%s", b)

	c.must("POST", "/api/v1/filters", map[string]string{"name": "copyall", "expression": "TRUE"}, nil)
	c.must("PUT", "/api/v1/packages/copytest/1.0.0/filter/copyall", nil, nil)
	var req struct {
		ID       string
		Vehicles int
	}
	c.must("POST", "/api/v1/update_requests", map[string]any{"packageId": map[string]string{"name": "copytest", "version": "1.0.0"}, "priority": 5}, &req)
	require.Greater(t, req.Vehicles, 10000, "queued to the example fleet")
	f.request = req.ID

	for vin, tok := range f.devTokens {
		code, _, b := c.do("GET", "/api/v1/vehicle_updates/"+vin, tok, nil, nil)
		require.Equal(t, http.StatusOK, code, "%s", b)
		var rows []struct{ UpdateID string }
		require.NoError(t, json.Unmarshal(b, &rows))
		require.Len(t, rows, 1)
		f.updates[vin] = rows[0].UpdateID
		code, _, b = c.do("POST", "/api/v1/vehicle_updates/"+vin+"/"+rows[0].UpdateID+"/start", tok, nil, nil)
		require.Equal(t, http.StatusOK, code, "%s", b)
	}
	u1 := "/api/v1/vehicle_updates/" + copyVIN1 + "/" + f.updates[copyVIN1]
	code, _, b = c.do("POST", u1+"/ack", f.devTokens[copyVIN1], nil, strings.NewReader(`{"chunks":[1,2]}`))
	require.Equal(t, http.StatusOK, code, "%s", b)
	// the second vehicle's chunk counts against its data plan, then it installs
	c.must("POST", "/api/v1/data_plans", map[string]string{"id": "fleetplan"}, nil)
	c.must("POST", "/api/v1/data_plans/fleetplan/billing_cycles", map[string]any{"start": "2026-12-01T00:00:00Z", "poolBytes": 1 << 30}, nil)
	c.must("PUT", "/api/v1/vehicles/"+copyVIN2+"/data_plan", map[string]string{"id": "fleetplan"}, nil)
	u2 := "/api/v1/vehicle_updates/" + copyVIN2 + "/" + f.updates[copyVIN2]
	code, _, b = c.do("GET", u2+"/chunk", f.devTokens[copyVIN2], nil, nil)
	require.Equal(t, http.StatusOK, code, "%s", b)
	code, _, b = c.do("POST", u2, f.devTokens[copyVIN2], nil, strings.NewReader(`{"operation_results":[{"id":"`+f.updates[copyVIN2]+`","result_code":0,"result_text":"installed"}]}`))
	require.Equal(t, http.StatusOK, code, "%s", b)

	c.must("POST", "/api/v1/campaigns", map[string]any{"name": "copy campaign", "packageId": map[string]string{"name": "copytest", "version": "1.0.0"},
		"priority": 1, "startTime": "2026-01-01T00:00:00Z", "endTime": "2099-01-01T00:00:00Z"}, nil)
	return f
}

// getter records the answers (status, total count and body) of GETs into out.
func getter(t *testing.T, r *running, f copyFixture, out map[string]string) func(path, token string, hdr map[string]string) {
	c := copyClient{t: t, r: r, token: f.adminToken}
	return func(path, token string, hdr map[string]string) {
		code, h, b := c.do("GET", path, token, hdr, nil)
		out[path+" "+hdr["Range"]] = fmt.Sprintf("%d total=%s\n%s", code, h.Get("X-Total-Count"), b)
	}
}

// answers records what a server answers to the reads a user makes with the admin token (status,
// total count and body of each). They change nothing.
func answers(t *testing.T, r *running, f copyFixture) map[string]string {
	out := map[string]string{}
	get := getter(t, r, f, out)
	for _, p := range []string{
		"/api/v1/vehicles?limit=10000", "/api/v1/vehicles?limit=10000&offset=10000",
		"/api/v1/vehicles/" + copyVIN1, "/api/v1/vehicles/" + copyVIN2,
		"/api/v1/packages?limit=10000", "/api/v1/packages/copytest/1.0.0",
		"/api/v1/filters?limit=10000",
		"/api/v1/update_requests", "/api/v1/update_requests/" + f.request,
		"/api/v1/update_requests/" + f.request + "/vehicles?status=inFlight",
		"/api/v1/update_requests/" + f.request + "/vehicles?status=finished",
		"/api/v1/update_requests/" + f.request + "/vehicles?status=pending&limit=10000",
		"/api/v1/vehicles/" + copyVIN1 + "/queue", "/api/v1/vehicles/" + copyVIN2 + "/history",
		"/api/v1/accounts", "/api/v1/tokens",
		"/api/v1/audit?limit=10000",
		"/api/v1/data_plans", "/api/v1/data_plans/fleetplan/billing_cycles",
		"/api/v1/campaigns",
		"/api/v1/packages/copytest/1.0.0/download",
	} {
		get(p, f.adminToken, nil)
	}
	get("/api/v1/packages/copytest/1.0.0/download", f.adminToken, map[string]string{"Range": "bytes=262000-530000"})
	return out
}

// deviceAnswers records what the devices read with their tokens. A device's poll is a contact: it
// moves the vehicle's last seen, which the vehicle reads of answers show.
func deviceAnswers(t *testing.T, r *running, f copyFixture) map[string]string {
	out := map[string]string{}
	get := getter(t, r, f, out)
	for vin, tok := range f.devTokens {
		get("/api/v1/vehicle_updates/"+vin, tok, nil)
	}
	u1 := "/api/v1/vehicle_updates/" + copyVIN1 + "/" + f.updates[copyVIN1]
	get(u1+"/chunk", f.devTokens[copyVIN1], nil)
	get(u1+"/download", f.devTokens[copyVIN1], map[string]string{"Range": "bytes=100000-400000"})
	return out
}

var countLine = regexp.MustCompile(`(?m)^  ([a-zA-Z][a-zA-Z ,.()]*?) +(\d+)`)

// copyCounts parses what sotad copy printed: count by family name.
func copyCounts(t *testing.T, out string) map[string]int {
	m := map[string]int{}
	for _, s := range countLine.FindAllStringSubmatch(out, -1) {
		var n int
		fmt.Sscan(s[2], &n)
		m[s[1]] = n
	}
	require.NotEmpty(t, m, "no counts in:\n%s", out)
	return m
}

// runCopyCmd runs `sotad copy` as main does and returns what it printed.
func runCopyCmd(t *testing.T, args ...string) (string, error) {
	out := captureStdout(t)
	err := run(append([]string{"copy"}, args...), env(nil), &syncBuffer{})
	return out.String(), err
}

// roundTrip fills a server on the first store, then copies it along the chain of stores, and every
// server on a copy answers exactly what the first one answered. A store is started with startOn.
// copyArgs gives extra arguments of the copy into a store.
func roundTrip(t *testing.T, stores []string, startOn func(t *testing.T, store string) *running, copyArgs func(to string) []string) {
	var f copyFixture
	t.Run("fill", func(t *testing.T) {
		f = fillSource(t, startOn(t, stores[0]))
	})
	require.NotEmpty(t, f.request)
	var want, wantDevice map[string]string
	// recorded after a restart, as on every copy (what only the memory of a process holds, such as
	// "connected", is not in any store). The devices read first: their polls are contacts that move
	// last seen, and what the admin reads afterwards is what the copy carries.
	t.Run("record", func(t *testing.T) {
		r := startOn(t, stores[0])
		wantDevice = deviceAnswers(t, r, f)
		want = answers(t, r, f)
	})
	require.Contains(t, want["/api/v1/packages/copytest/1.0.0/download "], string(f.binary[:1000]))
	require.Contains(t, want["/api/v1/data_plans/fleetplan/billing_cycles "], `"usedBytes":65536`)
	for i := 1; i < len(stores); i++ {
		from, to := stores[i-1], stores[i]
		t.Run("copy to "+to, func(t *testing.T) {
			out, err := runCopyCmd(t, append([]string{"--from", from, "--to", to}, copyArgs(to)...)...)
			require.NoError(t, err)
			n := copyCounts(t, out)
			assert.Equal(t, 10002, n["vehicles"], "%s", out)
			assert.Equal(t, 10002, n["updates"], "%s", out)
			assert.Equal(t, 1, n["update requests"], "%s", out)
			assert.Equal(t, 2, n["accounts"], "%s", out)
			assert.Equal(t, 1, n["binaries"], "%s", out)
			assert.Equal(t, 1, n["campaigns"], "%s", out)
			assert.Equal(t, 1, n["data plans"], "%s", out)
			assert.Equal(t, 2, n["transfer sessions"], "%s", out)
			assert.Greater(t, n["audit entries"], 8, "%s", out)
			assert.Contains(t, out, fmt.Sprintf("(%.1f KiB,", float64(len(f.binary))/1024))
			t.Logf("%s", out)

			r := startOn(t, to)
			got := answers(t, r, f)
			for k, v := range want {
				assert.Equal(t, v, got[k], "%s on %s", k, to)
			}
			gotDevice := deviceAnswers(t, r, f)
			for k, v := range wantDevice {
				assert.Equal(t, v, gotDevice[k], "%s on %s", k, to)
			}
			// the accounts' passwords and the device tokens work on the copy
			r.login(t, "operator1", copyOperatorPass)
			c := copyClient{t: t, r: r, token: f.adminToken}
			code, _, b := c.do("GET", "/api/v1/vehicle_updates/"+copyVIN1+"/"+f.updates[copyVIN1]+"/chunks/11", f.devTokens[copyVIN1], nil, nil)
			require.Equal(t, http.StatusOK, code, "%s", b)
			var chunk struct{ Data []byte }
			require.NoError(t, json.Unmarshal(b, &chunk))
			assert.Equal(t, f.binary[10*65536:], chunk.Data, "the last chunk of the transfer")
			// the devices' contacts on this copy are part of what the next copy carries
			want = answers(t, r, f)
		})
	}
}

// TestCopyBadgerToBadgerIsAFaithfulBackup: `sotad copy` of a server's Badger directory into a new one
// (the backup, and its restore) gives a server that answers every read exactly as the original did:
// the example fleet, packages and the binary's bytes, filters, the request with its counts and
// vehicles, a transfer in flight that continues chunk for chunk, the finished update, accounts and
// tokens that still log in and authenticate, data plans, campaigns and the audit log. The backup keeps
// its binaries in the store (--to-blob-store db, served with --blob-store db), the restore in files
// again.
func TestCopyBadgerToBadgerIsAFaithfulBackup(t *testing.T) {
	base := t.TempDir()
	dirs := map[string]string{}
	stores := []string{"badger:" + filepath.Join(base, "live"), "badger:" + filepath.Join(base, "backup"), "badger:" + filepath.Join(base, "restored")}
	for _, s := range stores {
		dirs[s] = strings.TrimPrefix(s, "badger:")
	}
	roundTrip(t, stores, func(t *testing.T, s string) *running {
		if s == stores[1] {
			return startServer(t, dirs[s], "--store", "badger", "--examples", "--admin-password", copyPassword, "--blob-store", "db")
		}
		return startServer(t, dirs[s], "--store", "badger", "--examples", "--admin-password", copyPassword)
	}, func(to string) []string {
		if to == stores[1] {
			return []string{"--to-blob-store", "db"}
		}
		return nil
	})
	blobFiles := func(dir string) []string {
		m, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*", "*"))
		require.NoError(t, err)
		return m
	}
	assert.Len(t, blobFiles(dirs[stores[0]]), 1)
	assert.Empty(t, blobFiles(dirs[stores[1]]), "the backup's binary is in its store")
	assert.Len(t, blobFiles(dirs[stores[2]]), 1, "the restore's binary is a file again")
}

// TestCopyBadgerToPostgresAndBack: the move of a single-machine installation to PostgreSQL, and back.
// A server on Badger filled as in the backup test is copied into a fresh PostgreSQL schema (binaries
// into the database), a server on PostgreSQL answers every recorded read identically, and the copy of
// that into a new Badger directory (binaries into files again) does too. A second copy into the
// filled schema is refused. Needs PostgreSQL (SOTA_TEST_PG_URL; skipped without a server unless
// SOTA_REQUIRE_POSTGRES=1).
func TestCopyBadgerToPostgresAndBack(t *testing.T) {
	pg := storetest.NewSchema(t)
	base := t.TempDir()
	live, back := filepath.Join(base, "live"), filepath.Join(base, "back")
	stores := []string{"badger:" + live, pg, "badger:" + back}
	roundTrip(t, stores, func(t *testing.T, s string) *running {
		if s == pg {
			return startServer(t, filepath.Join(base, "pgdata"), "--store", pg, "--admin-password", copyPassword)
		}
		return startServer(t, strings.TrimPrefix(s, "badger:"), "--store", "badger", "--examples", "--admin-password", copyPassword)
	}, func(string) []string { return nil })
	m, err := filepath.Glob(filepath.Join(back, "blobs", "sha256", "*", "*"))
	require.NoError(t, err)
	assert.Len(t, m, 1, "the binary is a file again")
	m, err = filepath.Glob(filepath.Join(base, "pgdata", "blobs", "sha256", "*", "*"))
	require.NoError(t, err)
	assert.Empty(t, m, "the server on PostgreSQL kept its binary in the database")

	_, err = runCopyCmd(t, "--from", "badger:"+live, "--to", pg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the target store is not empty")
}

// sotad copy refuses a target that holds anything, a source that holds nothing, and a store that a
// running server holds, with a message saying why and a non-zero exit; the target is left as it was.
func TestCopyRefusesWhatItMustNotTouch(t *testing.T) {
	base := t.TempDir()
	live, other := filepath.Join(base, "live"), filepath.Join(base, "other")
	t.Run("a running server holds the store", func(t *testing.T) {
		startServer(t, live, "--store", "badger", "--auth=none", "--examples")
		_, err := runCopyCmd(t, "--from", "badger:"+live, "--to", "badger:"+other)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "in use by a running sotad: stop it first")
	})
	t.Run("a target that is not empty", func(t *testing.T) {
		startServer(t, other, "--store", "badger", "--auth=none") // the server writes its account and keys
	})
	_, err := runCopyCmd(t, "--from", "badger:"+live, "--to", "badger:"+other)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the target store is not empty")

	// binary files alone make a target not empty
	blobsOnly := filepath.Join(base, "blobsonly")
	require.NoError(t, os.MkdirAll(filepath.Join(blobsOnly, "blobs", "sha256", "ab"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(blobsOnly, "blobs", "sha256", "ab", strings.Repeat("ab", 32)), []byte("x"), 0o600))
	_, err = runCopyCmd(t, "--from", "badger:"+live, "--to", "badger:"+blobsOnly)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the target store is not empty")

	_, err = runCopyCmd(t, "--from", "badger:"+filepath.Join(base, "typo"), "--to", "badger:"+filepath.Join(base, "new"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not the directory of a Badger store")
	_, err = runCopyCmd(t, "--from", "badger:"+live, "--to", "badger:"+live)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "name the same store")
	_, err = runCopyCmd(t, "--from", "badger:"+live, "--to", "mysql://x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "badger:<dir> or a postgres:// URL")
	err = run([]string{"copy", "--from", "badger:" + live}, env(nil), &syncBuffer{})
	assert.ErrorIs(t, err, errUsage, "--to is required")
	db, err := store.Open(other, store.Options{GCInterval: -1})
	require.NoError(t, err)
	defer db.Close()
	vehicles := 0
	require.NoError(t, db.View(func(t store.Txn) error {
		return t.IterateKeys([]byte("fleet/v/"), func([]byte) error { vehicles++; return nil })
	}))
	assert.Zero(t, vehicles, "nothing was copied into the refused target")
}

// --from-blob-dir: the binaries of a server that kept them as files apart from its store (PostgreSQL
// with --blob-store local) are copied from the directory named.
func TestCopyTakesBinariesFromABlobDirectory(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	db, err := store.Open(src, store.Options{GCInterval: -1})
	require.NoError(t, err)
	require.NoError(t, db.Update(func(t store.Txn) error { return t.Set([]byte("core/bin/nav/1.0.0"), []byte(`{}`)) }))
	require.NoError(t, db.Close())
	apart, err := store.NewLocalBlobs(filepath.Join(base, "pgdata", "blobs"))
	require.NoError(t, err)
	info, err := apart.Put(strings.NewReader("the nav binary"), "")
	require.NoError(t, err)

	_, err = runCopyCmd(t, "--from", "badger:"+src, "--to", "badger:"+filepath.Join(base, "x"), "--from-blob-dir", filepath.Join(base, "nothing"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a blobs directory")
	assert.NoDirExists(t, filepath.Join(base, "x"), "refused before anything was written")
	out, err := runCopyCmd(t, "--from", "badger:"+src, "--to", "badger:"+filepath.Join(base, "dst"), "--from-blob-dir", apart.Dir())
	require.NoError(t, err)
	assert.Equal(t, 1, copyCounts(t, out)["binaries"], "%s", out)
	got, err := os.ReadFile(filepath.Join(base, "dst", "blobs", "sha256", info.SHA256[:2], info.SHA256))
	require.NoError(t, err)
	assert.Equal(t, "the nav binary", string(got))
}
