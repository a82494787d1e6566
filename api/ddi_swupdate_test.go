package api

// End-to-end tests of the hawkBit DDI transport with Debian's real SWUpdate (package swupdate, its
// suricatta hawkBit client): signed .swu images built here (sw-description signed with openssl cms,
// the cpio archive written in Go) are uploaded, queued, polled, downloaded, verified and installed by
// swupdate, and reported back. They skip without swupdate or openssl, except under
// SOTA_REQUIRE_SWUPDATE=1 (set by .ci/run, which installs both), where a missing program fails them.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/resolver"
)

// requireSWUpdate returns the paths of swupdate and openssl, or skips the test (fails it under
// SOTA_REQUIRE_SWUPDATE=1).
func requireSWUpdate(t *testing.T) (swupdate, openssl string) {
	t.Helper()
	var missing []string
	swupdate, err := exec.LookPath("swupdate")
	if err != nil {
		missing = append(missing, "swupdate")
	}
	openssl, err = exec.LookPath("openssl")
	if err != nil {
		missing = append(missing, "openssl")
	}
	if len(missing) > 0 {
		msg := "SWUpdate end-to-end test needs " + strings.Join(missing, " and ") + " (Debian packages swupdate, openssl)"
		if os.Getenv("SOTA_REQUIRE_SWUPDATE") == "1" {
			t.Fatal(msg + " (SOTA_REQUIRE_SWUPDATE=1)")
		}
		t.Skip(msg)
	}
	return swupdate, openssl
}

// swuSigner signs sw-description with a self-signed certificate (CMS, as SWUpdate verifies it).
type swuSigner struct {
	openssl, cert, key string
}

func newSWUSigner(t *testing.T, openssl, dir, name string) swuSigner {
	t.Helper()
	s := swuSigner{openssl: openssl, cert: filepath.Join(dir, name+".cert.pem"), key: filepath.Join(dir, name+".key.pem")}
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-keyout", s.key, "-out", s.cert, "-subj", "/O=SOTA test/CN="+name).CombinedOutput()
	require.NoErrorf(t, err, "openssl req: %s", out)
	return s
}

// swu builds a signed .swu whose one rawfile image is payload, to be installed at target.
func (s swuSigner) swu(t *testing.T, version string, payload []byte, target string) []byte {
	t.Helper()
	sum := sha256.Sum256(payload)
	desc := fmt.Sprintf(`software =
{
	version = %q;
	description = "SOTA end-to-end test image";
	hardware-compatibility: [ "1.0" ];
	files: (
		{
			filename = "rootfs.img";
			path = %q;
			sha256 = %q;
		}
	);
}
`, version, target, hex.EncodeToString(sum[:]))
	dir := t.TempDir()
	descPath, sigPath := filepath.Join(dir, "sw-description"), filepath.Join(dir, "sw-description.sig")
	require.NoError(t, os.WriteFile(descPath, []byte(desc), 0o600))
	out, err := exec.Command(s.openssl, "cms", "-sign", "-in", descPath, "-out", sigPath, "-signer", s.cert,
		"-inkey", s.key, "-outform", "DER", "-nosmimecap", "-binary").CombinedOutput()
	require.NoErrorf(t, err, "openssl cms: %s", out)
	sig, err := os.ReadFile(sigPath)
	require.NoError(t, err)
	return cpioCRC([]cpioFile{{"sw-description", []byte(desc)}, {"sw-description.sig", sig}, {"rootfs.img", payload}})
}

type cpioFile struct {
	name string
	data []byte
}

