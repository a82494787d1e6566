package api

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/resolver"
)

// ddiCall sends a DDI request (path from the server root) with an Authorization header (auth is the
// whole header value; "" sends none) and returns the status and body.
func (e *deviceEnv) ddiCall(method, path, auth string, body any, hdr ...string) (int, []byte, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(e.t, err)
		r = bytes.NewReader(j)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.srv.URL + path
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, b, resp.Header
}

// ddiWant requires a status (and for an error its code) and decodes the body into out when not nil.
func (e *deviceEnv) ddiWant(status int, code, method, path, auth string, body, out any) []byte {
	e.t.Helper()
	st, b, _ := e.ddiCall(method, path, auth, body)
	require.Equalf(e.t, status, st, "%s %s: %s", method, path, b)
	if code != "" {
		var er struct{ Code, Description string }
		require.NoError(e.t, json.Unmarshal(b, &er), "%s", b)
		require.Equalf(e.t, code, er.Code, "%s %s: %s", method, path, b)
		require.NotEmpty(e.t, er.Description)
	}
	if out != nil {
		require.NoErrorf(e.t, json.Unmarshal(b, out), "%s", b)
	}
	return b
}

// uploadFile uploads a binary with a file name.
func (e *deviceEnv) uploadFile(name, version, filename string, content []byte) {
	e.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	f, err := w.CreateFormFile("file", filename)
	require.NoError(e.t, err)
	f.Write(content)
	require.NoError(e.t, w.Close())
	req, err := http.NewRequest("PUT", e.srv.URL+"/api/v1/packages/"+name+"/"+version, &b)
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	resp.Body.Close()
	require.Equal(e.t, 204, resp.StatusCode)
}

type ddiPollBody struct {
	Config struct{ Polling struct{ Sleep string } }
	Links  map[string]struct{ Href string } `json:"_links"`
}

type ddiDeploymentBody struct {
	ID         string
	Deployment struct {
		Download, Update, MaintenanceWindow string
		Chunks                              []struct {
			Part, Name, Version string
			Artifacts           []struct {
				Filename string
				Hashes   map[string]string
				Size     int64
				Links    map[string]struct{ Href string } `json:"_links"`
			}
		}
	}
	ActionHistory *struct {
		Status   string
		Messages []string
	}
}

