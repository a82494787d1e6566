package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/api"
	"sota/internal/storetest"
)

// syncBuffer collects the server's stderr while it runs.
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

type running struct {
	base   string
	engine *gin.Engine
	stderr *syncBuffer
	client *http.Client
}

// startServer runs sotad as main does (run with the given flags) on a free loopback port, and stops it
// at the end of the test.
func startServer(t *testing.T, data string, extra ...string) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	baseContext = ctx
	r := &running{stderr: &syncBuffer{}}
	engines := make(chan *gin.Engine, 1)
	wired = func(h http.Handler) { engines <- h.(*gin.Engine) }
	done := make(chan error, 1)
	go func() {
		done <- run(append([]string{"--listen", addr, "--data", data, "--store", storetest.Spec(t, data)}, extra...), env(nil), r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
		baseContext = context.Background()
	})
	scheme := "http"
	tr := &http.Transport{}
	for _, a := range extra {
		if a == "--tls=self-signed" {
			scheme = "https"
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the test checks the certificate itself
		}
	}
	r.base = scheme + "://" + addr
	r.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("server exited: %v\n%s", err, r.stderr.String())
		default:
		}
		resp, err := r.client.Get(r.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				r.engine = <-engines
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v\n%s", err, r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *running) login(t *testing.T, user, password string) *http.Cookie {
	t.Helper()
	form := url.Values{"username": {user}, "password": {password}}
	resp, err := r.client.Post(r.base+"/login", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// documentedExemption is the list in API.md and openapi.yaml of /api/v1 routes outside admin auth.
func documentedExemption(route string) bool {
	return strings.HasPrefix(route, "/api/v1/vehicle_updates") ||
		route == "/api/v1/production/policy" || route == "/api/v1/staging/policy" ||
		route == "/api/v1/:env/policy" || route == "/api/v1/wakeup/public_key"
}

func concretePath(route string) string {
	parts := strings.Split(route, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			parts[i] = "X" + p[1:]
		}
	}
	return strings.Join(parts, "/")
}

// Every /api/v1 route of the fully wired server refuses a call without credentials (401), with a
// forged token (401), with a forged cookie (401), with a device token (401: device tokens open only the
// device API), and a state-changing cookie call without the CSRF token (403). The routes outside admin
// authentication are exactly the documented ones, and an admin API token does not open the device API.
func TestEveryAdminRouteNeedsAuthentication(t *testing.T) {
	r := startServer(t, t.TempDir(), "--admin-password", "release-engineer-pw")
	ck := r.login(t, "admin", "release-engineer-pw")
	adminToken, deviceToken := r.tokens(t, ck)
	send := func(method, path string, hdr map[string]string, cookie *http.Cookie) *http.Response {
		req, err := http.NewRequest(method, r.base+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := r.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	checked, exempt := 0, 0
	for _, rt := range r.engine.Routes() {
		if !strings.HasPrefix(rt.Path, "/api/v1/") {
			continue
		}
		path := concretePath(rt.Path)
		if path == "/api/v1/production/policy" || path == "/api/v1/staging/policy" || documentedExemption(rt.Path) {
			exempt++
			if strings.HasPrefix(rt.Path, "/api/v1/vehicle_updates") {
				resp := send(rt.Method, path, map[string]string{"Authorization": "Bearer " + adminToken}, nil)
				assert.Equalf(t, http.StatusUnauthorized, resp.StatusCode, "%s %s with an admin API token", rt.Method, rt.Path)
			}
			continue
		}
		checked++
		for _, tc := range []struct {
			name string
			hdr  map[string]string
		}{
			{"no credentials", nil},
			{"forged token", map[string]string{"Authorization": "Bearer sota_forged"}},
			{"forged cookie", map[string]string{"Cookie": api.SessionCookie + "=forged"}},
			{"a device token", map[string]string{"Authorization": "Bearer " + deviceToken}},
		} {
			resp := send(rt.Method, path, tc.hdr, nil)
			assert.Equalf(t, http.StatusUnauthorized, resp.StatusCode, "%s %s with %s", rt.Method, rt.Path, tc.name)
		}
		if rt.Method != http.MethodGet && rt.Method != http.MethodHead {
			resp := send(rt.Method, path, nil, ck)
			assert.Equalf(t, http.StatusForbidden, resp.StatusCode, "%s %s with a session cookie but no CSRF token", rt.Method, rt.Path)
		}
	}
	t.Logf("%d admin routes checked, %d exempt", checked, exempt)
	assert.GreaterOrEqual(t, checked, 70, "the admin routes were enumerated")
	assert.GreaterOrEqual(t, exempt, 4, "device API, two policy-server endpoints and the public key")
}

// tokens returns an admin API token (minted with the session) and the device token of a new vehicle.
func (r *running) tokens(t *testing.T, ck *http.Cookie) (admin, device string) {
	t.Helper()
	call := func(method, path, body string, hdr map[string]string, out any) {
		req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := r.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Lessf(t, resp.StatusCode, 300, "%s %s", method, path)
		if out != nil {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
		}
	}
	var sess struct{ CSRFToken string }
	call("GET", "/api/v1/session", "", map[string]string{"Cookie": ck.String()}, &sess)
	var tok struct{ Token string }
	call("POST", "/api/v1/tokens", `{"name":"route check"}`, map[string]string{"Cookie": ck.String(), "X-CSRF-Token": sess.CSRFToken}, &tok)
	bearer := map[string]string{"Authorization": "Bearer " + tok.Token}
	call("PUT", "/api/v1/vehicles/1HGCM82633A004352", "", bearer, nil)
	var dev struct{ Token string }
	call("POST", "/api/v1/vehicles/1HGCM82633A004352/token", "", bearer, &dev)
	require.NotEmpty(t, tok.Token)
	require.NotEmpty(t, dev.Token)
	return tok.Token, dev.Token
}

func TestGeneratedAdminPasswordIsPrintedOnce(t *testing.T) {
	data := t.TempDir()
	storetest.Spec(t, data) // one store for the subtests
	var password string
	t.Run("first start", func(t *testing.T) {
		r := startServer(t, data)
		out := r.stderr.String()
		i := strings.Index(out, "(shown only once): ")
		require.GreaterOrEqualf(t, i, 0, "no generated password in:\n%s", out)
		password = strings.Fields(out[i+len("(shown only once): "):])[0]
		r.login(t, "admin", password)
	})
	t.Run("second start", func(t *testing.T) {
		r := startServer(t, data)
		assert.NotContains(t, r.stderr.String(), "shown only once")
		r.login(t, "admin", password)
	})
}

func TestBadAdminPasswordStopsTheServer(t *testing.T) {
	data := t.TempDir()
	err := run([]string{"--listen", "127.0.0.1:0", "--data", data, "--store", storetest.Spec(t, data), "--admin-password", "short"}, env(nil), &syncBuffer{})
	assert.ErrorContains(t, err, "Invalid password")
}

func TestSelfSignedTLS(t *testing.T) {
	data := t.TempDir()
	storetest.Spec(t, data) // one store for the subtests
	var first []byte
	t.Run("first start generates", func(t *testing.T) {
		r := startServer(t, data, "--tls=self-signed", "--admin-password", "release-engineer-pw")
		var err error
		first, err = os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
		require.NoError(t, err)
		resp, err := r.client.Get(r.base + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		require.NotNil(t, resp.TLS)
		leaf := resp.TLS.PeerCertificates[0]
		assert.Contains(t, leaf.DNSNames, "localhost")
		assert.NoError(t, leaf.VerifyHostname("127.0.0.1"))

		form := url.Values{"username": {"admin"}, "password": {"release-engineer-pw"}}
		resp, err = r.client.Post(r.base+"/login", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Contains(t, resp.Header.Get("Set-Cookie"), "Secure")
		fi, err := os.Stat(filepath.Join(data, "tls", "key.pem"))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the private key is private")
	})
	t.Run("restart reuses it", func(t *testing.T) {
		startServer(t, data, "--tls=self-signed")
		again, err := os.ReadFile(filepath.Join(data, "tls", "cert.pem"))
		require.NoError(t, err)
		assert.Equal(t, first, again)
	})
	_, err := parseFlags([]string{"--tls=self-signed", "--tls-cert", "a", "--tls-key", "b"}, env(nil), &syncBuffer{})
	assert.Error(t, err)
}