// cpioCRC writes a cpio archive in the "crc" (070702) format SWUpdate reads: newc headers with the
// byte sum of each file, names and data padded to 4 bytes, and the TRAILER!!! entry.
func cpioCRC(files []cpioFile) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	add := func(name string, data []byte, mode uint32) {
		var sum uint32
		for _, c := range data {
			sum += uint32(c)
		}
		fmt.Fprintf(&b, "070702%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, sum)
		b.WriteString(name)
		b.WriteByte(0)
		pad()
		b.Write(data)
		pad()
	}
	for _, f := range files {
		add(f.name, f.data, 0o100644)
	}
	add("TRAILER!!!", nil, 0)
	return b.Bytes()
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// suricatta is one running swupdate in suricatta (hawkBit) mode.
type suricatta struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

// swDevice is what one simulated device has: its VIN and token, a directory of its own (TMPDIR, so that
// instances do not share swupdate's sockets and temporary files; images are installed to its disk/),
// and the certificate it trusts.
type swDevice struct {
	vin, token, dir, cert string
}

// startSuricatta runs swupdate against the server at base for the device; confirm is swupdate's -c
// (the update state to report at start: "2" reports the installed update as successful, as a device
// does after the reboot into the new image), "" for none.
func startSuricatta(t *testing.T, swupdate, base string, d swDevice, confirm string) *suricatta {
	t.Helper()
	cfg := filepath.Join(d.dir, "swupdate.cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(`globals : {
	loglevel = 6;
};
identify : (
	{ name = "board"; value = "sota-test"; },
	{ name = "hwRevision"; value = "1.0"; }
);
`), 0o600))
	surArgs := fmt.Sprintf("-t default -u %s -i %s -k %s -r 5 -w 1", base, d.vin, d.token)
	if confirm != "" {
		surArgs += " -c " + confirm
	}
	cmd := exec.Command(swupdate, "-v", "-f", cfg, "-H", "sota-test:1.0", "-k", d.cert, "-u", surArgs)
	cmd.Env = append(os.Environ(), "TMPDIR="+d.dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s := &suricatta{t: t, cmd: cmd, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	require.NoError(t, cmd.Start())
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	return s
}

// stop ends the swupdate process group (swupdate forks helpers) and waits for it.
func (s *suricatta) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// waitFor polls cond every 100 ms until it holds, failing with swupdate's log after timeout or when
// swupdate exits first.
func (s *suricatta) waitFor(what string, timeout time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-s.done:
			if cond() {
				return
			}
			s.t.Fatalf("swupdate exited (%v) before %s; it said:\n%s", s.cmd.ProcessState, what, tail(s.log.String(), 400))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v waiting for %s; swupdate said:\n%s", timeout, what, tail(s.log.String(), 400))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

type swHistory struct {
	Status     string
	ResultCode *int
	ResultText string
	PackageID  resolver.PackageID
}

// history is the vehicle's update history as the admin API shows it.
func (e *deviceEnv) history(vin string) []swHistory {
	var h []swHistory
	e.want(200, "", "GET", "/vehicles/"+vin+"/history", "", nil, &h)
	return h
}

// lastStatus is the status of the vehicle's latest update of the package ("" when it has none).
func (e *deviceEnv) lastStatus(vin string, p resolver.PackageID) (swHistory, bool) {
	var last swHistory
	found := false
	for _, h := range e.history(vin) {
		if h.PackageID == p {
			last, found = h, true
		}
	}
	return last, found
}

// swupdateEnv is a server with the DDI tenant DEFAULT and a 1 s polling interval, a release signer,
// and one device trusting the release certificate.
func swupdateEnv(t *testing.T) (e *deviceEnv, swupdate string, release swuSigner, newDevice func(vin string) swDevice) {
	swupdate, openssl := requireSWUpdate(t)
	e = newDeviceEnv(t, 4096)
	e.ddi = DDIConfig{Poll: time.Second}
	e.restart()
	keys := t.TempDir()
	release = newSWUSigner(t, openssl, keys, "release")
	e.admin("POST", "/filters", map[string]any{"name": "everyone", "expression": "TRUE"})
	newDevice = func(vin string) swDevice {
		e.admin("PUT", "/vehicles/"+vin, nil)
		d := swDevice{vin: vin, token: e.token(vin), dir: t.TempDir(), cert: release.cert}
		require.NoError(t, os.Mkdir(filepath.Join(d.dir, "disk"), 0o700))
		return d
	}
	return e, swupdate, release, newDevice
}

func TestDDISWUpdateInstallsASignedImage(t *testing.T) {
	e, swupdate, release, newDevice := swupdateEnv(t)
	d := newDevice(vinA)
	target := filepath.Join(d.dir, "disk", "rootfs.img")
	payload := payloadBytes(42, 300_000)
	e.uploadFile("rootfs", "1.0.0", "rootfs-1.0.0.swu", release.swu(t, "1.0.0", payload, target))
	e.admin("PUT", "/packages/rootfs/1.0.0/filter/everyone", nil)
	e.queue("rootfs", "1.0.0", 5)
	rootfs := resolver.PackageID{Name: "rootfs", Version: "1.0.0"}

	s := startSuricatta(t, swupdate, e.srv.URL, d, "")
	s.waitFor("the image on disk", 60*time.Second, func() bool {
		got, err := os.ReadFile(target)
		return err == nil && bytes.Equal(got, payload)
	})
	s.waitFor("the installation's end", 30*time.Second, func() bool {
		return strings.Contains(s.log.String(), "Update successful, executing post-update actions")
	})
	h, ok := e.lastStatus(vinA, rootfs)
	require.True(t, ok)
	assert.Equal(t, "inFlight", h.Status, "installed, and waiting for the device to confirm the new image")
	// the device reported its identity as configData: attributes usable in filters
	var attrs map[string]any
	e.want(200, "", "GET", "/vehicles/"+vinA+"/attributes", "", nil, &attrs)
	assert.Equal(t, map[string]any{"board": "sota-test", "hwRevision": "1.0"}, attrs)

	// the device "reboots" into the new image and confirms it (-c 2): the update finishes
	s.stop()
	s = startSuricatta(t, swupdate, e.srv.URL, d, "2")
	s.waitFor("the update to finish on the server", 60*time.Second, func() bool {
		h, ok := e.lastStatus(vinA, rootfs)
		return ok && h.Status == "finished"
	})
	var installed []resolver.PackageID
	e.want(200, "", "GET", "/vehicles/"+vinA+"/package", "", nil, &installed)
	assert.Equal(t, []resolver.PackageID{rootfs}, installed)
	h, _ = e.lastStatus(vinA, rootfs)
	assert.Equal(t, 0, *h.ResultCode)
	assert.Contains(t, h.ResultText, "Update Installed")
}

func TestDDISWUpdateRefusesAnImageSignedWithAForeignKey(t *testing.T) {
	e, swupdate, _, newDevice := swupdateEnv(t)
	_, openssl := requireSWUpdate(t)
	d := newDevice(vinA)
	foreign := newSWUSigner(t, openssl, t.TempDir(), "intruder")
	target := filepath.Join(d.dir, "disk", "rootfs.img")
	e.uploadFile("rootfs", "6.6.6", "rootfs-6.6.6.swu", foreign.swu(t, "6.6.6", payloadBytes(7, 50_000), target))
	e.admin("PUT", "/packages/rootfs/6.6.6/filter/everyone", nil)
	e.queue("rootfs", "6.6.6", 5)
	p := resolver.PackageID{Name: "rootfs", Version: "6.6.6"}

	s := startSuricatta(t, swupdate, e.srv.URL, d, "")
	s.waitFor("the update to fail on the server", 60*time.Second, func() bool {
		h, ok := e.lastStatus(vinA, p)
		return ok && h.Status == "failed"
	})
	h, _ := e.lastStatus(vinA, p)
	assert.Equal(t, 19, *h.ResultCode)
	assert.True(t, strings.HasPrefix(h.ResultText, "GENERAL_ERROR: "), h.ResultText)
	assert.Contains(t, h.ResultText, "ERROR : Authentication of all signatures failed", "the device's own error details")
	assert.NoFileExists(t, target, "nothing was installed")
	var installed []resolver.PackageID
	e.want(200, "", "GET", "/vehicles/"+vinA+"/package", "", nil, &installed)
	assert.Empty(t, installed)
}

// cuttingProxy forwards to the server and cuts the first artifact download (GET) after cut bytes; it
// records the Range headers of the artifact downloads.
type cuttingProxy struct {
	srv    *http.Server
	ln     net.Listener
	cut    int64
	cuts   atomic.Int32
	mu     sync.Mutex
	ranges []string
}

func newCuttingProxy(t *testing.T, upstream string, cut int64) *cuttingProxy {
	u, err := url.Parse(upstream)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the device's Host, so hrefs point at the proxy
	p := &cuttingProxy{cut: cut}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.ln = ln
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/artifacts/") || strings.HasSuffix(r.URL.Path, ".MD5SUM") {
			rp.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		p.ranges = append(p.ranges, r.Header.Get("Range"))
		p.mu.Unlock()
		if p.cuts.Load() > 0 {
			rp.ServeHTTP(w, r)
			return
		}
		p.cuts.Add(1)
		// the first download: forward the headers and cut bytes of the body, then drop the connection
		req, _ := http.NewRequest(r.Method, upstream+r.URL.RequestURI(), nil)
		req.Host = r.Host
		req.Header = r.Header.Clone()
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		for k, vs := range res.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(res.StatusCode)
		io.CopyN(w, res.Body, p.cut)
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func TestDDISWUpdateResumesACutDownloadWithRange(t *testing.T) {
	e, swupdate, release, newDevice := swupdateEnv(t)
	d := newDevice(vinA)
	target := filepath.Join(d.dir, "disk", "rootfs.img")
	payload := payloadBytes(3, 1_000_000)
	swu := release.swu(t, "2.0.0", payload, target)
	e.uploadFile("rootfs", "2.0.0", "rootfs-2.0.0.swu", swu)
	e.admin("PUT", "/packages/rootfs/2.0.0/filter/everyone", nil)
	e.queue("rootfs", "2.0.0", 5)
	const cut = 400_000
	proxy := newCuttingProxy(t, e.srv.URL, cut)

	s := startSuricatta(t, swupdate, "http://"+proxy.ln.Addr().String(), d, "")
	s.waitFor("the image on disk", 90*time.Second, func() bool {
		got, err := os.ReadFile(target)
		return err == nil && bytes.Equal(got, payload)
	})
	proxy.mu.Lock()
	ranges := append([]string(nil), proxy.ranges...)
	proxy.mu.Unlock()
	require.GreaterOrEqual(t, len(ranges), 2, "the download was cut and asked for again")
	assert.Equal(t, "", ranges[0])
	assert.Regexp(t, `^bytes=[1-9][0-9]*-$`, ranges[1], "the second request resumes where the first stopped")
	var from int64
	fmt.Sscanf(ranges[1], "bytes=%d-", &from)
	assert.LessOrEqual(t, from, int64(cut))
	s.stop()
	s = startSuricatta(t, swupdate, "http://"+proxy.ln.Addr().String(), d, "2")
	s.waitFor("the update to finish on the server", 60*time.Second, func() bool {
		h, ok := e.lastStatus(vinA, resolver.PackageID{Name: "rootfs", Version: "2.0.0"})
		return ok && h.Status == "finished"
	})
}

// A staged campaign delivered to three SWUpdate devices run one after the other: the canary group (one
// vehicle) goes out alone; when its device has installed and confirmed, the gate releases the rest,
// whose devices then install and confirm, and the campaign finishes.
func TestDDISWUpdateStagedCampaign(t *testing.T) {
	e, swupdate, release, newDevice := swupdateEnv(t)
	devices := []swDevice{newDevice(vinA), newDevice(vinB), newDevice(vinC)}
	target := filepath.Join(t.TempDir(), "rootfs.img") // every device installs to the same path, one at a time
	payload := payloadBytes(11, 200_000)
	e.uploadFile("rootfs", "3.0.0", "rootfs-3.0.0.swu", release.swu(t, "3.0.0", payload, target))
	e.admin("PUT", "/packages/rootfs/3.0.0/filter/everyone", nil)
	var cp struct{ ID string }
	e.want(200, "", "POST", "/campaigns", "", map[string]any{"name": "rootfs rollout", "packageId": map[string]string{"name": "rootfs", "version": "3.0.0"},
		"groups": []map[string]any{{"name": "canary", "filter": `vin_matches "1$"`}}, "successThreshold": 100}, &cp)
	var launched struct {
		Vehicles int
		Groups   []struct {
			Name     string
			Vehicles int
		}
	}
	e.want(200, "", "POST", "/campaigns/"+cp.ID+"/launch", "", nil, &launched)
	require.Equal(t, 3, launched.Vehicles)
	type campaign struct {
		Status string
		Groups []struct{ Name, Status string }
	}
	groups := func() []string {
		var c campaign
		e.want(200, "", "GET", "/campaigns/"+cp.ID, "", nil, &c)
		var out []string
		for _, g := range c.Groups {
			out = append(out, g.Name+":"+g.Status)
		}
		return append(out, "campaign:"+c.Status)
	}
	assert.Equal(t, []string{"canary:released", "rest:scheduled", "campaign:running"}, groups())
	p := resolver.PackageID{Name: "rootfs", Version: "3.0.0"}
	var q []struct{ Status string }
	e.want(200, "", "GET", "/vehicles/"+vinB+"/queue", "", nil, &q)
	assert.Empty(t, q, "the rest waits for the canary")

	for i, d := range devices {
		require.NoError(t, os.RemoveAll(target))
		s := startSuricatta(t, swupdate, e.srv.URL, d, "")
		s.waitFor(d.vin+"'s image on disk", 60*time.Second, func() bool {
			got, err := os.ReadFile(target)
			return err == nil && bytes.Equal(got, payload)
		})
		s.waitFor(d.vin+"'s installation to end", 30*time.Second, func() bool {
			return strings.Contains(s.log.String(), "Update successful, executing post-update actions")
		})
		s.stop()
		s = startSuricatta(t, swupdate, e.srv.URL, d, "2")
		s.waitFor(d.vin+"'s update to finish", 60*time.Second, func() bool {
			h, ok := e.lastStatus(d.vin, p)
			return ok && h.Status == "finished"
		})
		s.stop()
		if i == 0 {
			// the gates are evaluated once the canary's report has committed, not inside its answer
			assert.EventuallyWithT(t, func(c *assert.CollectT) {
				assert.Equal(c, []string{"canary:done", "rest:released", "campaign:running"}, groups())
			}, 10*time.Second, 20*time.Millisecond, "the canary's success released the rest")
		}
	}
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, []string{"canary:done", "rest:done", "campaign:finished"}, groups())
	}, 10*time.Second, 20*time.Millisecond, "every group done and the campaign finished")
	for _, d := range devices {
		var installed []resolver.PackageID
		e.want(200, "", "GET", "/vehicles/"+d.vin+"/package", "", nil, &installed)
		assert.Equal(t, []resolver.PackageID{p}, installed, d.vin)
	}
}
