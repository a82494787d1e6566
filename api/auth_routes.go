package api

// HTTP side of authentication: the middleware guarding /api/v1, the UI pages, login and logout,
// and the account, session and API-token routes.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"sota/auth"
	"sota/errs"
	"sota/web"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "sota_session"

const identityKey = "sota.identity"

// identity is who made a request.
type identity struct {
	auth.Principal
	Session *auth.Session // set when authenticated by the session cookie
}

// authRole is the account role a route-table role needs.
var authRole = map[Role]auth.Role{RoleViewer: auth.RoleViewer, RoleOperator: auth.RoleOperator, RoleAdmin: auth.RoleAdmin}

// authenticate runs before every handler and lets the call through by the role of its route-table row:
// public rows need nothing, device rows the device token of the VIN in the path (also under
// --auth=none), RVI rows the RVI node's token, and the other rows an API token (Authorization: Bearer)
// or a session cookie — for a cookie on a state-changing method also the session's X-CSRF-Token.
// A path under /api/v1 that matches no route needs credentials too, so unknown paths tell nothing.
func (s *Server) authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		role := RolePublic
		rt := s.route(c)
		if rt != nil {
			role = rt.Role
		} else if p := c.Request.URL.Path; p == "/api/v1" || strings.HasPrefix(p, "/api/v1/") {
			role = RoleViewer
		}
		switch role {
		case RolePublic:
			c.Next()
			return
		case RoleDevice:
			s.authenticateDevice(c)
			return
		case RoleDDI:
			s.authenticateDDI(c)
			return
		case RoleRVI:
			s.authenticateRVI(c)
			return
		}
		id, err := s.identify(c)
		if s.cfg.AuthNone {
			if id == nil {
				id = &identity{Principal: auth.Principal{Role: auth.RoleAdmin}}
			}
			s.serve(c, rt, id)
			return
		}
		if err != nil {
			c.Header("WWW-Authenticate", `Bearer realm="sota"`)
			writeError(c, err)
			return
		}
		if id.Session != nil && !safeMethod(c.Request.Method) && !id.Session.CheckCSRF(c.GetHeader("X-CSRF-Token")) {
			writeError(c, errs.New(errs.Forbidden, "csrf_token_invalid", "Missing or wrong X-CSRF-Token header for this session"))
			return
		}
		if need := authRole[role]; !id.Allows(need) {
			writeError(c, auth.ErrForbidden("%s %s needs the %s role; this %s has the %s role",
				c.Request.Method, c.FullPath(), need, credentialKind(id), id.Role))
			return
		}
		s.serve(c, rt, id)
	}
}

// serve runs the handler for an authenticated caller, with the audit entry of an audited route.
func (s *Server) serve(c *gin.Context, rt *Route, id *identity) {
	c.Set(identityKey, id)
	if rt != nil && rt.Long {
		liftDeadlines(c)
	}
	if rt == nil || !rt.Audited || s.auth == nil || s.cfg.noAudit {
		c.Next()
		return
	}
	call := s.startAudit(c, rt, id)
	c.Next()
	s.finishAudit(c, call)
}

func credentialKind(id *identity) string {
	if id.Token != nil {
		return "API token"
	}
	return "account"
}

