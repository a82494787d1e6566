package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/resolver"
)

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func testVIN(i int) string { return fmt.Sprintf("WDD%014d", i) }

// fleet registers n vehicles WDD000…, package nav 2.0.0 depending on maps 1.0.0, and associates nav
// with a filter matching every vehicle.
func (e *coreEnv) fleet(n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		e.ok("PUT", "/api/v1/vehicles/"+testVIN(i), nil)
	}
	e.ok("PUT", "/api/v1/packages/nav/2.0.0", map[string]any{"description": "Navigation", "vendor": "ACME"})
	e.ok("PUT", "/api/v1/packages/maps/1.0.0", map[string]any{"description": "Maps"})
	e.ok("PUT", "/api/v1/packages/radio/1.0.0", map[string]any{})
	e.binaries(pkgID("nav", "2.0.0"), pkgID("maps", "1.0.0"), pkgID("radio", "1.0.0"))
	e.ok("PUT", "/api/v1/packages/nav/2.0.0/dependencies/maps/1.0.0", nil)
	e.ok("POST", "/api/v1/filters", map[string]any{"name": "everyone", "expression": `vin_matches "^WDD"`})
	e.ok("PUT", "/api/v1/packages/nav/2.0.0/filter/everyone", nil)
	e.ok("PUT", "/api/v1/packages/radio/1.0.0/filter/everyone", nil)
}

// ok sends the request and requires a 2xx answer.
func (e *coreEnv) ok(method, path string, body any) {
	e.t.Helper()
	var raw any
	resp := e.do(method, path, body, &raw)
	require.Truef(e.t, resp.StatusCode/100 == 2, "%s %s: %d %v", method, path, resp.StatusCode, raw)
}

func (e *coreEnv) queueReq(body map[string]any) map[string]any {
	e.t.Helper()
	var out map[string]any
	resp := e.do("POST", "/api/v1/update_requests", body, &out)
	require.Equalf(e.t, 200, resp.StatusCode, "%v", out)
	return out
}

func (e *coreEnv) counts(id string) map[string]any {
	e.t.Helper()
	var r map[string]any
	resp := e.do("GET", "/api/v1/update_requests/"+id, nil, &r)
	require.Equal(e.t, 200, resp.StatusCode)
	return r["counts"].(map[string]any)
}

func cnt(p, f, fl, in, c float64) map[string]any {
	return map[string]any{"pending": p, "finished": f, "failed": fl, "inFlight": in, "canceled": c}
}

// setStatus moves a vehicle's update as the device API would.
func (e *coreEnv) setStatus(vin, updateID string, to engine.Status) {
	e.t.Helper()
	_, err := e.deps.Engine.SetStatus(vin, updateID, to, nil, "")
	require.NoError(e.t, err)
}

func (e *coreEnv) vehicleQueue(vin string) []map[string]any {
	e.t.Helper()
	var q []map[string]any
	resp := e.do("GET", "/api/v1/vehicles/"+vin+"/queue", nil, &q)
	require.Equal(e.t, 200, resp.StatusCode)
	return q
}

func multipartBody(t *testing.T, field string, content []byte) (*bytes.Buffer, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	require.NoError(t, w.WriteField("note", "ignored"))
	f, err := w.CreateFormFile(field, "pkg.bin")
	require.NoError(t, err)
	_, err = f.Write(content)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return &b, w.FormDataContentType()
}

// binaries uploads a small binary for each package (queuing refuses install lists without one).
func (e *coreEnv) binaries(ids ...map[string]any) {
	e.t.Helper()
	for _, id := range ids {
		path := fmt.Sprintf("/api/v1/packages/%s/%s", id["name"], id["version"])
		st, out := e.upload(path, "file", []byte("binary of "+path))
		require.Equalf(e.t, 204, st, "upload %s: %v", path, out)
	}
}

func (e *coreEnv) upload(path string, field string, content []byte) (int, map[string]any) {
	e.t.Helper()
	body, ct := multipartBody(e.t, field, content)
	req, err := http.NewRequest("PUT", e.srv.URL+path, body)
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = jsonUnmarshal(b, &out)
	return resp.StatusCode, out
}

func blobFiles(t *testing.T, dir string) []string {
	var files []string
	require.NoError(t, filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, filepath.Base(p))
		}
		return err
	}))
	return files
}