func hexSHA1(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
func hexMD5(b []byte) string  { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// ddiFleet: vinA and vinB with device tokens; boot 1.0.0 (boot.img) and rootfs 1.0.0 (rootfs.swu)
// depending on it, for every vehicle.
func ddiFleet(t *testing.T) (e *deviceEnv, boot, rootfs []byte, ta, tb string) {
	e = newDeviceEnv(t, 512)
	e.ddi = DDIConfig{Tenant: "Fleet1", Poll: 30 * time.Second}
	e.restart()
	for _, v := range []string{vinA, vinB} {
		e.admin("PUT", "/vehicles/"+v, nil)
	}
	boot, rootfs = payloadBytes(1, 1000), payloadBytes(2, 3000)
	e.uploadFile("boot", "1.0.0", "boot.img", boot)
	e.uploadFile("rootfs", "1.0.0", "rootfs-1.0.0.swu", rootfs)
	e.admin("PUT", "/packages/rootfs/1.0.0/dependencies/boot/1.0.0", nil)
	e.admin("POST", "/filters", map[string]any{"name": "everyone", "expression": "TRUE"})
	e.admin("PUT", "/packages/rootfs/1.0.0/filter/everyone", nil)
	return e, boot, rootfs, e.token(vinA), e.token(vinB)
}

// pollDDI polls as the vehicle and returns the answer.
func (e *deviceEnv) pollDDI(vin, auth string) ddiPollBody {
	e.t.Helper()
	var b ddiPollBody
	e.ddiWant(200, "", "GET", "/Fleet1/controller/v1/"+vin, auth, nil, &b)
	return b
}

// actionOf is the action id at the end of a deploymentBase, confirmationBase or cancelAction href.
func actionOf(t *testing.T, href string) string {
	t.Helper()
	p := strings.SplitN(href, "?", 2)[0]
	id := p[strings.LastIndexByte(p, '/')+1:]
	_, err := strconv.ParseUint(id, 10, 64)
	require.NoErrorf(t, err, "action id of %s is decimal", href)
	return id
}

func TestDDIAuthentication(t *testing.T) {
	e, _, _, ta, tb := ddiFleet(t)
	base := "/Fleet1/controller/v1/" + vinA
	for _, c := range []struct{ name, auth string }{
		{"no header", ""},
		{"bearer device token", "Bearer " + ta},
		{"unknown target token", "TargetToken sotadev_nope"},
		{"another vehicle's target token", "TargetToken " + tb},
		{"unknown gateway token", "GatewayToken sotagw_nope"},
		{"device token as gateway token", "GatewayToken " + ta},
		{"scheme without token", "TargetToken "},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, b, h := e.ddiCall("GET", base, c.auth, nil)
			assert.Equal(t, 401, st, "%s", b)
			assert.Contains(t, h.Get("WWW-Authenticate"), "TargetToken")
			st, _, _ = e.ddiCall("PUT", base+"/configData", c.auth, map[string]any{"data": map[string]string{"k": "v"}})
			assert.Equal(t, 401, st)
		})
	}
	t.Run("tenant compared case-insensitively", func(t *testing.T) {
		e.ddiWant(200, "", "GET", "/fleet1/controller/v1/"+vinA, "TargetToken "+ta, nil, nil)
		e.ddiWant(200, "", "GET", "/FLEET1/controller/v1/"+vinA, "targettoken "+ta, nil, nil)
	})
	t.Run("unknown tenant is 404", func(t *testing.T) {
		e.ddiWant(404, "unknown_tenant", "GET", "/DEFAULT/controller/v1/"+vinA, "TargetToken "+ta, nil, nil)
		e.ddiWant(404, "unknown_tenant", "GET", "/other/controller/v1/"+vinA+"/deploymentBase/1", "TargetToken "+ta, nil, nil)
	})
	t.Run("gateway tokens act for any vehicle until revoked", func(t *testing.T) {
		var gw struct{ ID, Name, Token string }
		e.want(200, "", "POST", "/ddi/gateway_tokens", "", map[string]any{"name": "depot gateway"}, &gw)
		assert.Equal(t, "depot gateway", gw.Name)
		require.True(t, strings.HasPrefix(gw.Token, "sotagw_"))
		e.ddiWant(200, "", "GET", base, "GatewayToken "+gw.Token, nil, nil)
		e.ddiWant(200, "", "GET", "/Fleet1/controller/v1/"+vinB, "GatewayToken "+gw.Token, nil, nil)
		var list []map[string]any
		e.want(200, "", "GET", "/ddi/gateway_tokens", "", nil, &list)
		require.Len(t, list, 1)
		assert.Equal(t, gw.ID, list[0]["id"])
		assert.NotContains(t, list[0], "token", "the secret is shown once")
		e.want(400, "invalid_entity", "POST", "/ddi/gateway_tokens", "", map[string]any{"name": strings.Repeat("n", 101)}, nil)
		e.want(200, "", "DELETE", "/ddi/gateway_tokens/"+gw.ID, "", nil, nil)
		e.want(404, "missing_token", "DELETE", "/ddi/gateway_tokens/"+gw.ID, "", nil, nil)
		e.ddiWant(401, "not_authenticated", "GET", base, "GatewayToken "+gw.Token, nil, nil)
	})
	t.Run("a vehicle that does not exist", func(t *testing.T) {
		var gw struct{ Token string }
		e.want(200, "", "POST", "/ddi/gateway_tokens", "", map[string]any{}, &gw)
		e.ddiWant(404, "missing_vehicle", "GET", "/Fleet1/controller/v1/"+vinC, "GatewayToken "+gw.Token, nil, nil)
	})
}

