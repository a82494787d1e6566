package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
)

// loginAs logs in with the form and returns the session cookie and its CSRF token.
func (e *authEnv) loginAs(user, password string) (*http.Cookie, string) {
	e.t.Helper()
	form := url.Values{"username": {user}, "password": {password}}
	resp := e.do("POST", "/login", strings.NewReader(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	require.Equal(e.t, http.StatusMovedPermanently, resp.StatusCode, "login as %s", user)
	ck := resp.Cookies()[0]
	resp = e.do("GET", "/api/v1/session", nil, map[string]string{"Cookie": ck.String()})
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	var s struct{ CSRFToken string }
	require.NoError(e.t, json.NewDecoder(resp.Body).Decode(&s))
	return ck, s.CSRFToken
}

func (e *authEnv) account(user string, role auth.Role) {
	e.t.Helper()
	_, err := e.srv.auth.CreateAccount(user, testPassword, role)
	require.NoError(e.t, err)
}

func sessionHeaders(ck *http.Cookie, csrf string) map[string]string {
	return map[string]string{"Cookie": ck.String(), "X-CSRF-Token": csrf, "Content-Type": "application/json"}
}

func TestSessionShowsTheRole(t *testing.T) {
	e := newAuthEnv(t, false)
	e.account("olga", auth.RoleOperator)
	ck, _ := e.loginAs("olga", testPassword)
	resp := e.do("GET", "/api/v1/session", nil, map[string]string{"Cookie": ck.String()})
	var s struct{ Username, Role string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	assert.Equal(t, "olga", s.Username)
	assert.Equal(t, "operator", s.Role)
}

// A token's role is at most its creator's; it defaults to the creator's; an expired token is refused.
func TestTokenRolesAndExpiry(t *testing.T) {
	e := newAuthEnv(t, false)
	e.account("olga", auth.RoleOperator)
	ck, csrf := e.loginAs("olga", testPassword)
	h := sessionHeaders(ck, csrf)

	resp := e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"too high","role":"admin"}`), h)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "forbidden", errorCode(t, resp))
	resp = e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"bad","role":"root"}`), h)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	resp = e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"default"}`), h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var def struct{ Role, Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&def))
	assert.Equal(t, "operator", def.Role)

	resp = e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"ro","role":"viewer"}`), h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var ro struct{ Role, Token string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ro))
	assert.Equal(t, "viewer", ro.Role)
	bearer := map[string]string{"Authorization": "Bearer " + ro.Token, "Content-Type": "application/json"}
	assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/tokens", nil, bearer).StatusCode)
	resp = e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"escalate","role":"operator"}`), bearer)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a viewer token cannot mint an operator token")

	// A viewer token sees only its account's tokens; the admin sees all.
	var list []struct{ Name, Username string }
	require.NoError(t, json.NewDecoder(e.do("GET", "/api/v1/tokens", nil, bearer).Body).Decode(&list))
	for _, tk := range list {
		assert.Equal(t, "olga", tk.Username)
	}
	adminTok, _, err := e.srv.auth.CreateToken("admin", "admin's")
	require.NoError(t, err)
	var all []struct{ ID, Name, Username string }
	require.NoError(t, json.NewDecoder(e.do("GET", "/api/v1/tokens", nil, map[string]string{"Authorization": "Bearer " + adminTok}).Body).Decode(&all))
	assert.Len(t, all, 3)
	var adminID string
	for _, tk := range all {
		if tk.Username == "admin" {
			adminID = tk.ID
		}
	}
	resp = e.do("DELETE", "/api/v1/tokens/"+adminID, nil, h)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "an operator cannot revoke another account's token")

	// Expiry (finding 6: tokens never expired).
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	resp = e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"short","expiresAt":"`+at+`"}`), h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var short struct {
		Token     string
		ExpiresAt time.Time
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&short))
	assert.Equal(t, at, short.ExpiresAt.Format(time.RFC3339))
	sb := map[string]string{"Authorization": "Bearer " + short.Token}
	assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/tokens", nil, sb).StatusCode)
	e.srv.auth.SetClock(func() time.Time { return time.Now().Add(61 * time.Minute) })
	resp = e.do("GET", "/api/v1/tokens", nil, sb)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "an expired token is refused")
	assert.Equal(t, "invalid_token", errorCode(t, resp))
	assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/tokens", nil, map[string]string{"Authorization": "Bearer " + def.Token}).StatusCode,
		"a token without expiry lives on")
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	resp = e.do("POST", "/api/v1/tokens", strings.NewReader(`{"name":"past","expiresAt":"`+past+`"}`), map[string]string{"Authorization": "Bearer " + def.Token})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// Finding 6: any API token could reset another account's password. Now only an admin may; changing
// one's own password ends the account's other sessions but keeps the one that made the change.
func TestPasswordChangeRules(t *testing.T) {
	e := newAuthEnv(t, false)
	e.account("olga", auth.RoleOperator)
	e.account("vic", auth.RoleViewer)
	ckA, csrfA := e.loginAs("olga", testPassword)
	ckB, _ := e.loginAs("olga", testPassword)
	opTok, _, err := e.srv.auth.CreateToken("olga", "olga's script")
	require.NoError(t, err)

	resp := e.do("PUT", "/api/v1/accounts/vic/password", strings.NewReader(`{"password":"taken over!"}`),
		map[string]string{"Authorization": "Bearer " + opTok, "Content-Type": "application/json"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "forbidden", errorCode(t, resp))
	resp = e.do("PUT", "/api/v1/accounts/admin/password", strings.NewReader(`{"password":"taken over!"}`), sessionHeaders(ckA, csrfA))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	e.loginAs("vic", testPassword) // unchanged

	resp = e.do("PUT", "/api/v1/accounts/olga/password", strings.NewReader(`{"password":"a new password"}`), sessionHeaders(ckA, csrfA))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, http.StatusOK, e.do("GET", "/api/v1/session", nil, map[string]string{"Cookie": ckA.String()}).StatusCode,
		"the session that changed the password stays")
	resp = e.do("GET", "/api/v1/tokens", nil, map[string]string{"Cookie": ckB.String()})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the account's other session ends")
	e.loginAs("olga", "a new password")

	adm, admCSRF := e.loginAs("admin", testPassword)
	resp = e.do("PUT", "/api/v1/accounts/vic/password", strings.NewReader(`{"password":"reset by admin"}`), sessionHeaders(adm, admCSRF))
	require.Equal(t, http.StatusOK, resp.StatusCode, "an admin resets another account's password")
	e.loginAs("vic", "reset by admin")
}