func TestCorePackageBinaryUploadAndDownload(t *testing.T) {
	e := newCoreEnv(t)
	content := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	sum := sha256.Sum256(content)
	hexsum := hex.EncodeToString(sum[:])

	// Checksum mismatch: 400 and nothing is kept.
	st, out := e.upload("/api/v1/packages/fw/1.0.0?checksum="+hex.EncodeToString(make([]byte, 32)), "file", content)
	assert.Equal(t, 400, st)
	assert.Equal(t, "checksum_mismatch", out["code"])
	assert.Empty(t, blobFiles(t, e.dir))
	st, _ = e.status("GET", "/api/v1/packages/fw/1.0.0", nil)
	assert.Equal(t, 404, st, "the package was not created")
	for _, bad := range []string{"/api/v1/packages/fw/1.0.0?checksum=xyz", "/api/v1/packages/fw/1.0?checksum=" + hexsum, "/api/v1/packages/f%20w/1.0.0"} {
		st, out = e.upload(bad, "file", content)
		assert.Equalf(t, 400, st, "%s", bad)
		assert.Equal(t, "invalid_entity", out["code"])
	}
	st, out = e.upload("/api/v1/packages/fw/1.0.0", "other", content)
	assert.Equal(t, 400, st, "no file field")
	assert.Empty(t, blobFiles(t, e.dir))
	// Metadata the package cannot take refuses the upload before its bytes are stored.
	st, out = e.upload("/api/v1/packages/fw/1.0.0?description="+strings.Repeat("d", 10001), "file", content)
	assert.Equal(t, 400, st)
	assert.Equal(t, "invalid_entity", out["code"])
	assert.Empty(t, blobFiles(t, e.dir))
	st, _ = e.status("GET", "/api/v1/packages/fw/1.0.0", nil)
	assert.Equal(t, 404, st, "the package was not created")

	// Success: 204, package created with its metadata, size and sha256 recorded.
	st, out = e.upload("/api/v1/packages/fw/1.0.0?checksum="+hexsum+"&description=Firmware&vendor=ACME", "file", content)
	require.Equalf(t, 204, st, "%v", out)
	var pkg map[string]any
	resp := e.do("GET", "/api/v1/packages/fw/1.0.0", nil, &pkg)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, float64(len(content)), pkg["size"])
	assert.Equal(t, hexsum, pkg["checkSum"])
	assert.Equal(t, "/api/v1/packages/fw/1.0.0/download", pkg["uri"])
	assert.Equal(t, "Firmware", pkg["description"])
	assert.Equal(t, "ACME", pkg["vendor"])
	assert.Equal(t, []string{hexsum}, blobFiles(t, e.dir), "stored content-addressed")
	assert.FileExists(t, filepath.Join(e.dir, "blobs", "sha256", hexsum[:2], hexsum))

	// The same bytes for another package share the file; without a checksum it is computed.
	st, _ = e.upload("/api/v1/packages/fw-copy/1.0.0", "file", content)
	require.Equal(t, 204, st)
	assert.Equal(t, []string{hexsum}, blobFiles(t, e.dir))

	// Download, whole and by range.
	resp, err := http.Get(e.srv.URL + "/api/v1/packages/fw/1.0.0/download")
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, content, got)
	assert.Equal(t, `"`+hexsum+`"`, resp.Header.Get("ETag"))
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/packages/fw/1.0.0/download", nil)
	req.Header.Set("Range", "bytes=100-199")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 206, resp.StatusCode)
	assert.Equal(t, content[100:200], got)
	assert.Equal(t, fmt.Sprintf("bytes 100-199/%d", len(content)), resp.Header.Get("Content-Range"))

	e.ok("PUT", "/api/v1/packages/empty/1.0.0", map[string]any{})
	st, code := e.status("GET", "/api/v1/packages/empty/1.0.0/download", nil)
	assert.Equal(t, 404, st)
	assert.Equal(t, "missing_binary", code)
	st, _ = e.status("GET", "/api/v1/packages/ghost/1.0.0/download", nil)
	assert.Equal(t, 404, st)

	// The JSON form of the same route still sets metadata only.
	e.ok("PUT", "/api/v1/packages/fw/1.0.0", map[string]any{"description": "Firmware 1", "vendor": "ACME"})
	e.do("GET", "/api/v1/packages/fw/1.0.0", nil, &pkg)
	assert.Equal(t, "Firmware 1", pkg["description"])
	assert.Equal(t, hexsum, pkg["checkSum"], "the binary stays recorded")
}

