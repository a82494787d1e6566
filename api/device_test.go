package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/policy"
	"sota/resolver"
	"sota/store"
)

// deviceEnv is the real server (store, resolver, engine, HTTP on loopback) with a small chunk size,
// restartable on the same data directory.
type deviceEnv struct {
	t       *testing.T
	dir     string
	chunk   int
	ddi     DDIConfig
	proxies []string // Config.TrustedProxies
	db      *store.DB
	eng     *engine.Service
	res     *resolver.Service
	srv     *httptest.Server
}

func newDeviceEnv(t *testing.T, chunk int) *deviceEnv {
	e := &deviceEnv{t: t, dir: t.TempDir(), chunk: chunk}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *deviceEnv) open() {
	db, err := storetest.OpenDir(e.t, e.dir+"/db")
	require.NoError(e.t, err)
	res, err := resolver.New(db)
	require.NoError(e.t, err)
	eng, err := engine.New(db, res, engine.Options{DataDir: e.dir})
	require.NoError(e.t, err)
	h, _ := newServer(e.t, Config{AuthNone: true, ChunkSize: e.chunk, DDI: e.ddi, TrustedProxies: e.proxies}, Deps{Auth: auth.New(db), Resolver: res, Filters: res, Engine: eng, Policy: policy.NewService(db)})
	e.db, e.eng, e.res, e.srv = db, eng, res, httptest.NewServer(h)
}

func (e *deviceEnv) close() {
	if e.srv != nil {
		e.srv.Close()
		require.NoError(e.t, e.db.Close())
		e.srv = nil
	}
}

func (e *deviceEnv) restart() { e.close(); e.open() }