func TestDDIDeploymentDownloadAndFeedback(t *testing.T) {
	e, boot, rootfs, ta, tb := ddiFleet(t)
	e.admin("POST", "/data_plans", map[string]any{"id": "fleet"})
	e.admin("POST", "/data_plans/fleet/billing_cycles", map[string]any{"start": "2020-01-01T00:00:00Z", "poolBytes": 1 << 30})
	e.admin("PUT", "/vehicles/"+vinA+"/data_plan", map[string]any{"id": "fleet"})
	req := e.queue("rootfs", "1.0.0", 5)
	A, B := "TargetToken "+ta, "TargetToken "+tb

	// nothing reported yet: the poll offers the deployment and asks for the configuration
	p := e.pollDDI(vinA, A)
	assert.Equal(t, "00:00:30", p.Config.Polling.Sleep)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	dep := p.Links["deploymentBase"].Href
	require.NotEmpty(t, dep, "%v", p.Links)
	assert.True(t, strings.HasPrefix(dep, "http://"+host+"/Fleet1/controller/v1/"+vinA+"/deploymentBase/"), dep)
	assert.Contains(t, dep, "?c=")
	assert.Equal(t, "http://"+host+"/Fleet1/controller/v1/"+vinA+"/configData", p.Links["configData"].Href)
	action := actionOf(t, dep)
	var v struct{ LastSeen *time.Time }
	e.want(200, "", "GET", "/vehicles/"+vinA, "", nil, &v)
	assert.NotNil(t, v.LastSeen, "a poll records the contact")

	// the href is built from the Host the device used; X-Forwarded-Proto counts from a trusted proxy only
	_, body, _ := e.ddiCall("GET", "/Fleet1/controller/v1/"+vinA, A, nil, "Host", "ota.example.com:8443", "X-Forwarded-Proto", "https")
	assert.Contains(t, string(body), `"http://ota.example.com:8443/Fleet1/controller/v1/`+vinA+`/deploymentBase/`+action+`?c=`)

	var d ddiDeploymentBody
	e.ddiWant(200, "", "GET", dep, A, nil, &d)
	assert.Equal(t, action, d.ID)
	assert.Equal(t, "forced", d.Deployment.Download)
	assert.Equal(t, "forced", d.Deployment.Update)
	assert.Empty(t, d.Deployment.MaintenanceWindow, "no validity period")
	require.Len(t, d.Deployment.Chunks, 2, "one chunk per package of the install list")
	for i, want := range []struct {
		name, file string
		content    []byte
	}{{"boot", "boot.img", boot}, {"rootfs", "rootfs-1.0.0.swu", rootfs}} {
		c := d.Deployment.Chunks[i]
		assert.Equal(t, want.name, c.Name)
		assert.Equal(t, "1.0.0", c.Version)
		assert.Equal(t, "os", c.Part)
		require.Len(t, c.Artifacts, 1)
		a := c.Artifacts[0]
		assert.Equal(t, want.file, a.Filename)
		assert.EqualValues(t, len(want.content), a.Size)
		assert.Equal(t, map[string]string{"sha1": hexSHA1(want.content), "md5": hexMD5(want.content), "sha256": sha(want.content)}, a.Hashes)
		href := a.Links["download-http"].Href
		assert.Equal(t, "http://"+host+"/Fleet1/controller/v1/"+vinA+"/softwaremodules/"+want.name+"@1.0.0/artifacts/"+want.file, href)
		assert.Equal(t, href+".MD5SUM", a.Links["md5sum-http"].Href)
		st, md5line, _ := e.ddiCall("GET", a.Links["md5sum-http"].Href, A, nil)
		assert.Equal(t, 200, st)
		assert.Equal(t, hexMD5(want.content)+"  "+want.file, string(md5line))
	}
	var list []map[string]any
	e.ddiWant(200, "", "GET", "/Fleet1/controller/v1/"+vinA+"/softwaremodules/rootfs@1.0.0/artifacts", A, nil, &list)
	require.Len(t, list, 1)
	assert.Equal(t, "rootfs-1.0.0.swu", list[0]["filename"])

	// another vehicle's action, an unknown one, and artifacts the vehicle is not to install
	e.ddiWant(404, "missing_action", "GET", "/Fleet1/controller/v1/"+vinB+"/deploymentBase/"+action, B, nil, nil)
	e.ddiWant(404, "missing_action", "GET", "/Fleet1/controller/v1/"+vinA+"/deploymentBase/999999", A, nil, nil)
	e.ddiWant(404, "missing_action", "GET", "/Fleet1/controller/v1/"+vinA+"/deploymentBase/abc", A, nil, nil)
	e.ddiWant(404, "missing_artifact", "GET", "/Fleet1/controller/v1/"+vinA+"/softwaremodules/other@1.0.0/artifacts/x.bin", A, nil, nil)
	e.ddiWant(404, "missing_artifact", "GET", "/Fleet1/controller/v1/"+vinA+"/softwaremodules/rootfs@1.0.0/artifacts/other.swu", A, nil, nil)
	e.ddiWant(404, "missing_artifact", "GET", "/Fleet1/controller/v1/"+vinA+"/softwaremodules/rootfs/artifacts/rootfs-1.0.0.swu", A, nil, nil)

	// a Range download resumes; what is sent counts on the data plan; the download starts the update
	var q []struct{ Status string }
	art := d.Deployment.Chunks[1].Artifacts[0].Links["download-http"].Href
	st, head, hh := e.ddiCall("HEAD", art, A, nil)
	require.Equal(t, 200, st)
	assert.Empty(t, head)
	assert.Equal(t, "3000", hh.Get("Content-Length"), "HEAD tells the size (SWUpdate asks first)")
	e.want(200, "", "GET", "/vehicles/"+vinA+"/queue", "", nil, &q)
	assert.Equal(t, "pending", q[0].Status, "a HEAD starts nothing")
	st, part, h := e.ddiCall("GET", art, A, nil, "Range", "bytes=1000-")
	require.Equal(t, http.StatusPartialContent, st)
	assert.Equal(t, rootfs[1000:], part)
	assert.Equal(t, `"`+sha(rootfs)+`"`, h.Get("ETag"))
	st, all, _ := e.ddiCall("GET", art, A, nil)
	require.Equal(t, 200, st)
	assert.Equal(t, rootfs, all)
	var cycles []struct{ UsedBytes int64 }
	e.want(200, "", "GET", "/data_plans/fleet/billing_cycles", "", nil, &cycles)
	require.Len(t, cycles, 1)
	assert.EqualValues(t, 2000+3000, cycles[0].UsedBytes)
	e.want(200, "", "GET", "/vehicles/"+vinA+"/queue", "", nil, &q)
	require.Len(t, q, 1)
	assert.Equal(t, "inFlight", q[0].Status)

	// feedback, read tolerantly as SWUpdate sends it (with id and time)
	fb := func(execution, finished string, details ...string) map[string]any {
		return map[string]any{"id": action, "time": "20250301T120000", "status": map[string]any{
			"execution": execution, "result": map[string]any{"finished": finished, "progress": map[string]int{"cnt": 1, "of": 2}}, "details": details}}
	}
	feedback := "/Fleet1/controller/v1/" + vinA + "/deploymentBase/" + action + "/feedback"
	e.ddiWant(200, "", "POST", feedback, A, fb("proceeding", "none", "Installing Update Chunk Artifacts."), nil)
	e.ddiWant(400, "invalid_entity", "POST", feedback, A, fb("exploded", "none"), nil)
	e.ddiWant(400, "invalid_entity", "POST", feedback, A, fb("closed", "maybe"), nil)
	e.ddiWant(400, "invalid_entity", "POST", feedback, A, `{"status": {"execution": 5}}`, nil)
	e.ddiWant(400, "invalid_entity", "POST", feedback, A, `{"status": `, nil)
	e.ddiWant(200, "", "POST", feedback, A, fb("closed", "success", "Update Installed."), nil)
	var hist []struct {
		Status     string
		ResultCode *int
		ResultText string
		ActionID   uint64
	}
	e.want(200, "", "GET", "/vehicles/"+vinA+"/history", "", nil, &hist)
	require.Len(t, hist, 1)
	assert.Equal(t, "finished", hist[0].Status)
	assert.Equal(t, 0, *hist[0].ResultCode)
	assert.Equal(t, "OK: Update Installed.", hist[0].ResultText)
	assert.Equal(t, action, strconv.FormatUint(hist[0].ActionID, 10))
	var installed []resolver.PackageID
	e.want(200, "", "GET", "/vehicles/"+vinA+"/package", "", nil, &installed)
	assert.ElementsMatch(t, []resolver.PackageID{{Name: "boot", Version: "1.0.0"}, {Name: "rootfs", Version: "1.0.0"}}, installed)
	e.ddiWant(409, "already_reported", "POST", feedback, A, fb("closed", "success"), nil)
	p = e.pollDDI(vinA, A)
	assert.NotContains(t, p.Links, "deploymentBase", "nothing left to do")
	var inst ddiDeploymentBody
	e.ddiWant(200, "", "GET", "/Fleet1/controller/v1/"+vinA+"/installedBase/"+action, A, nil, &inst)
	assert.Equal(t, action, inst.ID)
	require.Len(t, inst.Deployment.Chunks, 2)
	require.NotNil(t, inst.ActionHistory)
	assert.Equal(t, "finished", inst.ActionHistory.Status)
	e.ddiWant(404, "missing_artifact", "GET", art, A, nil, nil)

	// B fails: closed + failure is 19 GENERAL_ERROR with the details; nothing is installed
	pb := e.pollDDI(vinB, B)
	actionB := actionOf(t, pb.Links["deploymentBase"].Href)
	assert.NotEqual(t, action, actionB)
	e.ddiWant(404, "missing_action", "GET", "/Fleet1/controller/v1/"+vinB+"/installedBase/"+actionB, B, nil, nil)
	e.ddiWant(200, "", "POST", "/Fleet1/controller/v1/"+vinB+"/deploymentBase/"+actionB+"/feedback", B,
		fb("closed", "failure", "ERROR : Signature verification failed", "ERROR : Image invalid or corrupted. Not installing ..."), nil)
	var vs []struct {
		VIN        string
		Status     string
		ResultCode *int
		ResultText string
	}
	e.want(200, "", "GET", "/update_requests/"+req+"/vehicles?status=failed", "", nil, &vs)
	require.Len(t, vs, 1)
	assert.Equal(t, vinB, vs[0].VIN)
	assert.Equal(t, 19, *vs[0].ResultCode)
	assert.Equal(t, "GENERAL_ERROR: ERROR : Signature verification failed; ERROR : Image invalid or corrupted. Not installing ...", vs[0].ResultText)
	e.want(200, "", "GET", "/vehicles/"+vinB+"/package", "", nil, &installed)
	assert.Empty(t, installed)
}

