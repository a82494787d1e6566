package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
)

// routeServer is the real server with every service (RVI included) and auth on, over a real store.
func routeServer(t *testing.T) (*Server, *httptest.Server) {
	t.Helper()
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"status":0}}`))
	}))
	t.Cleanup(node.Close)
	h, srv := newServer(t, Config{RVI: RVIConfig{NodeURL: node.URL, SelfURL: "http://127.0.0.1:1"}}, withSigning(t, fullDeps(t)).Deps)
	_, created, err := srv.auth.Bootstrap("admin", testPassword)
	require.NoError(t, err)
	require.True(t, created)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return srv, hs
}

// TestRouteTableIsComplete: gin serves exactly the rows of the route table, and every row carries a
// role decision; audited rows change state (never GET) and are admin-side rows.
func TestRouteTableIsComplete(t *testing.T) {
	srv, _ := routeServer(t)
	h, _ := newServer(t, Config{RVI: RVIConfig{NodeURL: "http://127.0.0.1:1"}}, Deps{Auth: srv.deps.Auth, Engine: srv.deps.Engine, Resolver: srv.deps.Resolver, Policy: srv.deps.Policy, Signing: srv.deps.Signing})
	rows := map[string]Route{}
	for _, rt := range srv.Routes() {
		rows[rt.key()] = rt
	}
	var served []string
	for _, r := range h.Routes() {
		served = append(served, r.Method+" "+r.Path)
		_, ok := rows[r.Method+" "+r.Path]
		assert.Truef(t, ok, "route %s %s is served but is not a row of the route table", r.Method, r.Path)
	}
	sort.Strings(served)
	assert.Len(t, served, len(rows), "every row of the table is served once")
	for _, rt := range srv.Routes() {
		t.Run(rt.key(), func(t *testing.T) {
			assert.NotEqual(t, roleUnset, rt.Role, "no role decision")
			assert.NotNil(t, rt.Handler)
			if rt.Audited {
				assert.NotEqual(t, http.MethodGet, rt.Method, "a GET changes nothing and is not audited")
				assert.GreaterOrEqual(t, rt.Role, RoleViewer, "only admin-side calls are audited")
			}
			if rt.Method != http.MethodGet && rt.Role >= RoleOperator {
				assert.True(t, rt.Audited, "a state-changing operator or admin route is audited")
			}
		})
	}
}

// samplePath fills a route's parameters with values that name nothing stored, so that a call that gets
// past authentication changes nothing (it ends in 400 or 404).
func samplePath(p, username string) string {
	vals := map[string]string{":vin": "SAJNX5745SC099999", ":name": "nopkg", ":version": "9.9.9", ":part": "NOPART",
		":filter": "nofilter", ":depName": "nodep", ":depVersion": "9.9.9", ":id": "none", ":username": "nobody",
		":env": "production", ":updateId": "none", ":index": "0", ":file": "app.css", ":service": "packages",
		":tenant": "default", ":actionId": "1", ":moduleId": "nopkg@9.9.9", ":filename": "x.swu"}
	if username != "" && strings.HasSuffix(p, "/password") {
		vals[":username"] = username // one's own account: another's password is the admin's (a domain rule)
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if v, ok := vals[s]; ok {
			segs[i] = v
		}
	}
	return strings.Join(segs, "/")
}

// refusedByAuth are the error codes of the authentication middleware.
var refusedByAuth = map[string]bool{"not_authenticated": true, "invalid_token": true, "forbidden": true, "csrf_token_invalid": true}

// TestRouteRoles calls every route of the table with each kind of caller and checks that authentication
// lets exactly the callers through that the row's role allows: 401 without credentials, 403 for a role
// too low, and anything else (the handler's own answer) when allowed.
func TestRouteRoles(t *testing.T) {
	srv, hs := routeServer(t)
	adminSecret, _, err := srv.auth.CreateToken("admin", "admin-script")
	require.NoError(t, err)
	secrets := map[auth.Role]string{auth.RoleAdmin: adminSecret}
	for _, r := range []auth.Role{auth.RoleOperator, auth.RoleViewer} {
		_, err := srv.auth.CreateAccount(r.String()+"1", testPassword, r)
		require.NoError(t, err)
		secrets[r], _, err = srv.auth.CreateToken(r.String()+"1", r.String()+"-script")
		require.NoError(t, err)
	}

	callers := []struct {
		name   string
		user   string
		header string
		role   Role // the highest role of the caller; roleUnset for none
	}{
		{"anonymous", "", "", roleUnset},
		{"admin", "admin", "Bearer " + adminSecret, RoleAdmin},
		{"operator", "operator1", "Bearer " + secrets[auth.RoleOperator], RoleOperator},
		{"viewer", "viewer1", "Bearer " + secrets[auth.RoleViewer], RoleViewer},
	}
	for _, rt := range srv.Routes() {
		for _, who := range callers {
			t.Run(who.name+" "+rt.key(), func(t *testing.T) {
				req, err := http.NewRequest(rt.Method, hs.URL+samplePath(rt.Path, who.user), strings.NewReader("{}"))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				if who.header != "" {
					req.Header.Set("Authorization", who.header)
				}
				client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				res, err := client.Do(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var e struct{ Code string }
				_ = json.Unmarshal(body, &e)
				refused := refusedByAuth[e.Code]
				switch {
				case rt.Role == RolePublic:
					assert.Falsef(t, refused, "public route refused: %d %s", res.StatusCode, body)
				case rt.Role == RoleDevice, rt.Role == RoleDDI:
					// an account's credentials are not a device's
					assert.Equalf(t, http.StatusUnauthorized, res.StatusCode, "%s", body)
				case rt.Role == RoleRVI:
				case who.role == roleUnset:
					assert.Equalf(t, http.StatusUnauthorized, res.StatusCode, "%s", body)
					assert.Equal(t, "not_authenticated", e.Code)
				case who.role < rt.Role:
					assert.Equalf(t, http.StatusForbidden, res.StatusCode, "%s", body)
					assert.Equal(t, "forbidden", e.Code)
				default:
					assert.Falsef(t, refused, "%s refused: %d %s", who.name, res.StatusCode, body)
				}
			})
		}
	}
}
