package api

// Regression tests of the red-team findings of issue 18 that live in the HTTP layer (the others:
// auth_roles_test.go for 3 and 6, engine/findings_test.go for 5 and 10, client/confine_test.go for 4,
// cmd/sotad for 8).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenServer is the real server with every service and auth on, and an admin API token.
func tokenServer(t *testing.T, cfg Config) (*Server, *httptest.Server, func(method, path, body string) (int, []byte)) {
	t.Helper()
	h, srv := newServer(t, cfg, fullDeps(t).Deps)
	_, _, err := srv.auth.Bootstrap("admin", testPassword)
	require.NoError(t, err)
	secret, _, err := srv.auth.CreateToken("admin", "redteam")
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return srv, hs, func(method, path, body string) (int, []byte) {
		req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
}

// Finding 1: POST /rvi/{packages,report,start,ack} took unauthenticated calls under --auth on.
func TestRVICallsNeedTheRVIToken(t *testing.T) {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"status":0}}`))
	}))
	t.Cleanup(node.Close)
	const vin = "WDD00000000000042"
	srv, hs, call := tokenServer(t, Config{RVI: RVIConfig{NodeURL: node.URL, SelfURL: "http://127.0.0.1:1", Token: "node-secret"}})
	st, b := call("PUT", "/api/v1/vehicles/"+vin, "")
	require.Equal(t, http.StatusNoContent, st, "%s", b)
	packages := `{"jsonrpc":"2.0","id":1,"method":"message","params":{"service_name":"genivi.org/backend/sota/packages","parameters":[{"vin":"` + vin + `","installed_software":[{"name":"evil","version":"6.6.6"}]}]}}`
	rvi := func(service, auth string) int {
		req, _ := http.NewRequest("POST", hs.URL+"/rvi/"+service, strings.NewReader(packages))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	for _, service := range []string{"packages", "report", "start", "ack"} {
		for _, auth := range []string{"", "Bearer wrong", "Bearer " + "node-secret" + "x"} {
			assert.Equalf(t, http.StatusUnauthorized, rvi(service, auth), "%s with %q", service, auth)
		}
	}
	installed, err := srv.deps.Resolver.InstalledPackages(vin)
	require.NoError(t, err)
	assert.Empty(t, installed, "nothing was installed by the refused calls")
	assert.Equal(t, http.StatusOK, rvi("packages", "Bearer node-secret"))
	installed, err = srv.deps.Resolver.InstalledPackages(vin)
	require.NoError(t, err)
	assert.Len(t, installed, 1, "the node with its token is served")

	// without a token configured, auth on refuses every call (sotad refuses to start so)
	_, hs2, _ := tokenServer(t, Config{RVI: RVIConfig{NodeURL: node.URL, SelfURL: "http://127.0.0.1:1"}})
	req, _ := http.NewRequest("POST", hs2.URL+"/rvi/packages", strings.NewReader(packages))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

// Finding 4 (server side): package names . and .. were accepted.
func TestDotPackageNamesAreRefused(t *testing.T) {
	_, _, call := tokenServer(t, Config{})
	for _, name := range []string{".", ".."} {
		st, b := call("POST", "/api/v1/packages", `{"id":{"name":"`+name+`","version":"1.0.0"}}`)
		assert.Equal(t, http.StatusBadRequest, st, "%s", b)
		assert.Contains(t, string(b), "invalid_entity")
	}
	st, b := call("GET", "/api/v1/packages", "")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "[]", strings.TrimSpace(string(b)))
	st, _ = call("POST", "/api/v1/packages", `{"id":{"name":"..nav","version":"1.0.0"}}`)
	assert.Equal(t, http.StatusOK, st, "dots inside a name are fine")
}

// Finding 5 over HTTP: 2^63-1 bytes of traffic twice wrapped the cycle's used bytes to -2.
func TestTrafficOverflowIs409(t *testing.T) {
	_, _, call := tokenServer(t, Config{})
	const vin = "WDD00000000000007"
	for _, c := range [][3]string{
		{"PUT", "/api/v1/vehicles/" + vin, ""},
		{"POST", "/api/v1/data_plans", `{"id":"basic"}`},
		{"POST", "/api/v1/data_plans/basic/billing_cycles", `{"start":"2020-01-01T00:00:00Z","poolBytes":1000}`},
		{"PUT", "/api/v1/vehicles/" + vin + "/data_plan", `{"id":"basic"}`},
	} {
		st, b := call(c[0], c[1], c[2])
		require.Truef(t, st/100 == 2, "%v: %d %s", c, st, b)
	}
	max := `{"bytes":9223372036854775807}`
	st, b := call("POST", "/api/v1/vehicles/"+vin+"/traffic", max)
	require.Equal(t, http.StatusOK, st, "%s", b)
	st, b = call("POST", "/api/v1/vehicles/"+vin+"/traffic", max)
	assert.Equal(t, http.StatusConflict, st, "%s", b)
	assert.Contains(t, string(b), "traffic_overflow")
	_, b = call("GET", "/api/v1/data_plans/basic/billing_cycles", "")
	var cycles []struct{ UsedBytes int64 }
	require.NoError(t, json.Unmarshal(b, &cycles))
	require.Len(t, cycles, 1)
	assert.Equal(t, int64(math.MaxInt64), cycles[0].UsedBytes)
}

// Finding 7: {"vin":"…"}xxx created the vehicle.
func TestTrailingDataAfterJSONIsRefused(t *testing.T) {
	_, _, call := tokenServer(t, Config{})
	for _, body := range []string{
		`{"vin":"WDD00000000000001"}xxx`,
		`{"vin":"WDD00000000000001"}{"vin":"WDD00000000000002"}`,
		`{"vin":"WDD00000000000001"} 1`,
	} {
		st, b := call("POST", "/api/v1/vehicles", body)
		assert.Equal(t, http.StatusBadRequest, st, "%s", body)
		assert.Contains(t, string(b), "data after the JSON value")
	}
	st, b := call("GET", "/api/v1/vehicles", "")
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "[]", strings.TrimSpace(string(b)), "no vehicle was created")
	st, _ = call("POST", "/api/v1/vehicles", "{\"vin\":\"WDD00000000000001\"}\n  \n")
	assert.Equal(t, http.StatusOK, st, "white space after the value is fine")
}

// Finding 9: no HSTS under TLS, and behind a TLS-terminating proxy the session cookie lost Secure.
// X-Forwarded-Proto counts only from --trusted-proxy addresses.
func TestHSTSAndTrustedProxies(t *testing.T) {
	login := func(url string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", url+"/login", strings.NewReader(`{"username":"admin","password":"`+testPassword+`"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if strings.HasPrefix(url, "https") {
			client.Transport = http.DefaultTransport.(*http.Transport).Clone()
			client.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
		}
		res, err := client.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusMovedPermanently, res.StatusCode)
		return res
	}
	proxied := map[string]string{"X-Forwarded-Proto": "https"}

	// a proxy on loopback that is not trusted: its header is ignored
	_, plain, _ := tokenServer(t, Config{})
	res := login(plain.URL, proxied)
	assert.Empty(t, res.Header.Get("Strict-Transport-Security"))
	assert.NotContains(t, res.Header.Get("Set-Cookie"), "Secure")

	// the same from a trusted proxy: the client used TLS
	_, trusted, _ := tokenServer(t, Config{TrustedProxies: []string{"127.0.0.1"}})
	res = login(trusted.URL, proxied)
	assert.Equal(t, "max-age=31536000; includeSubDomains", res.Header.Get("Strict-Transport-Security"))
	assert.Contains(t, res.Header.Get("Set-Cookie"), "Secure")
	res = login(trusted.URL, nil)
	assert.NotContains(t, res.Header.Get("Set-Cookie"), "Secure", "plain HTTP through the proxy")

	// direct TLS
	h, srv := newServer(t, Config{}, fullDeps(t).Deps)
	_, _, err := srv.auth.Bootstrap("admin", testPassword)
	require.NoError(t, err)
	tlsSrv := httptest.NewTLSServer(h)
	t.Cleanup(tlsSrv.Close)
	res = login(tlsSrv.URL, nil)
	assert.Equal(t, "max-age=31536000; includeSubDomains", res.Header.Get("Strict-Transport-Security"))
	assert.Contains(t, res.Header.Get("Set-Cookie"), "Secure")

	assert.Error(t, CheckTrustedProxies([]string{"proxy.example"}))
	assert.NoError(t, CheckTrustedProxies([]string{"10.0.0.0/8", "::1"}))
}

