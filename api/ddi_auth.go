package api

// hawkBit DDI authentication: a device presents its device token as "Authorization: TargetToken
// <token>" (the token of the device API), or a gateway presents a gateway token an admin minted
// (auth/gateway.go) as "Authorization: GatewayToken <token>" and may then act for any vehicle; and the
// admin routes of gateway tokens.

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"sota/errs"
)

// authenticateDDI checks a DDI call: the tenant of the path (404 unknown_tenant) and a TargetToken of
// the vehicle in the path or a gateway token (401 otherwise, also for another vehicle's TargetToken).
func (s *Server) authenticateDDI(c *gin.Context) {
	if !strings.EqualFold(c.Param("tenant"), s.ddiTenant()) {
		writeError(c, errs.New(errs.NotFound, "unknown_tenant", "Unknown tenant %q", c.Param("tenant")))
		return
	}
	unauthorized := func(msg string) {
		c.Header("WWW-Authenticate", `TargetToken realm="sota-ddi"`)
		writeError(c, errs.New(errs.Unauthorized, "not_authenticated", "%s", msg))
	}
	scheme, secret, _ := strings.Cut(c.GetHeader("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	vin := c.Param("vin")
	switch {
	case strings.EqualFold(scheme, "TargetToken") && secret != "":
		if err := s.auth.DeviceVIN(secret, vin); err != nil {
			if e, ok := errs.As(err); ok && (e.Kind == errs.Unauthorized || e.Kind == errs.Forbidden) {
				unauthorized("Unknown or revoked target token, or the token of another vehicle")
				return
			}
			writeError(c, err)
			return
		}
	case strings.EqualFold(scheme, "GatewayToken") && secret != "":
		ok, err := s.auth.CheckGatewayToken(secret)
		if err != nil {
			writeError(c, err)
			return
		}
		if !ok {
			unauthorized("Unknown or revoked gateway token")
			return
		}
	default:
		unauthorized("Authorization required: TargetToken <device token> or GatewayToken <gateway token>")
		return
	}
	s.deps.Engine.Contact(vin)
	if rt := s.route(c); rt != nil && rt.Long {
		liftDeadlines(c)
	}
	c.Next()
}

func (s *Server) listGatewayTokens(c *gin.Context) {
	toks, err := s.auth.GatewayTokens()
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toks)
}

func (s *Server) createGatewayToken(c *gin.Context) {
	var in struct {
		Name string `json:"name"`
	}
	if !bindJSON(c, &in) {
		return
	}
	setAuditTarget(c, "gateway:"+in.Name)
	secret, tok, err := s.authSvc(c).CreateGatewayToken(in.Name)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": tok.ID, "name": tok.Name, "createdAt": tok.CreatedAt, "token": secret})
}

func (s *Server) revokeGatewayToken(c *gin.Context) {
	if err := s.authSvc(c).RevokeGatewayToken(c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"revoked": c.Param("id")})
}
