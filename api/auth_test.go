package api

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"sota/auth"
	"sota/internal/storetest"
	"sota/store"
	"sota/web"
)

const testPassword = "correct horse battery"

// Hashing at the production cost would make these tests slow under the race detector; the cost
// is a tuning knob, the rules tested here do not depend on it.
func init() { auth.SetBcryptCost(bcrypt.MinCost) }

func TestProductionBcryptCost(t *testing.T) {
	assert.GreaterOrEqual(t, auth.ProductionBcryptCost, bcrypt.DefaultCost)
}

type authEnv struct {
	t   *testing.T
	url string
	srv *Server
	db  *store.DB
}

// newAuthEnv runs the real server (auth on) over a real store with the admin account "admin".
func newAuthEnv(t *testing.T, tlsServer bool) *authEnv {
	t.Helper()
	db, err := storetest.OpenDir(t, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	engine, srv := newServer(t, Config{}, Deps{Auth: auth.New(db)})
	_, created, err := srv.auth.Bootstrap("admin", testPassword)
	require.NoError(t, err)
	require.True(t, created)
	var hs *httptest.Server
	if tlsServer {
		hs = httptest.NewTLSServer(engine)
	} else {
		hs = httptest.NewServer(engine)
	}
	t.Cleanup(hs.Close)
	if tlsServer {
		http.DefaultTransport.(*http.Transport).TLSClientConfig = hs.Client().Transport.(*http.Transport).TLSClientConfig
	}
	return &authEnv{t: t, url: hs.URL, srv: srv, db: db}
}

// do sends one request without following redirects.
func (e *authEnv) do(method, path string, body io.Reader, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	require.NoError(e.t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{
		Transport:     http.DefaultTransport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return string(b)
}

func errorCode(t *testing.T, r *http.Response) string {
	t.Helper()
	var body struct{ Code, Description string }
	require.NoError(t, json.Unmarshal([]byte(readBody(t, r)), &body))
	return body.Code
}

// login posts the form and returns the session cookie.
func (e *authEnv) login() *http.Cookie {
	e.t.Helper()
	form := url.Values{"username": {"admin"}, "password": {testPassword}}
	resp := e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(e.t, http.StatusMovedPermanently, resp.StatusCode)
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	e.t.Fatal("no session cookie after login")
	return nil
}

func (e *authEnv) csrf(ck *http.Cookie) string {
	e.t.Helper()
	resp := e.do("GET", "/api/v1/session", nil, map[string]string{"Cookie": ck.String()})
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	var s struct {
		Username  string `json:"username"`
		CSRFToken string `json:"csrfToken"`
	}
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&s))
	require.Equal(e.t, "admin", s.Username)
	require.NotEmpty(e.t, s.CSRFToken)
	return s.CSRFToken
}

func TestUIPagesRedirectUnauthenticatedToLogin(t *testing.T) {
	e := newAuthEnv(t, false)
	for _, page := range []string{"/", "/index.html", "/index.html?x=1"} {
		resp := e.do("GET", page, nil, nil)
		assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode, page)
		assert.Equal(t, "/login?next="+url.QueryEscape(page), resp.Header.Get("Location"), page)
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "a cached 301 would skip the page after login")
	}
	// An expired or unknown cookie is the same as none.
	resp := e.do("GET", "/", nil, map[string]string{"Cookie": SessionCookie + "=forged"})
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)

	resp = e.do("GET", "/login?next=%2Findex.html", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body := readBody(t, resp)
	assert.Contains(t, body, `name="next" value="/index.html"`)
	assert.Contains(t, body, `action="/login"`)
}