// call sends a request with an optional Bearer token; body is JSON-encoded unless nil. It returns the
// status and the body.
func (e *deviceEnv) call(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(e.t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/api/v1"+path, r)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, b
}

// want requires a status (and, for an error, its code) and decodes the body into out when not nil.
func (e *deviceEnv) want(status int, code, method, path, token string, body, out any) []byte {
	e.t.Helper()
	st, b := e.call(method, path, token, body)
	require.Equalf(e.t, status, st, "%s %s: %s", method, path, b)
	if code != "" {
		var er struct{ Code, Description string }
		require.NoError(e.t, json.Unmarshal(b, &er))
		require.Equalf(e.t, code, er.Code, "%s %s: %s", method, path, b)
		require.NotEmpty(e.t, er.Description)
	}
	if out != nil {
		require.NoErrorf(e.t, json.Unmarshal(b, out), "%s", b)
	}
	return b
}

func (e *deviceEnv) admin(method, path string, body any) {
	e.t.Helper()
	st, b := e.call(method, path, "", body)
	require.Truef(e.t, st/100 == 2, "%s %s: %d %s", method, path, st, b)
}

func (e *deviceEnv) token(vin string) string {
	e.t.Helper()
	var out struct{ Token string }
	e.want(200, "", "POST", "/vehicles/"+vin+"/token", "", nil, &out)
	require.NotEmpty(e.t, out.Token)
	return out.Token
}

func (e *deviceEnv) uploadBinary(name, version string, content []byte) {
	e.t.Helper()
	body, ct := multipartBody(e.t, "file", content)
	req, err := http.NewRequest("PUT", e.srv.URL+"/api/v1/packages/"+name+"/"+version, body)
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", ct)
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	resp.Body.Close()
	require.Equal(e.t, 204, resp.StatusCode)
}

func payloadBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// deviceFleet: vehicles vin1, vin2; maps 1.0.0 (700 bytes), nav 2.0.0 (1500 bytes) depending on maps,
// radio 1.0.0 (100 bytes); every package is for every vehicle.
func (e *deviceEnv) deviceFleet(maps, nav, radio []byte) {
	for _, v := range []string{vinA, vinB} {
		e.admin("PUT", "/vehicles/"+v, nil)
	}
	e.uploadBinary("maps", "1.0.0", maps)
	e.uploadBinary("nav", "2.0.0", nav)
	e.uploadBinary("radio", "1.0.0", radio)
	e.admin("PUT", "/packages/nav/2.0.0/dependencies/maps/1.0.0", nil)
	e.admin("POST", "/filters", map[string]any{"name": "everyone", "expression": "TRUE"})
	e.admin("PUT", "/packages/nav/2.0.0/filter/everyone", nil)
	e.admin("PUT", "/packages/radio/1.0.0/filter/everyone", nil)
}

func (e *deviceEnv) queue(name, version string, priority int) string {
	e.t.Helper()
	var out struct{ ID string }
	e.want(200, "", "POST", "/update_requests", "", map[string]any{"packageId": map[string]string{"name": name, "version": version}, "priority": priority}, &out)
	return out.ID
}

type pollRow struct {
	UpdateID   string
	RequestID  string
	PackageID  resolver.PackageID
	InstallPos int
	Status     string
}

type chunkBody struct {
	Index  int
	Data   []byte
	SHA256 string
}

func TestDeviceTokens(t *testing.T) {
	e := newDeviceEnv(t, 512)
	e.admin("PUT", "/vehicles/"+vinA, nil)
	e.admin("PUT", "/vehicles/"+vinB, nil)
	e.want(404, "missing_vehicle", "POST", "/vehicles/"+vinC+"/token", "", nil, nil)
	e.want(400, "invalid_entity", "POST", "/vehicles/NOTAVIN/token", "", nil, nil)
	ta, tb := e.token(vinA), e.token(vinB)
	assert.NotEqual(t, ta, tb)

	e.want(401, "not_authenticated", "GET", "/vehicle_updates/"+vinA, "", nil, nil)
	e.want(401, "invalid_token", "GET", "/vehicle_updates/"+vinA, "sotadev_not-a-token", nil, nil)
	e.want(401, "invalid_token", "GET", "/vehicle_updates/"+vinA, "sota_an-api-token-shape", nil, nil)
	// a token of one VIN never works for another, on any route
	for _, p := range []string{"", "/notification"} {
		e.want(403, "wrong_vehicle", "GET", "/vehicle_updates/"+vinA+p, tb, nil, nil)
	}
	e.want(403, "wrong_vehicle", "PUT", "/vehicle_updates/"+vinA+"/installed", tb, []any{}, nil)
	var rows []pollRow
	e.want(200, "", "GET", "/vehicle_updates/"+vinA, ta, nil, &rows)
	assert.Empty(t, rows)

	// only the hash is stored: the secret appears nowhere in the store
	require.NoError(t, e.db.View(func(x store.Txn) error {
		return x.Iterate([]byte("auth/"), func(k, v []byte) error {
			assert.NotContains(t, string(k)+string(v), ta)
			return nil
		})
	}))

	// minting again rotates; the token survives a restart
	e.restart()
	e.want(200, "", "GET", "/vehicle_updates/"+vinA, ta, nil, &rows)
	ta2 := e.token(vinA)
	e.want(401, "invalid_token", "GET", "/vehicle_updates/"+vinA, ta, nil, nil)
	e.want(200, "", "GET", "/vehicle_updates/"+vinA, ta2, nil, &rows)

	// lastSeen is set by the poll
	var v struct{ LastSeen *string }
	e.want(200, "", "GET", "/vehicles/"+vinA, "", nil, &v)
	assert.NotNil(t, v.LastSeen)

	// deleting a vehicle revokes its token, also when the vehicle is created again
	e.want(200, "", "GET", "/vehicle_updates/"+vinB, tb, nil, &rows) // cached as live
	e.admin("DELETE", "/vehicles/"+vinB, nil)
	e.want(401, "invalid_token", "GET", "/vehicle_updates/"+vinB, tb, nil, nil)
	e.want(401, "invalid_token", "GET", "/vehicle_updates/"+vinB+"/notification", tb, nil, nil)
	e.admin("PUT", "/vehicles/"+vinB, nil)
	e.want(401, "invalid_token", "GET", "/vehicle_updates/"+vinB, tb, nil, nil)
	e.restart()
	e.want(401, "invalid_token", "GET", "/vehicle_updates/"+vinB, tb, nil, nil)
	tb2 := e.token(vinB)
	e.want(200, "", "GET", "/vehicle_updates/"+vinB, tb2, nil, &rows)
	e.want(200, "", "GET", "/vehicle_updates/"+vinA, ta2, nil, &rows) // another vehicle's token is untouched
}

// The whole device flow of one vehicle: poll, notification, start, chunks with a duplicate and a
// server restart in the middle, acks, finalize, report, the installed set, the next update.
func TestDeviceTransferFlow(t *testing.T) {
	e := newDeviceEnv(t, 512)
	maps, nav, radio := payloadBytes(1, 700), payloadBytes(2, 1500), payloadBytes(3, 100)
	e.deviceFleet(maps, nav, radio)
	e.admin("POST", "/data_plans", map[string]any{"id": "fleet"})
	e.admin("POST", "/data_plans/fleet/billing_cycles", map[string]any{"start": "2020-01-01T00:00:00Z", "poolBytes": 1 << 30})
	e.admin("PUT", "/vehicles/"+vinA+"/data_plan", map[string]any{"id": "fleet"})
	navReq := e.queue("nav", "2.0.0", 1)
	radioReq := e.queue("radio", "1.0.0", 5)
	tok := e.token(vinA)
	base := "/vehicle_updates/" + vinA

	var rows []pollRow
	e.want(200, "", "GET", base, tok, nil, &rows)
	require.Len(t, rows, 2)
	assert.Equal(t, navReq, rows[0].RequestID)
	assert.Equal(t, "nav", rows[0].PackageID.Name)
	assert.Equal(t, 0, rows[0].InstallPos)
	assert.Equal(t, radioReq, rows[1].RequestID)
	assert.Equal(t, 1, rows[1].InstallPos)
	id := rows[0].UpdateID

	var note struct {
		UpdateAvailable *struct {
			UpdateID      string
			Packages      []resolver.PackageID
			Size          int64
			DownloadIndex string
		}
	}
	e.want(200, "", "GET", base+"/notification", tok, nil, &note)
	require.NotNil(t, note.UpdateAvailable)
	assert.Equal(t, id, note.UpdateAvailable.UpdateID)
	assert.Equal(t, []resolver.PackageID{{Name: "maps", Version: "1.0.0"}, {Name: "nav", Version: "2.0.0"}}, note.UpdateAvailable.Packages)
	assert.EqualValues(t, 2200, note.UpdateAvailable.Size)

	e.want(409, "transfer_not_started", "GET", base+"/"+id+"/chunk", tok, nil, nil)
	var tr engine.Transfer
	e.want(200, "", "POST", base+"/"+id+"/start", tok, nil, &tr)
	whole := append(append([]byte{}, maps...), nav...)
	assert.Equal(t, 512, tr.ChunkSize)
	assert.Equal(t, 5, tr.ChunksCount)
	assert.EqualValues(t, 2200, tr.Size)
	assert.Equal(t, sha(whole), tr.SHA256)
	require.Len(t, tr.Packages, 2)
	assert.Equal(t, sha(maps), tr.Packages[0].SHA256)
	e.want(200, "", "GET", base, tok, nil, &rows)
	assert.Equal(t, "inFlight", rows[0].Status)

	got := map[int][]byte{}
	served := 0
	fetch := func() chunkBody {
		var c chunkBody
		e.want(200, "", "GET", base+"/"+id+"/chunk", tok, nil, &c)
		served += len(c.Data)
		assert.Equal(t, sha(c.Data), c.SHA256)
		got[c.Index] = c.Data
		return c
	}
	c := fetch()
	assert.Equal(t, 1, c.Index)
	c = fetch() // the ack was lost: the same chunk again
	assert.Equal(t, 1, c.Index)
	var next struct{ Next *int }
	e.want(200, "", "POST", base+"/"+id+"/ack", tok, map[string]any{"chunks": []int{1}}, &next)
	require.NotNil(t, next.Next)
	assert.Equal(t, 2, *next.Next)
	e.want(200, "", "POST", base+"/"+id+"/ack", tok, map[string]any{"chunks": []int{1, 1}}, &next)
	assert.Equal(t, 2, *next.Next)
	// out of range: 400 and nothing recorded
	e.want(400, "invalid_entity", "POST", base+"/"+id+"/ack", tok, map[string]any{"chunks": []int{2, 6}}, nil)
	e.want(400, "invalid_entity", "POST", base+"/"+id+"/ack", tok, map[string]any{"chunks": []int{0}}, nil)
	e.want(404, "missing_chunk", "GET", base+"/"+id+"/chunks/6", tok, nil, nil)
	e.want(404, "missing_chunk", "GET", base+"/"+id+"/chunks/0", tok, nil, nil)
	e.want(400, "invalid_entity", "GET", base+"/"+id+"/chunks/x", tok, nil, nil)

	var inc struct {
		Code, Description string
		Missing           []int
	}
	e.want(400, "incomplete_download", "POST", base+"/"+id+"/finalize", tok, map[string]any{"chunks": 5, "sha256": sha(whole)}, &inc)
	assert.Contains(t, inc.Description, "Incomplete Download")
	assert.Equal(t, []int{2, 3, 4, 5}, inc.Missing)

	// the server restarts; the device reconnects and continues at the lowest unacknowledged chunk
	e.restart()
	e.want(200, "", "POST", base+"/"+id+"/start", tok, nil, &tr)
	assert.Equal(t, 5, tr.ChunksCount)
	c = fetch()
	assert.Equal(t, 2, c.Index)
	e.want(200, "", "POST", base+"/"+id+"/ack", tok, map[string]any{"chunks": []int{2}}, nil)
	c = fetch()
	assert.Equal(t, 3, c.Index)
	var c5 chunkBody
	e.want(200, "", "GET", base+"/"+id+"/chunks/5", tok, nil, &c5)
	served += len(c5.Data)
	assert.Len(t, c5.Data, 2200-4*512)
	got[5] = c5.Data
	e.want(200, "", "POST", base+"/"+id+"/ack", tok, map[string]any{"chunks": []int{3, 5}}, &next)
	assert.Equal(t, 4, *next.Next)
	fetch()
	e.want(200, "", "POST", base+"/"+id+"/ack", tok, map[string]any{"chunks": []int{4}}, &next)
	assert.Nil(t, next.Next)
	st, _ := e.call("GET", base+"/"+id+"/chunk", tok, nil)
	assert.Equal(t, 204, st)

	var assembled []byte
	for i := 1; i <= 5; i++ {
		assembled = append(assembled, got[i]...)
	}
	require.Equal(t, whole, assembled)

	e.want(400, "checksum_mismatch", "POST", base+"/"+id+"/finalize", tok, map[string]any{"chunks": 5, "sha256": sha(maps)}, nil)
	e.want(400, "incomplete_download", "POST", base+"/"+id+"/finalize", tok, map[string]any{"chunks": 4, "sha256": sha(whole)}, nil)
	var msg string
	e.want(200, "", "POST", base+"/"+id+"/finalize", tok, map[string]any{"chunks": 5, "sha256": sha(whole)}, &msg)
	assert.Equal(t, "Download of nav-2.0.0 complete", msg)

	// Range download of the payload
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1"+base+"/"+id+"/download", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Range", "bytes=600-899")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 206, resp.StatusCode)
	assert.Equal(t, `"`+sha(whole)+`"`, resp.Header.Get("ETag"))
	assert.Equal(t, whole[600:900], part)
	served += len(part)

	// every byte sent counted against the data plan
	var cycles []struct{ UsedBytes int64 }
	e.want(200, "", "GET", "/data_plans/fleet/billing_cycles", "", nil, &cycles)
	require.Len(t, cycles, 1)
	assert.EqualValues(t, served, cycles[0].UsedBytes)
	st2, err := e.eng.TransferStatus(vinA, id)
	require.NoError(t, err)
	assert.Equal(t, 6, st2.Served) // chunk 1 twice, then 2, 3, 5, 4
	assert.EqualValues(t, served, st2.BytesSent)

	e.want(200, "", "POST", base+"/"+id, tok, map[string]any{"operation_results": []map[string]any{
		{"id": id, "result_code": 0, "result_text": "installed"}}}, &msg)
	assert.Equal(t, "nav-2.0.0 success", msg)
	var conflict struct{ Description string }
	e.want(409, "already_reported", "POST", base+"/"+id, tok, map[string]any{"operation_results": []map[string]any{
		{"id": id, "result_code": 0}}}, &conflict)
	assert.Equal(t, "nav-2.0.0 failed: the update is already finished", conflict.Description)
	e.want(409, "update_not_active", "POST", base+"/"+id+"/start", tok, nil, nil)
	e.want(409, "update_not_active", "GET", base+"/"+id+"/chunks/1", tok, nil, nil)
	e.want(409, "update_not_active", "GET", base+"/"+id+"/download", tok, nil, nil)

	var installed []resolver.PackageID
	e.want(200, "", "GET", "/vehicles/"+vinA+"/package", "", nil, &installed)
	assert.ElementsMatch(t, []resolver.PackageID{{Name: "maps", Version: "1.0.0"}, {Name: "nav", Version: "2.0.0"}}, installed)

	// the next update is offered
	e.want(200, "", "GET", base+"/notification", tok, nil, &note)
	require.NotNil(t, note.UpdateAvailable)
	assert.Equal(t, []resolver.PackageID{{Name: "radio", Version: "1.0.0"}}, note.UpdateAvailable.Packages)

	var hist []struct {
		UpdateID   string
		Status     string
		ResultCode *int
		ResultText string
	}
	e.want(200, "", "GET", "/vehicles/"+vinA+"/history", "", nil, &hist)
	require.Len(t, hist, 2)
	assert.Equal(t, "finished", hist[0].Status)
	require.NotNil(t, hist[0].ResultCode)
	assert.Equal(t, 0, *hist[0].ResultCode)
	assert.Equal(t, "OK: installed", hist[0].ResultText)
	var counts struct{ Counts engine.Counts }
	e.want(200, "", "GET", "/update_requests/"+navReq, "", nil, &counts)
	assert.Equal(t, engine.Counts{Pending: 1, Finished: 1}, counts.Counts)
}