func TestDDIRejectAndValidityWindow(t *testing.T) {
	e, _, _, ta, _ := ddiFleet(t)
	A := "TargetToken " + ta
	from, until := time.Now().Add(-time.Hour).UTC(), time.Now().Add(time.Hour).UTC()
	var r struct{ ID string }
	e.want(200, "", "POST", "/update_requests", "", map[string]any{"packageId": map[string]string{"name": "rootfs", "version": "1.0.0"},
		"periodOfValidity": from.Format(time.RFC3339) + "/" + until.Format(time.RFC3339)}, &r)
	p := e.pollDDI(vinA, A)
	var d ddiDeploymentBody
	e.ddiWant(200, "", "GET", p.Links["deploymentBase"].Href, A, nil, &d)
	assert.Equal(t, "available", d.Deployment.MaintenanceWindow)
	action := actionOf(t, p.Links["deploymentBase"].Href)
	e.ddiWant(200, "", "POST", "/Fleet1/controller/v1/"+vinA+"/deploymentBase/"+action+"/feedback", A,
		map[string]any{"status": map[string]any{"execution": "rejected", "result": map[string]any{"finished": "none"}, "details": []string{"not now"}}}, nil)
	var vs []struct {
		ResultCode *int
		ResultText string
	}
	e.want(200, "", "GET", "/update_requests/"+r.ID+"/vehicles?status=failed", "", nil, &vs)
	require.Len(t, vs, 1)
	assert.Equal(t, 13, *vs[0].ResultCode)
	assert.Equal(t, "USER_DECLINED: not now", vs[0].ResultText)
}