func TestLoginSetsSessionCookieAndRedirectsToNext(t *testing.T) {
	e := newAuthEnv(t, false)
	form := url.Values{"username": {"ADMIN"}, "password": {testPassword}, "next": {"/index.html"}}
	resp := e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	assert.Equal(t, "/index.html", resp.Header.Get("Location"))
	raw := resp.Header.Get("Set-Cookie")
	assert.Contains(t, raw, SessionCookie+"=")
	assert.Contains(t, raw, "HttpOnly")
	assert.Contains(t, raw, "SameSite=Strict")
	assert.Contains(t, raw, "Path=/")
	assert.NotContains(t, raw, "Secure", "plain HTTP: a Secure cookie would never come back")
	ck := resp.Cookies()[0]

	page := e.do("GET", "/", nil, map[string]string{"Cookie": ck.String()})
	require.Equal(t, http.StatusOK, page.StatusCode)
	assert.Contains(t, readBody(t, page), `<script src="/assets/app.js"`)
	idx := e.do("GET", "/index.html", nil, map[string]string{"Cookie": ck.String()})
	assert.Equal(t, http.StatusOK, idx.StatusCode)

	// JSON body, next as query parameter.
	resp = e.do("POST", "/login?next=%2F%23%2Ffilters", strings.NewReader(`{"username":"admin","password":"`+testPassword+`"}`),
		map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	assert.Equal(t, "/#/filters", resp.Header.Get("Location"))
	assert.NotEqual(t, ck.Value, resp.Cookies()[0].Value, "each login opens its own session")
}

func TestBadCredentialsAre401(t *testing.T) {
	e := newAuthEnv(t, false)
	for _, creds := range [][2]string{{"admin", "wrong password"}, {"nobody", testPassword}, {"", ""}} {
		form := url.Values{"username": {creds[0]}, "password": {creds[1]}, "next": {"/"}}
		resp := e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, creds)
		assert.Empty(t, resp.Cookies(), creds)
		assert.Contains(t, readBody(t, resp), "Invalid username or password", "the form shows why")

		js, _ := json.Marshal(map[string]string{"username": creds[0], "password": creds[1]})
		resp = e.do("POST", "/login", bytes.NewReader(js), map[string]string{"Content-Type": "application/json"})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, creds)
		assert.Equal(t, "bad_credentials", errorCode(t, resp))
	}
}

func TestLoginIsNoOpenRedirect(t *testing.T) {
	e := newAuthEnv(t, false)
	for _, next := range []string{"//evil.example/x", "https://evil.example/", `/\evil.example`, "javascript:alert(1)", "evil", "/logout", "/ok\r\nSet-Cookie: x=1"} {
		form := url.Values{"username": {"admin"}, "password": {testPassword}, "next": {next}}
		resp := e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		require.Equal(t, http.StatusMovedPermanently, resp.StatusCode, next)
		assert.Equal(t, "/", resp.Header.Get("Location"), next)
	}
	form := url.Values{"username": {"admin"}, "password": {testPassword}}
	resp := e.do("POST", "/login?next=%2F%2Fevil.example", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	assert.Equal(t, "/", resp.Header.Get("Location"))
}

func TestOnlyApprovedAssetsAreServed(t *testing.T) {
	e := newAuthEnv(t, false)
	for path, ct := range map[string]string{"/assets/app.js": "text/javascript", "/assets/app.css": "text/css"} {
		resp := e.do("GET", path, nil, nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), ct), path)
	}
	// Every module of the admin UI is served, as JavaScript (a browser refuses a module of another type).
	for name := range web.Assets {
		resp := e.do("GET", "/assets/"+name, nil, nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, name)
		if strings.HasSuffix(name, ".js") {
			assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript"), name)
		}
	}
	for _, path := range []string{"/assets/evil.js", "/assets/login.html", "/assets/index.html", "/other.html", "/admin/page.html", "/app.js", "/x/y.css", "/assets/APP.JS", "/index.htm"} {
		resp := e.do("GET", path, nil, nil)
		assert.Equal(t, http.StatusConflict, resp.StatusCode, path)
		assert.Equal(t, "not_approved", errorCode(t, resp), path)
	}
}

func TestSessionCookieIsSecureUnderTLS(t *testing.T) {
	e := newAuthEnv(t, true)
	form := url.Values{"username": {"admin"}, "password": {testPassword}}
	resp := e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	raw := resp.Header.Get("Set-Cookie")
	assert.Contains(t, raw, "Secure")
	assert.Contains(t, raw, "HttpOnly")
	assert.Contains(t, raw, "SameSite=Strict")
}