// authenticateDevice requires the device token of the VIN in the path.
func (s *Server) authenticateDevice(c *gin.Context) {
	secret, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="sota-device"`)
		writeError(c, errs.New(errs.Unauthorized, "not_authenticated", "Device token required: Authorization: Bearer <device token>"))
		return
	}
	vin := c.Param("vin")
	if err := s.auth.DeviceVIN(strings.TrimSpace(secret), vin); err != nil {
		writeError(c, err)
		return
	}
	s.deps.Engine.Contact(vin)
	if rt := s.route(c); rt != nil && rt.Long {
		liftDeadlines(c)
	}
	c.Next()
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// identify finds the caller from the Authorization header or, failing that, the session cookie.
func (s *Server) identify(c *gin.Context) (*identity, error) {
	notAuth := errs.New(errs.Unauthorized, "not_authenticated", "Authentication required: log in or send an API token (Authorization: Bearer)")
	if s.auth == nil {
		return nil, notAuth
	}
	if h := c.GetHeader("Authorization"); h != "" {
		secret, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return nil, errs.New(errs.Unauthorized, "invalid_token", "Authorization must be: Bearer <API token>")
		}
		tok, ok, err := s.auth.Token(strings.TrimSpace(secret))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errs.New(errs.Unauthorized, "invalid_token", "Unknown or revoked API token")
		}
		return &identity{Principal: auth.Principal{Username: tok.Username, Role: tok.Role, Token: &tok}}, nil
	}
	sess, ok, err := s.sessionOf(c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notAuth
	}
	ck, _ := c.Cookie(SessionCookie)
	return &identity{Principal: auth.Principal{Username: sess.Username, Role: sess.Role, SessionID: ck}, Session: &sess}, nil
}

func (s *Server) sessionOf(c *gin.Context) (auth.Session, bool, error) {
	if s.auth == nil {
		return auth.Session{}, false, nil
	}
	ck, err := c.Cookie(SessionCookie)
	if err != nil {
		return auth.Session{}, false, nil
	}
	return s.auth.Session(ck)
}

// requireAuthService answers 501 when the server runs without an auth service (--auth=none in tests of
// other areas).
func (s *Server) requireAuthService(c *gin.Context) bool {
	if s.auth == nil {
		writeError(c, errs.New(errs.NotImplemented, "auth_unavailable", "Accounts need the auth service, which this server runs without"))
		return false
	}
	return true
}

var loginTmpl = template.Must(template.New("login").Parse(web.LoginTemplate()))

// uiPage serves the UI, or redirects to the login page without a session.
func (s *Server) uiPage(c *gin.Context) {
	if !s.cfg.AuthNone {
		if _, ok, err := s.sessionOf(c); err != nil {
			writeError(c, err)
			return
		} else if !ok {
			redirect(c, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
			return
		}
	}
	// The filter editor (CodeMirror) adds its own stylesheet at run time: the page's nonce lets that one
	// <style> element in, and nothing else inline.
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		writeError(c, err)
		return
	}
	n := base64.StdEncoding.EncodeToString(nonce)
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'nonce-"+n+"'; img-src 'self' data:; frame-ancestors 'none'")
	c.Header("X-Frame-Options", "DENY")
	c.Data(http.StatusOK, "text/html; charset=utf-8", bytes.Replace(web.Index(), []byte(`<meta name="csp-nonce" content="">`), []byte(`<meta name="csp-nonce" content="`+n+`">`), 1))
}

func uiAsset(c *gin.Context) {
	body, ct, ok := web.Asset(c.Param("file"))
	if !ok {
		refuseAsset(c)
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, ct, body)
}

func renderLogin(c *gin.Context, status int, next, msg string) {
	var buf bytes.Buffer
	if err := loginTmpl.Execute(&buf, struct{ Next, Error string }{next, msg}); err != nil {
		writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Frame-Options", "DENY")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

func (s *Server) loginPage(c *gin.Context) {
	renderLogin(c, http.StatusOK, safeNext(c.Query("next")), "")
}

func (s *Server) login(c *gin.Context) {
	var in struct {
		Username string `json:"username" form:"username"`
		Password string `json:"password" form:"password"`
		Next     string `json:"next" form:"next"`
	}
	isJSON := strings.HasPrefix(c.ContentType(), "application/json")
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)
	if isJSON {
		if !bindJSON(c, &in) {
			return
		}
	} else if err := c.ShouldBind(&in); err != nil {
		writeError(c, errs.InvalidEntity("Invalid login form: %v", err))
		return
	}
	next := c.Query("next")
	if next == "" {
		next = in.Next
	}
	next = safeNext(next)
	if !s.requireAuthService(c) {
		return
	}
	id, sess, err := s.auth.Login(in.Username, in.Password, c.ClientIP())
	if err != nil {
		if e, ok := errs.As(err); ok && e.Kind == errs.Unauthorized && !isJSON {
			renderLogin(c, http.StatusUnauthorized, next, e.Description)
			return
		}
		writeError(c, err)
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: SessionCookie, Value: id, Path: "/", MaxAge: int(auth.SessionTTL.Seconds()), Expires: sess.ExpiresAt,
		HttpOnly: true, Secure: s.secure(c.Request), SameSite: http.SameSiteStrictMode,
	})
	redirect(c, next)
}

func (s *Server) logout(c *gin.Context) {
	if ck, err := c.Cookie(SessionCookie); err == nil && s.auth != nil {
		if err := s.auth.Logout(ck); err != nil {
			writeError(c, err)
			return
		}
	}
	http.SetCookie(c.Writer, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(c.Request), SameSite: http.SameSiteStrictMode,
	})
	redirect(c, "/login")
}

func (s *Server) session(c *gin.Context) {
	out := gin.H{"authNone": s.cfg.AuthNone, "username": nil, "role": nil, "csrfToken": nil, "expiresAt": nil}
	if v, ok := c.Get(identityKey); ok {
		id := v.(*identity)
		if id.Username != "" {
			out["username"] = id.Username
		}
		out["role"] = id.Role
		if id.Session != nil {
			out["csrfToken"] = id.Session.CSRF
			out["expiresAt"] = id.Session.ExpiresAt
		}
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) listTokens(c *gin.Context) {
	if !s.requireAuthService(c) {
		return
	}
	toks, err := s.auth.Tokens(principal(c))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toks)
}

func (s *Server) createToken(c *gin.Context) {
	var in struct {
		Name      string     `json:"name"`
		Role      auth.Role  `json:"role"`
		ExpiresAt *time.Time `json:"expiresAt"`
	}
	if !bindJSON(c, &in) || !s.requireAuthService(c) {
		return
	}
	setAuditTarget(c, in.Name)
	secret, tok, err := s.authSvc(c).MintToken(principal(c), in.Name, in.Role, in.ExpiresAt)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": tok.ID, "name": tok.Name, "username": tok.Username, "role": tok.Role,
		"createdAt": tok.CreatedAt, "expiresAt": tok.ExpiresAt, "token": secret})
}

func (s *Server) revokeToken(c *gin.Context) {
	if !s.requireAuthService(c) {
		return
	}
	if err := s.authSvc(c).RevokeToken(principal(c), c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"revoked": c.Param("id")})
}

func (s *Server) listAccounts(c *gin.Context) {
	if !s.requireAuthService(c) {
		return
	}
	accs, err := s.auth.Accounts()
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, accs)
}

func (s *Server) createAccount(c *gin.Context) {
	var in struct {
		Username string    `json:"username"`
		Password string    `json:"password"`
		Role     auth.Role `json:"role"`
	}
	if !bindJSON(c, &in) || !s.requireAuthService(c) {
		return
	}
	if in.Role == auth.RoleNone {
		in.Role = auth.RoleViewer // least privilege unless the admin says otherwise
	}
	setAuditTarget(c, in.Username)
	acc, err := s.authSvc(c).CreateAccount(in.Username, in.Password, in.Role)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, acc)
}

func (s *Server) setPassword(c *gin.Context) {
	var in struct {
		Password string `json:"password"`
	}
	if !bindJSON(c, &in) || !s.requireAuthService(c) {
		return
	}
	if err := s.authSvc(c).SetPassword(principal(c), c.Param("username"), in.Password); err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"username": c.Param("username")})
}

func (s *Server) deleteAccount(c *gin.Context) {
	if !s.requireAuthService(c) {
		return
	}
	if err := s.authSvc(c).DeleteAccount(c.Param("username")); err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"deleted": c.Param("username")})
}

// principal is the caller (the zero Principal on public routes; an admin without a name under
// --auth=none without credentials).
func principal(c *gin.Context) auth.Principal {
	if v, ok := c.Get(identityKey); ok {
		return v.(*identity).Principal
	}
	return auth.Principal{}
}

// redirect answers 301 to a local path; the answer is never cached, so a later login is not skipped.
func redirect(c *gin.Context, to string) {
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusMovedPermanently, to)
	c.Abort()
}

// safeNext keeps only local absolute paths ("/…", not "//host" or "/\host"), so login is no open redirect.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	if u.Path == "/login" || u.Path == "/logout" {
		return "/"
	}
	return next
}

// refuseAsset answers 409 for a page, script or stylesheet that is not an approved UI asset.
func refuseAsset(c *gin.Context) {
	writeError(c, errs.New(errs.Conflict, "not_approved", "%s is not an approved UI resource", c.Request.URL.Path))
}

// isUIResource reports whether a path names a page, script or stylesheet (.html, .js, .css).
func isUIResource(path string) bool {
	p := strings.ToLower(path)
	return strings.HasSuffix(p, ".html") || strings.HasSuffix(p, ".htm") || strings.HasSuffix(p, ".js") ||
		strings.HasSuffix(p, ".mjs") || strings.HasSuffix(p, ".css")
}