func TestDDIConfigDataFeedsFilters(t *testing.T) {
	e, _, _, ta, tb := ddiFleet(t)
	A, B := "TargetToken "+ta, "TargetToken "+tb
	cfg := "/Fleet1/controller/v1/" + vinA + "/configData"
	e.admin("PUT", "/vehicles/"+vinA+"/attributes", map[string]any{"region": "north"})
	assert.Contains(t, e.pollDDI(vinA, A).Links, "configData", "attributes an admin set do not count")

	e.ddiWant(200, "", "PUT", cfg, A, map[string]any{"id": "", "time": "20250301T120000", "status": map[string]any{"execution": "closed"},
		"data": map[string]string{"hwRevision": "2", "board": "imx8"}}, nil)
	assert.NotContains(t, e.pollDDI(vinA, A).Links, "configData")
	assert.Contains(t, e.pollDDI(vinB, B).Links, "configData")
	var attrs map[string]any
	attrs = nil // json.Unmarshal would merge into the map
	e.want(200, "", "GET", "/vehicles/"+vinA+"/attributes", "", nil, &attrs)
	assert.Equal(t, map[string]any{"region": "north", "hwRevision": "2", "board": "imx8"}, attrs)

	e.ddiWant(200, "", "PUT", cfg, A, map[string]any{"mode": "replace", "data": map[string]string{"hwRevision": "3"}}, nil)
	attrs = nil // json.Unmarshal would merge into the map
	e.want(200, "", "GET", "/vehicles/"+vinA+"/attributes", "", nil, &attrs)
	assert.Equal(t, map[string]any{"region": "north", "hwRevision": "3"}, attrs)
	e.ddiWant(200, "", "PUT", cfg, A, map[string]any{"mode": "remove", "data": map[string]string{"hwRevision": ""}}, nil)
	attrs = nil // json.Unmarshal would merge into the map
	e.want(200, "", "GET", "/vehicles/"+vinA+"/attributes", "", nil, &attrs)
	assert.Equal(t, map[string]any{"region": "north"}, attrs)

	e.ddiWant(400, "invalid_entity", "PUT", cfg, A, map[string]any{"mode": "append", "data": map[string]string{"k": "v"}}, nil)
	e.ddiWant(400, "invalid_entity", "PUT", cfg, A, map[string]any{"data": map[string]any{"k": []int{1}}}, nil)
	e.ddiWant(400, "invalid_entity", "PUT", cfg, A, map[string]any{"data": map[string]string{"bad key": "v"}}, nil)
	e.ddiWant(400, "invalid_entity", "PUT", cfg, A, map[string]any{"mode": "merge"}, nil)

	// what the devices report selects them
	e.ddiWant(200, "", "PUT", cfg, A, map[string]any{"data": map[string]string{"hwRevision": "2"}}, nil)
	e.ddiWant(200, "", "PUT", "/Fleet1/controller/v1/"+vinB+"/configData", B, map[string]any{"data": map[string]string{"hwRevision": "1"}}, nil)
	e.uploadFile("bsp", "2.0.0", "bsp-2.0.0.swu", payloadBytes(9, 100))
	e.admin("POST", "/filters", map[string]any{"name": "rev2", "expression": `attr "hwRevision" == "2"`})
	e.admin("PUT", "/packages/bsp/2.0.0/filter/rev2", nil)
	var q struct{ Vehicles int }
	e.want(200, "", "POST", "/update_requests", "", map[string]any{"packageId": map[string]string{"name": "bsp", "version": "2.0.0"}}, &q)
	assert.Equal(t, 1, q.Vehicles)
	assert.Contains(t, e.pollDDI(vinA, A).Links, "deploymentBase")
	assert.NotContains(t, e.pollDDI(vinB, B).Links, "deploymentBase")
}