func TestAccountRoles(t *testing.T) {
	e := newAuthEnv(t, false)
	adm, csrf := e.loginAs("admin", testPassword)
	h := sessionHeaders(adm, csrf)
	resp := e.do("POST", "/api/v1/accounts", strings.NewReader(`{"username":"olga","password":"long enough pw","role":"operator"}`), h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, readBody(t, resp), `"role":"operator"`)
	resp = e.do("POST", "/api/v1/accounts", strings.NewReader(`{"username":"vic","password":"long enough pw"}`), h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, readBody(t, resp), `"role":"viewer"`, "least privilege by default")
	resp = e.do("POST", "/api/v1/accounts", strings.NewReader(`{"username":"x","password":"long enough pw","role":"boss"}`), h)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	op, opCSRF := e.loginAs("olga", "long enough pw")
	resp = e.do("POST", "/api/v1/accounts", strings.NewReader(`{"username":"mallory","password":"long enough pw","role":"admin"}`), sessionHeaders(op, opCSRF))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "forbidden", errorCode(t, resp))
	assert.Equal(t, http.StatusForbidden, e.do("GET", "/api/v1/accounts", nil, map[string]string{"Cookie": op.String()}).StatusCode)
	resp = e.do("GET", "/api/v1/accounts", nil, map[string]string{"Cookie": adm.String()})
	assert.Contains(t, readBody(t, resp), `"username":"olga","role":"operator"`)
}

// Finding 3: login attempts were unlimited. Past 10 failures a minute per account, or per client
// address, logins get 429 with Retry-After, without a password check, until the minute is over.
func TestLoginLimits(t *testing.T) {
	e := newAuthEnv(t, false)
	e.account("olga", auth.RoleOperator)
	now := time.Now()
	var mu sync.Mutex
	e.srv.auth.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	try := func(user, password, from string) *http.Response {
		js, _ := json.Marshal(map[string]string{"username": user, "password": password})
		h := map[string]string{"Content-Type": "application/json"}
		if from != "" {
			h["X-Forwarded-For"] = from // not a trusted proxy: must be ignored
		}
		return e.do("POST", "/login", strings.NewReader(string(js)), h)
	}
	for i := 0; i < auth.LoginFailuresPerMinute; i++ {
		assert.Equal(t, http.StatusUnauthorized, try("olga", "wrong password", "").StatusCode)
	}
	resp := try("olga", testPassword, "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "even the right password waits")
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.True(t, secs > 0 && secs <= 60, "Retry-After %d", secs)
	assert.Equal(t, "too_many_attempts", errorCode(t, resp))

	// The client address is limited too: guessing other accounts from it is refused, and a forged
	// X-Forwarded-For from an untrusted peer does not give a fresh address.
	resp = try("admin", testPassword, "203.0.113.9")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "same client address")

	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	assert.Equal(t, http.StatusMovedPermanently, try("olga", testPassword, "").StatusCode, "a minute later")
}