// Negative paths: another vehicle's update id, reports that fail, a report for a finished update,
// cancel, and the answer to get-all-packages.
func TestDeviceReportsAndNegatives(t *testing.T) {
	e := newDeviceEnv(t, 512)
	e.deviceFleet(payloadBytes(1, 700), payloadBytes(2, 1500), payloadBytes(3, 100))
	radioReq := e.queue("radio", "1.0.0", 1)
	navReq := e.queue("nav", "2.0.0", 5)
	ta, tb := e.token(vinA), e.token(vinB)
	var rows []pollRow
	e.want(200, "", "GET", "/vehicle_updates/"+vinB, tb, nil, &rows)
	require.Len(t, rows, 2)
	otherID := rows[0].UpdateID
	e.want(200, "", "GET", "/vehicle_updates/"+vinA, ta, nil, &rows)
	require.Len(t, rows, 2)
	radioID, navID := rows[0].UpdateID, rows[1].UpdateID
	assert.NotEqual(t, otherID, radioID)

	a := "/vehicle_updates/" + vinA + "/"
	for _, r := range []struct{ method, path string }{
		{"POST", "start"}, {"POST", "cancel"}, {"GET", "chunk"}, {"GET", "chunks/1"}, {"GET", "download"}, {"POST", "finalize"},
	} {
		body := any(nil)
		if r.method == "POST" {
			body = map[string]any{"chunks": 1, "sha256": ""}
		}
		e.want(404, "missing_update", r.method, a+otherID+"/"+r.path, ta, body, nil)
	}
	e.want(404, "missing_update", "POST", a+otherID, ta, map[string]any{"operation_results": []map[string]any{{"id": "x", "result_code": 0}}}, nil)
	e.want(404, "missing_update", "POST", a+"not-a-uuid/start", ta, nil, nil)
	e.want(400, "invalid_entity", "POST", a+radioID, ta, map[string]any{"operation_results": []map[string]any{}}, nil)
	e.want(400, "invalid_entity", "POST", a+radioID, ta, map[string]any{"operation_results": []map[string]any{{"id": "x", "result_code": 20}}}, nil)

	// the user declines radio (reported before any transfer): failed with USER_DECLINED, nothing installed
	var msg string
	e.want(200, "", "POST", a+radioID, ta, map[string]any{"operation_results": []map[string]any{
		{"id": radioID, "result_code": 0, "result_text": "radio ok"}, {"id": radioID, "result_code": 13, "result_text": "user said no"}}}, &msg)
	assert.Equal(t, "radio-1.0.0 failed", msg)
	e.want(409, "already_reported", "POST", a+radioID, ta, map[string]any{"operation_results": []map[string]any{{"id": "x", "result_code": 0}}}, nil)
	var installed []resolver.PackageID
	e.want(200, "", "GET", "/vehicles/"+vinA+"/package", "", nil, &installed)
	assert.Empty(t, installed)
	var hist []struct {
		UpdateID   string
		Status     string
		ResultCode *int
		ResultText string
	}
	e.want(200, "", "GET", "/vehicles/"+vinA+"/history", "", nil, &hist)
	require.Len(t, hist, 2)
	assert.Equal(t, "failed", hist[0].Status)
	assert.Equal(t, 13, *hist[0].ResultCode)
	assert.Equal(t, "USER_DECLINED: radio ok; user said no", hist[0].ResultText)

	// validation failed after the download
	e.want(200, "", "POST", a+navID+"/start", ta, nil, nil)
	e.want(200, "", "POST", a+navID, ta, map[string]any{"operation_results": []map[string]any{{"id": navID, "result_code": 3, "result_text": "bad signature"}}}, &msg)
	assert.Equal(t, "nav-2.0.0 failed", msg)
	var counts struct{ Counts engine.Counts }
	e.want(200, "", "GET", "/update_requests/"+navReq, "", nil, &counts)
	assert.Equal(t, engine.Counts{Pending: 1, Failed: 1}, counts.Counts)
	e.want(200, "", "GET", "/update_requests/"+radioReq, "", nil, &counts)
	assert.Equal(t, engine.Counts{Pending: 1, Failed: 1}, counts.Counts)

	// vehicle B cancels; a second cancel is a conflict
	b := "/vehicle_updates/" + vinB + "/"
	e.want(200, "", "POST", b+otherID+"/cancel", tb, nil, nil)
	e.want(409, "update_not_active", "POST", b+otherID+"/cancel", tb, nil, nil)
	e.want(200, "", "GET", "/vehicle_updates/"+vinB, tb, nil, &rows)
	assert.Len(t, rows, 1)

	// nothing left for A: 204
	st, _ := e.call("GET", "/vehicle_updates/"+vinA+"/notification", ta, nil)
	assert.Equal(t, 204, st)

	// GET_ALL_PACKAGES
	var gap struct{ ID string }
	e.want(200, "", "POST", "/vehicles/"+vinA+"/get_all_packages", "", nil, &gap)
	var note struct{ GetAllPackages *struct{ ID string } }
	e.want(200, "", "GET", "/vehicle_updates/"+vinA+"/notification", ta, nil, &note)
	require.NotNil(t, note.GetAllPackages)
	e.want(409, "not_an_install", "POST", a+note.GetAllPackages.ID+"/start", ta, nil, nil)
	e.want(400, "invalid_entity", "PUT", "/vehicle_updates/"+vinA+"/installed", ta, []map[string]string{{"name": "x", "version": "1.0"}}, nil)
	e.want(204, "", "PUT", "/vehicle_updates/"+vinA+"/installed", ta, []map[string]string{{"name": "radio", "version": "1.0.0"}, {"name": "foreign", "version": "0.1.0"}}, nil)
	e.want(200, "", "GET", "/vehicles/"+vinA+"/package", "", nil, &installed)
	assert.ElementsMatch(t, []resolver.PackageID{{Name: "radio", Version: "1.0.0"}, {Name: "foreign", Version: "0.1.0"}}, installed)
	e.want(200, "", "GET", "/update_requests/"+gap.ID, "", nil, &counts)
	assert.Equal(t, engine.Counts{Finished: 1}, counts.Counts)
	st, _ = e.call("GET", "/vehicle_updates/"+vinA+"/notification", ta, nil)
	assert.Equal(t, 204, st)
}