func TestDDICancelInFlight(t *testing.T) {
	e, _, _, ta, tb := ddiFleet(t)
	A := "TargetToken " + ta
	req := e.queue("rootfs", "1.0.0", 5)
	action := actionOf(t, e.pollDDI(vinA, A).Links["deploymentBase"].Href)
	base := "/Fleet1/controller/v1/" + vinA
	e.ddiWant(404, "missing_action", "GET", base+"/cancelAction/"+action, A, nil, nil)
	progress := map[string]any{"status": map[string]any{"execution": "proceeding", "result": map[string]any{"finished": "none"}}}
	e.ddiWant(200, "", "POST", base+"/deploymentBase/"+action+"/feedback", A, progress, nil)

	// B uses the device API and is in flight too
	var rows []pollRow
	e.want(200, "", "GET", "/vehicle_updates/"+vinB, tb, nil, &rows)
	require.Len(t, rows, 1)
	e.want(200, "", "POST", "/vehicle_updates/"+vinB+"/"+rows[0].UpdateID+"/start", tb, nil, nil)

	e.want(400, "invalid_entity", "PUT", "/update_requests/"+req+"/cancel?inFlight=maybe", "", nil, nil)
	var n struct{ Canceled int }
	e.want(200, "", "PUT", "/update_requests/"+req+"/cancel", "", nil, &n)
	assert.Equal(t, 0, n.Canceled, "without inFlight, updates in flight go on")
	e.want(200, "", "PUT", "/update_requests/"+req+"/cancel?inFlight=true", "", nil, &n)
	assert.Equal(t, 2, n.Canceled)

	// the device-API vehicle learns it on its next call
	e.want(409, "update_canceled", "GET", "/vehicle_updates/"+vinB+"/"+rows[0].UpdateID+"/chunk", tb, nil, nil)
	e.want(409, "update_canceled", "POST", "/vehicle_updates/"+vinB+"/"+rows[0].UpdateID, tb,
		map[string]any{"operation_results": []map[string]any{{"id": "x", "result_code": 0}}}, nil)

	// the DDI vehicle is offered cancelAction and refuses: the update goes on
	p := e.pollDDI(vinA, A)
	require.Contains(t, p.Links, "cancelAction")
	assert.NotContains(t, p.Links, "deploymentBase")
	assert.Equal(t, action, actionOf(t, p.Links["cancelAction"].Href))
	var ca struct {
		ID           string
		CancelAction struct{ StopID string }
	}
	e.ddiWant(200, "", "GET", p.Links["cancelAction"].Href, A, nil, &ca)
	assert.Equal(t, action, ca.ID)
	assert.Equal(t, action, ca.CancelAction.StopID)
	cancelFeedback := p.Links["cancelAction"].Href + "/feedback"
	e.ddiWant(200, "", "POST", cancelFeedback, A, map[string]any{"id": action, "status": map[string]any{"execution": "rejected", "result": map[string]any{"finished": "none"}}}, nil)
	p = e.pollDDI(vinA, A)
	assert.Contains(t, p.Links, "deploymentBase")
	var counts struct{ Counts map[string]int }
	e.want(200, "", "GET", "/update_requests/"+req, "", nil, &counts)
	assert.Equal(t, 1, counts.Counts["inFlight"])
	assert.Equal(t, 1, counts.Counts["canceled"])

	// canceled again, and accepted as SWUpdate acknowledges
	e.want(200, "", "PUT", "/update_requests/"+req+"/cancel?inFlight=true", "", nil, &n)
	assert.Equal(t, 1, n.Canceled)
	e.ddiWant(200, "", "POST", cancelFeedback, A, map[string]any{"id": action, "time": "20250301T120000",
		"status": map[string]any{"execution": "closed", "result": map[string]any{"finished": "success"}, "details": []string{"cancellation acknowledged."}}}, nil)
	p = e.pollDDI(vinA, A)
	assert.NotContains(t, p.Links, "cancelAction")
	assert.NotContains(t, p.Links, "deploymentBase")
	var hist []struct{ Status, ResultText string }
	e.want(200, "", "GET", "/vehicles/"+vinA+"/history", "", nil, &hist)
	require.Len(t, hist, 1)
	assert.Equal(t, "canceled", hist[0].Status)
	assert.Equal(t, "canceled in flight: cancellation acknowledged.", hist[0].ResultText)
	e.ddiWant(409, "update_canceled", "POST", base+"/deploymentBase/"+action+"/feedback", A, progress, nil)
}