func TestCoreVehicleDataPlanTrafficAndGetAllPackages(t *testing.T) {
	e := newCoreEnv(t)
	vin := testVIN(1)
	e.ok("PUT", "/api/v1/vehicles/"+vin, nil)
	e.ok("POST", "/api/v1/data_plans", map[string]any{"id": "Basic"})

	// VIN_SET_DATA_PLAN X1, X2.
	st, code := e.status("PUT", "/api/v1/vehicles/WDD99999999999999/data_plan", map[string]any{"id": "Basic"})
	assert.Equal(t, 404, st)
	assert.Equal(t, "missing_vehicle", code)
	st, code = e.status("PUT", "/api/v1/vehicles/"+vin+"/data_plan", map[string]any{"id": "gold"})
	assert.Equal(t, 404, st)
	assert.Equal(t, "missing_data_plan", code)

	// PLAN_ADD_TRAFFIC A1: no plan → success with nulls.
	var tr map[string]any
	resp := e.do("POST", "/api/v1/vehicles/"+vin+"/traffic", map[string]any{"bytes": 10}, &tr)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, map[string]any{"dataPlan": nil, "cycleStart": nil, "poolBytes": nil, "usedBytes": nil}, tr)

	var set map[string]any
	resp = e.do("PUT", "/api/v1/vehicles/"+vin+"/data_plan", map[string]any{"id": "basic"}, &set)
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "Basic", set["dataPlan"])
	var v map[string]any
	e.do("GET", "/api/v1/vehicles/"+vin, nil, &v)
	assert.Equal(t, "Basic", v["dataPlan"], "the vehicle shows its plan")

	// A2: a plan without cycles → success, plan only.
	e.do("POST", "/api/v1/vehicles/"+vin+"/traffic", map[string]any{"bytes": 10}, &tr)
	assert.Equal(t, map[string]any{"dataPlan": "Basic", "cycleStart": nil, "poolBytes": nil, "usedBytes": nil}, tr)

	// The cycle with the latest start before now gets the bytes.
	e.ok("POST", "/api/v1/data_plans/basic/billing_cycles", map[string]any{"start": "2020-01-01T00:00:00Z", "poolBytes": 100})
	e.ok("POST", "/api/v1/data_plans/basic/billing_cycles", map[string]any{"start": "2021-01-01T00:00:00Z", "poolBytes": 1000})
	e.ok("POST", "/api/v1/data_plans/basic/billing_cycles", map[string]any{"start": "2999-01-01T00:00:00Z", "poolBytes": 5})
	e.do("POST", "/api/v1/vehicles/"+vin+"/traffic", map[string]any{"bytes": 250}, &tr)
	e.do("POST", "/api/v1/vehicles/"+vin+"/traffic", map[string]any{"bytes": 50}, &tr)
	assert.Equal(t, map[string]any{"dataPlan": "Basic", "cycleStart": "2021-01-01T00:00:00Z", "poolBytes": 1000.0, "usedBytes": 300.0}, tr)
	var cycles []map[string]any
	e.do("GET", "/api/v1/data_plans/basic/billing_cycles", nil, &cycles)
	assert.Equal(t, 0.0, cycles[0]["usedBytes"])
	assert.Equal(t, 300.0, cycles[1]["usedBytes"])

	// X1 and bad input.
	st, code = e.status("POST", "/api/v1/vehicles/WDD99999999999999/traffic", map[string]any{"bytes": 1})
	assert.Equal(t, 404, st)
	assert.Equal(t, "missing_vehicle", code)
	for _, bad := range []any{map[string]any{"bytes": -1}, map[string]any{}, `{"bytes":"many"}`} {
		st, _ = e.status("POST", "/api/v1/vehicles/"+vin+"/traffic", bad)
		assert.Equalf(t, 400, st, "%v", bad)
	}

	// QUEUE_REQUEST_GET_ALL_PACKAGES.
	var g map[string]any
	resp = e.do("POST", "/api/v1/vehicles/"+vin+"/get_all_packages", nil, &g)
	require.Equal(t, 200, resp.StatusCode)
	assert.Regexp(t, uuidRe, g["id"])
	q := e.vehicleQueue(vin)
	require.Len(t, q, 1)
	assert.Equal(t, "getAllPackages", q[0]["kind"])
	assert.Equal(t, g["id"], q[0]["requestId"])
	st, code = e.status("POST", "/api/v1/vehicles/WDD99999999999999/get_all_packages", nil)
	assert.Equal(t, 404, st, "X1")
	assert.Equal(t, "missing_vehicle", code)

	// Deleting the vehicle cancels its pending updates.
	e.ok("DELETE", "/api/v1/vehicles/"+vin, nil)
	assert.Equal(t, cnt(0, 0, 0, 0, 1), e.counts(g["id"].(string)))
}

var _ = resolver.PackageID{}