// A binary replaced during a transfer: the session keeps serving the bytes it announced, blob
// collection leaves them alone while the update is in flight and removes them after. A package
// without a binary cannot be started.
func TestDeviceTransferKeepsReplacedBinary(t *testing.T) {
	e := newDeviceEnv(t, 512)
	maps, nav, radio := payloadBytes(1, 700), payloadBytes(2, 1500), payloadBytes(3, 100)
	e.deviceFleet(maps, nav, radio)
	e.queue("radio", "1.0.0", 1)
	tok := e.token(vinA)
	var rows []pollRow
	e.want(200, "", "GET", "/vehicle_updates/"+vinA, tok, nil, &rows)
	base := "/vehicle_updates/" + vinA + "/" + rows[0].UpdateID
	var tr engine.Transfer
	e.want(200, "", "POST", base+"/start", tok, nil, &tr)
	assert.Equal(t, sha(radio), tr.SHA256)

	e.uploadBinary("radio", "1.0.0", payloadBytes(9, 300)) // replaced
	old := e.dir + "/blobs/sha256/" + sha(radio)[:2] + "/" + sha(radio)
	long := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(old, long, long))
	_, err := e.eng.CollectBlobs()
	require.NoError(t, err)
	var c chunkBody
	e.want(200, "", "GET", base+"/chunk", tok, nil, &c)
	assert.Equal(t, radio, c.Data)

	e.want(200, "", "POST", base, tok, map[string]any{"operation_results": []map[string]any{{"id": "x", "result_code": 0}}}, nil)
	n, err := e.eng.CollectBlobs()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = os.Stat(old)
	assert.True(t, os.IsNotExist(err))

	// a package without a binary is refused before anything is queued
	e.admin("PUT", "/packages/bare/1.0.0", map[string]any{})
	e.admin("PUT", "/packages/bare/1.0.0/filter/everyone", nil)
	e.want(409, "missing_binary", "POST", "/update_requests", "", map[string]any{"packageId": map[string]string{"name": "bare", "version": "1.0.0"}}, nil)
	e.want(200, "", "GET", "/vehicle_updates/"+vinA, tok, nil, &rows)
	assert.Empty(t, rows, "nothing was queued")
}