func TestDDIConfirmation(t *testing.T) {
	e, _, _, ta, tb := ddiFleet(t)
	A, B := "TargetToken "+ta, "TargetToken "+tb
	var r struct{ ID string }
	e.want(200, "", "POST", "/update_requests", "", map[string]any{"packageId": map[string]string{"name": "rootfs", "version": "1.0.0"}, "requestConfirmation": true}, &r)

	p := e.pollDDI(vinA, A)
	require.Contains(t, p.Links, "confirmationBase")
	assert.NotContains(t, p.Links, "deploymentBase")
	action := actionOf(t, p.Links["confirmationBase"].Href)
	base := "/Fleet1/controller/v1/" + vinA
	var cb struct {
		ID           string
		Confirmation struct {
			Links map[string]struct{ Href string }
		}
		Deployment struct{ Download, Update string }
	}
	e.ddiWant(200, "", "GET", p.Links["confirmationBase"].Href, A, nil, &cb)
	assert.Equal(t, action, cb.ID)
	assert.Equal(t, "attempt", cb.Deployment.Update)
	e.ddiWant(409, "confirmation_required", "GET", base+"/deploymentBase/"+action, A, nil, nil)
	e.ddiWant(409, "confirmation_required", "GET", base+"/softwaremodules/rootfs@1.0.0/artifacts/rootfs-1.0.0.swu", A, nil, nil)
	e.ddiWant(400, "invalid_entity", "POST", cb.Confirmation.Links["feedback"].Href, A, map[string]any{"confirmation": "perhaps"}, nil)
	e.ddiWant(200, "", "POST", cb.Confirmation.Links["feedback"].Href, A, map[string]any{"confirmation": "confirmed", "details": []string{"driver agreed"}}, nil)
	p = e.pollDDI(vinA, A)
	assert.Equal(t, action, actionOf(t, p.Links["deploymentBase"].Href))
	var d ddiDeploymentBody
	e.ddiWant(200, "", "GET", p.Links["deploymentBase"].Href, A, nil, &d)
	assert.Equal(t, "attempt", d.Deployment.Download)

	pb := e.pollDDI(vinB, B)
	actionB := actionOf(t, pb.Links["confirmationBase"].Href)
	e.ddiWant(200, "", "POST", "/Fleet1/controller/v1/"+vinB+"/confirmationBase/"+actionB+"/feedback", B, map[string]any{"confirmation": "denied", "details": []string{"parked abroad"}}, nil)
	var hist []struct {
		Status     string
		ResultCode *int
		ResultText string
	}
	e.want(200, "", "GET", "/vehicles/"+vinB+"/history", "", nil, &hist)
	require.Len(t, hist, 1)
	assert.Equal(t, "failed", hist[0].Status)
	assert.Equal(t, 13, *hist[0].ResultCode)
	assert.Equal(t, "USER_DECLINED: parked abroad", hist[0].ResultText)
}