func TestCookieCallsNeedTheCSRFTokenToChangeState(t *testing.T) {
	e := newAuthEnv(t, false)
	ck := e.login()
	body := func() io.Reader { return strings.NewReader(`{"name":"ci"}`) }

	resp := e.do("POST", "/api/v1/tokens", body(), map[string]string{"Cookie": ck.String(), "Content-Type": "application/json"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "csrf_token_invalid", errorCode(t, resp))
	resp = e.do("POST", "/api/v1/tokens", body(), map[string]string{"Cookie": ck.String(), "X-CSRF-Token": "guess"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Another session's token does not fit this one.
	other := e.csrf(e.login())
	resp = e.do("POST", "/api/v1/tokens", body(), map[string]string{"Cookie": ck.String(), "X-CSRF-Token": other})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	toks := e.do("GET", "/api/v1/tokens", nil, map[string]string{"Cookie": ck.String()})
	require.Equal(t, http.StatusOK, toks.StatusCode, "reads need no CSRF token")
	assert.JSONEq(t, `[]`, readBody(t, toks), "the refused calls changed nothing")

	resp = e.do("POST", "/api/v1/tokens", body(), map[string]string{"Cookie": ck.String(), "X-CSRF-Token": e.csrf(ck)})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestAPITokens(t *testing.T) {
	e := newAuthEnv(t, false)
	ck := e.login()
	resp := e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"release script"}`),
		map[string]string{"Cookie": ck.String(), "X-CSRF-Token": e.csrf(ck)})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var tok struct{ ID, Name, Username, Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	assert.Equal(t, "release script", tok.Name)
	assert.Equal(t, "admin", tok.Username)
	require.True(t, strings.HasPrefix(tok.Token, "sota_"))

	bearer := map[string]string{"Authorization": "Bearer " + tok.Token}
	// A token needs no CSRF header, even for writes.
	resp = e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"second"}`), bearer)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	list := e.do("GET", "/api/v1/tokens", nil, bearer)
	require.Equal(t, http.StatusOK, list.StatusCode)
	text := readBody(t, list)
	assert.Contains(t, text, `"release script"`)
	assert.Contains(t, text, `"second"`)
	assert.NotContains(t, text, tok.Token, "secrets are shown once, at creation")

	// The store holds only hashes of tokens and session ids.
	require.NoError(t, e.db.View(func(txn store.Txn) error {
		return txn.Iterate([]byte("auth/"), func(k, v []byte) error {
			assert.NotContains(t, string(k)+string(v), tok.Token)
			assert.NotContains(t, string(k)+string(v), ck.Value)
			assert.NotContains(t, string(v), testPassword)
			return nil
		})
	}))

	for _, h := range []string{"Bearer sota_forged", "Bearer " + tok.Token + "x", "Basic YWRtaW46eA=="} {
		resp = e.do("GET", "/api/v1/tokens", nil, map[string]string{"Authorization": h})
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, h)
		assert.Equal(t, "invalid_token", errorCode(t, resp), h)
	}

	resp = e.do("DELETE", "/api/v1/tokens/"+tok.ID, nil, bearer)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp = e.do("GET", "/api/v1/tokens", nil, bearer)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a revoked token stops working")
	resp = e.do("DELETE", "/api/v1/tokens/"+tok.ID, nil, map[string]string{"Cookie": ck.String(), "X-CSRF-Token": e.csrf(ck)})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, "missing_token", errorCode(t, resp))
}

func TestLogoutEndsTheSession(t *testing.T) {
	e := newAuthEnv(t, false)
	ck := e.login()
	require.Equal(t, http.StatusOK, e.do("GET", "/api/v1/session", nil, map[string]string{"Cookie": ck.String()}).StatusCode)

	resp := e.do("POST", "/logout", nil, map[string]string{"Cookie": ck.String()}) // no CSRF token needed
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	assert.Equal(t, "/login", resp.Header.Get("Location"))
	assert.Contains(t, resp.Header.Get("Set-Cookie"), "Max-Age=0", "the browser drops the cookie")

	resp = e.do("GET", "/api/v1/tokens", nil, map[string]string{"Cookie": ck.String()})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the old cookie no longer works")
	assert.Equal(t, "not_authenticated", errorCode(t, resp))
	resp = e.do("GET", "/", nil, map[string]string{"Cookie": ck.String()})
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
}

func TestSessionsExpire(t *testing.T) {
	e := newAuthEnv(t, false)
	ck := e.login()
	e.srv.auth.SetClock(func() time.Time { return time.Now().Add(auth.SessionTTL + time.Minute) })
	resp := e.do("GET", "/api/v1/tokens", nil, map[string]string{"Cookie": ck.String()})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp = e.do("GET", "/", nil, map[string]string{"Cookie": ck.String()})
	assert.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
}