// The hand-written poll encoding is byte for byte what encoding/json writes.
func TestPollRowsEncodingMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 1, 21, 0, 0, 123456789, time.UTC)
	rows := []engine.PollRow{
		{UpdateID: "0b6b3c2e-8f0e-5c59-9a57-1b2a3c4d5e6f", RequestID: "r", PackageID: &resolver.PackageID{Name: "nav", Version: "1.2.3-rc.1+b7"}, Status: engine.InFlight, CreatedAt: at},
		{UpdateID: "a\"b\\c<d>&\u00e9\x01", RequestID: "", InstallPos: 1, Status: engine.Pending, CreatedAt: at.Add(time.Hour).In(time.FixedZone("x", 3600))},
		{UpdateID: "x", InstallPos: 2, Status: engine.Pending, CreatedAt: time.Unix(0, 0).UTC()},
	}
	for n := 0; n <= len(rows); n++ {
		want, err := json.Marshal(rows[:n])
		require.NoError(t, err)
		assert.Equal(t, string(want), string(appendPollRows(nil, rows[:n])))
	}
}

// A device that fetches and acknowledges from several connections at once: duplicates are harmless,
// nothing fails, and the session ends complete.
func TestDeviceConcurrentChunksAndAcks(t *testing.T) {
	e := newDeviceEnv(t, 512)
	maps, nav, radio := payloadBytes(1, 700), payloadBytes(2, 20000), payloadBytes(3, 100)
	e.deviceFleet(maps, nav, radio)
	e.admin("POST", "/data_plans", map[string]any{"id": "fleet"})
	e.admin("POST", "/data_plans/fleet/billing_cycles", map[string]any{"start": "2020-01-01T00:00:00Z", "poolBytes": 1 << 30})
	e.admin("PUT", "/vehicles/"+vinA+"/data_plan", map[string]any{"id": "fleet"})
	e.queue("nav", "2.0.0", 1)
	tok := e.token(vinA)
	var rows []pollRow
	e.want(200, "", "GET", "/vehicle_updates/"+vinA, tok, nil, &rows)
	base := "/vehicle_updates/" + vinA + "/" + rows[0].UpdateID
	var tr engine.Transfer
	e.want(200, "", "POST", base+"/start", tok, nil, &tr)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int][]byte{}
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				st, b := e.call("GET", base+"/chunk", tok, nil)
				if st == 204 {
					return
				}
				if !assert.Equal(t, 200, st, "%s", b) {
					return
				}
				var c chunkBody
				json.Unmarshal(b, &c)
				mu.Lock()
				got[c.Index] = c.Data
				mu.Unlock()
				st, b = e.call("POST", base+"/ack", tok, map[string]any{"chunks": []int{c.Index}})
				if !assert.Equal(t, 200, st, "%s", b) {
					return
				}
			}
		}()
	}
	wg.Wait()
	var whole []byte
	for i := 1; i <= tr.ChunksCount; i++ {
		whole = append(whole, got[i]...)
	}
	require.Equal(t, tr.SHA256, sha(whole))
	e.want(200, "", "POST", base+"/finalize", tok, map[string]any{"chunks": tr.ChunksCount, "sha256": tr.SHA256}, nil)
	st, err := e.eng.TransferStatus(vinA, rows[0].UpdateID)
	require.NoError(t, err)
	assert.Equal(t, tr.ChunksCount, st.Acked)
	assert.GreaterOrEqual(t, st.Served, tr.ChunksCount)
	var cycles []struct{ UsedBytes int64 }
	e.want(200, "", "GET", "/data_plans/fleet/billing_cycles", "", nil, &cycles)
	assert.Equal(t, st.BytesSent, cycles[0].UsedBytes, "every byte served is on the plan")
}