func TestDDIActionIDsSurviveARestart(t *testing.T) {
	e, _, _, ta, _ := ddiFleet(t)
	A := "TargetToken " + ta
	e.queue("rootfs", "1.0.0", 5)
	before := actionOf(t, e.pollDDI(vinA, A).Links["deploymentBase"].Href)
	e.restart()
	after := e.pollDDI(vinA, A)
	assert.Equal(t, before, actionOf(t, after.Links["deploymentBase"].Href))
	var d ddiDeploymentBody
	e.ddiWant(200, "", "GET", after.Links["deploymentBase"].Href, A, nil, &d)
	assert.Equal(t, before, d.ID)
	// an update queued after the restart gets a new id
	e.uploadFile("app", "1.0.0", "app.swu", []byte("app"))
	e.admin("PUT", "/packages/app/1.0.0/filter/everyone", nil)
	e.want(200, "", "POST", "/update_requests", "", map[string]any{"packageId": map[string]string{"name": "app", "version": "1.0.0"}, "priority": 1}, nil)
	next := actionOf(t, e.pollDDI(vinA, A).Links["deploymentBase"].Href)
	assert.NotEqual(t, before, next)
	b, _ := strconv.ParseUint(before, 10, 64)
	n, _ := strconv.ParseUint(next, 10, 64)
	assert.Greater(t, n, b)
}

func TestDDIPollFormat(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{5 * time.Minute, "00:05:00"}, {30 * time.Second, "00:00:30"}, {26*time.Hour + 61*time.Second, "26:01:01"}} {
		assert.Equal(t, c.want, FormatDDIPoll(c.d))
		d, err := ParseDDIPoll(c.want)
		require.NoError(t, err)
		assert.Equal(t, c.d.Round(time.Second), d)
	}
	for _, bad := range []string{"5m", "00:60:00", "00:00:00", "1:00:00", "00:05:00x"} {
		_, err := ParseDDIPoll(bad)
		assert.Errorf(t, err, "%q", bad)
	}
}

func TestDDIHrefsAreHTTPSBehindATrustedProxy(t *testing.T) {
	e, _, _, ta, _ := ddiFleet(t)
	e.proxies = []string{"127.0.0.1"}
	e.restart()
	e.queue("rootfs", "1.0.0", 5)
	_, body, _ := e.ddiCall("GET", "/Fleet1/controller/v1/"+vinA, "TargetToken "+ta, nil, "Host", "ota.example.com", "X-Forwarded-Proto", "https")
	assert.Contains(t, string(body), `"https://ota.example.com/Fleet1/controller/v1/`+vinA+`/deploymentBase/`)
}
