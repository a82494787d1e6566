package api

// Transport safety: timeouts and a connection cap for the HTTP server, HSTS, and which peers may tell
// the server about the original request (X-Forwarded-For, X-Forwarded-Proto).

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/net/netutil"

	"sota/errs"
)

// Limits bound what one client can hold of the server: a slow body, a slow reader or an idle
// keep-alive connection is closed after its timeout, and at most MaxConns connections are served at
// once (more wait in the kernel's backlog). Routes marked Long in the route table (uploads, the fleet
// import, downloads) lift the read and write deadlines for their request once it is authenticated.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration // from the end of the request headers to the end of the answer
	IdleTimeout       time.Duration // a keep-alive connection between requests
	MaxConns          int
}

// DefaultLimits are sotad's limits (a function: the package holds no exported mutable state).
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxConns:          4096,
	}
}

// NewHTTPServer returns the server for handler with the limits' timeouts.
func NewHTTPServer(handler http.Handler, l Limits) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
		WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout}
}

// LimitListener serves at most l.MaxConns connections of ln at once (no limit when it is 0).
func LimitListener(ln net.Listener, l Limits) net.Listener {
	if l.MaxConns <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, l.MaxConns)
}

// liftDeadlines lets a long upload or download of an authenticated caller run past the server's
// read and write timeouts.
func liftDeadlines(c *gin.Context) {
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}

// parseProxies reads the trusted proxies: addresses or CIDRs.
func parseProxies(list []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, p := range list {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			ip := net.ParseIP(p)
			if ip == nil {
				return nil, fmt.Errorf("trusted proxy %q is not an IP address or CIDR", p)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %v", p, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// fromTrustedProxy reports whether the direct peer is a trusted proxy.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	if len(s.proxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	for _, n := range s.proxies {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// secure reports whether the client reached the server over TLS: directly, or through a trusted
// proxy that says so with X-Forwarded-Proto: https.
func (s *Server) secure(r *http.Request) bool {
	return r.TLS != nil || s.fromTrustedProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// hsts tells browsers that reached the server over TLS to use nothing else for a year.
func (s *Server) hsts() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.secure(c.Request) {
			c.Header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		c.Next()
	}
}

// authenticateRVI requires the RVI node's token (--rvi-token) on /rvi/<service>; /rvi/wakeup carries
// the engine's own signed wake-up, which its handler verifies. Without a token configured the calls
// pass only under --auth=none.
func (s *Server) authenticateRVI(c *gin.Context) {
	if c.Param("service") == "wakeup" || s.cfg.RVI.Token == "" && s.cfg.AuthNone {
		c.Next()
		return
	}
	secret, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || s.cfg.RVI.Token == "" || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(secret)), []byte(s.cfg.RVI.Token)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="sota-rvi"`)
		writeError(c, errs.New(errs.Unauthorized, "invalid_token", "RVI calls need the RVI node's token (Authorization: Bearer <--rvi-token>)"))
		return
	}
	c.Next()
}