func TestAccounts(t *testing.T) {
	e := newAuthEnv(t, false)
	ck := e.login()
	h := map[string]string{"Cookie": ck.String(), "X-CSRF-Token": e.csrf(ck), "Content-Type": "application/json"}

	resp := e.do("POST", "/api/v1/accounts", strings.NewReader(`{"username":"Release.Eng","password":"short"}`), h)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "invalid_entity", errorCode(t, resp))
	resp = e.do("POST", "/api/v1/accounts", strings.NewReader(`{"username":"Release.Eng","password":"long enough pw"}`), h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, readBody(t, resp), "hash")
	resp = e.do("POST", "/api/v1/accounts", strings.NewReader(`{"username":"release.eng","password":"long enough pw"}`), h)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "duplicate_entry", errorCode(t, resp))

	form := url.Values{"username": {"release.eng"}, "password": {"long enough pw"}}
	resp = e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode, "the new account can log in")
	eng := resp.Cookies()[0]

	resp = e.do("PUT", "/api/v1/accounts/release.eng/password", strings.NewReader(`{"password":"another long one"}`), h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do("GET", "/api/v1/session", nil, map[string]string{"Cookie": eng.String()}).StatusCode,
		"a password change ends the account's sessions")
	resp = e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the old password is gone")

	resp = e.do("DELETE", "/api/v1/accounts/nobody", nil, h)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp = e.do("DELETE", "/api/v1/accounts/Release.Eng", nil, h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp = e.do("DELETE", "/api/v1/accounts/admin", nil, h)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "last_account", errorCode(t, resp))
	list := e.do("GET", "/api/v1/accounts", nil, h)
	assert.Contains(t, readBody(t, list), `"username":"admin"`)
}

func TestBootstrapOnlyOnAnEmptyStore(t *testing.T) {
	db, err := storetest.OpenDir(t, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	a := auth.New(db)
	gen, created, err := a.Bootstrap("admin", "")
	require.NoError(t, err)
	require.True(t, created)
	assert.GreaterOrEqual(t, len(gen), 20, "a generated password is long")
	_, _, err = a.Login("admin", gen, "")
	require.NoError(t, err, "the generated password works")

	gen2, created, err := a.Bootstrap("admin", "")
	require.NoError(t, err)
	assert.False(t, created)
	assert.Empty(t, gen2, "the password is generated and printed once")

	_, _, err = auth.New(db).Bootstrap("other", "x")
	assert.NoError(t, err, "with accounts present nothing is validated or created")
}

func TestAuthNoneOpensTheAdminAPI(t *testing.T) {
	db, err := storetest.OpenDir(t, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	engine, _ := newServer(t, Config{AuthNone: true}, Deps{Auth: auth.New(db)})
	hs := httptest.NewServer(engine)
	defer hs.Close()
	resp, err := http.Get(hs.URL + "/api/v1/accounts")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get(hs.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "no login page in the way")
	// Without a login there is nobody to own an API token.
	resp, err = http.Post(hs.URL+"/api/v1/tokens", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// The whole trip a browser makes: the page asked for, 301 to the login page, the form posted with the
// next it carried, 301 back to that page, which now answers 200. Unknown pages, scripts and stylesheets
// stay 409 with a session too.
func TestLoginRoundTripReturnsToThePageAskedFor(t *testing.T) {
	e := newAuthEnv(t, false)
	asked := "/index.html?view=campaigns"
	resp := e.do("GET", asked, nil, nil)
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	loginURL := resp.Header.Get("Location")

	resp = e.do("GET", loginURL, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m := regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(readBody(t, resp))
	require.NotNil(t, m, "the login form carries the page asked for")
	next := html.UnescapeString(m[1])
	assert.Equal(t, asked, next)

	form := url.Values{"username": {"admin"}, "password": {testPassword}, "next": {next}}
	resp = e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	assert.Equal(t, asked, resp.Header.Get("Location"))
	ck := resp.Cookies()[0]

	resp = e.do("GET", resp.Header.Get("Location"), nil, map[string]string{"Cookie": ck.String()})
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, readBody(t, resp), `<script src="/assets/app.js"`)

	for _, path := range []string{"/admin.html", "/assets/vendor.js", "/assets/theme.css", "/static/app.js"} {
		resp = e.do("GET", path, nil, map[string]string{"Cookie": ck.String()})
		assert.Equal(t, http.StatusConflict, resp.StatusCode, path)
	}
}