// Finding 2: only ReadHeaderTimeout was set, so slow bodies and idle connections stayed open forever
// and any number of them could be held. The server now has read, write and idle timeouts and serves
// a bounded number of connections at once.
func TestServerTimeoutsAndConnectionCap(t *testing.T) {
	h, srv := newServer(t, Config{}, fullDeps(t).Deps)
	_, _, err := srv.auth.Bootstrap("admin", testPassword)
	require.NoError(t, err)
	// the held connections must outlast the checks below on a loaded machine, so the read timeout
	// is seconds; each wait for a cut is far longer than the timeout it waits for
	limits := Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, IdleTimeout: 300 * time.Millisecond, MaxConns: 2}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := NewHTTPServer(h, limits)
	go hs.Serve(LimitListener(ln, limits))
	t.Cleanup(func() { hs.Close() })
	addr := ln.Addr().String()

	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		return err == nil || !(errorsAs(err, &ne) && ne.Timeout())
	}
	// a body that never comes
	slow, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write([]byte("POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"))
	require.NoError(t, err)
	assert.True(t, closedWithin(slow, 15*time.Second), "a slow body is cut off")

	// an idle keep-alive connection
	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	_, err = idle.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(idle), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.True(t, closedWithin(idle, 15*time.Second), "an idle connection is closed")

	// the cap: two held connections, the third waits until one goes
	hold := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = c.Write([]byte("POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"))
		require.NoError(t, err)
		return c
	}
	a, b := hold(), hold()
	defer a.Close()
	defer b.Close()
	time.Sleep(300 * time.Millisecond) // both accepted, well before their read timeout
	third, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err) // the kernel accepts it into the backlog
	defer third.Close()
	_, err = third.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
	require.NoError(t, err)
	third.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	n, _ := third.Read(make([]byte, 1))
	assert.Equal(t, 0, n, "not served while two connections are held")
	third.SetReadDeadline(time.Now().Add(30 * time.Second))
	body, err := io.ReadAll(third) // served once the held ones time out
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(body, []byte("HTTP/1.1 200")), "%s", body)
}

func errorsAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}
