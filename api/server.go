// Package api holds the HTTP layer: gin routers and handlers (decode, call the domain, encode),
// authentication, the one mapping from domain errors to status codes, and openapi.yaml.
// Handlers hold no business rules.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"sota/auth"
	"sota/dsl"
	"sota/engine"
	"sota/errs"
	"sota/policy"
	"sota/resolver"
	"sota/signing"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the OpenAPI description served at /api/openapi.yaml.
func OpenAPI() []byte { return openapiYAML }

// Config is what the HTTP layer needs to know about the running server.
type Config struct {
	AuthNone  bool
	ChunkSize int
	RVI       RVIConfig // RVI transport (api/device_rvi.go); off without NodeURL
	DDI       DDIConfig // hawkBit DDI transport (api/ddi.go)
	MaxBody   int64     // bytes for JSON bodies; 0 means 8 MiB
	// TrustedProxies are the addresses or CIDRs (--trusted-proxy) whose X-Forwarded-For and
	// X-Forwarded-Proto are believed; from anyone else those headers are ignored.
	TrustedProxies []string
	// MetricsSeparate leaves /metrics off the route table: sotad serves MetricsHandler on
	// --metrics-listen instead.
	MetricsSeparate bool

	noMetrics, noAudit bool // the benchmarks' baseline: a server without metrics and audit log
	Logger             *slog.Logger
}

// Deps are the domain services the handlers call, built by cmd/sotad (or a test) over the store; the
// HTTP layer never opens or names the store itself. A nil service leaves its routes out; New refuses a
// combination that cannot serve (see New).
type Deps struct {
	// Auth holds accounts, sessions, API, device and gateway tokens and the audit log. Required unless
	// Config.AuthNone; without it the device, DDI and signing routes and the audit log are left out.
	Auth     *auth.Service
	Engine   *engine.Service   // SOTA core: queue, campaigns, device API (needs Resolver)
	Resolver *resolver.Service // vehicles, packages, components, filters, resolve (api/resolver*.go)
	Filters  dsl.FilterLookup  // saved filters for `filter "name"` references in validate/format; nil: none known
	Policy   *policy.Service   // SDL policy server and table tools (api/policy.go)
	Signing  *signing.Service  // signed update metadata (api/signing.go, needs Engine); nil with --signing off
	// StoreSize reports the bytes the store takes on disk (/metrics sota_store_size_bytes); nil: not reported.
	StoreSize func() int64
}

// check names the first dependency the configuration needs and deps lack.
func (d Deps) check(cfg Config) error {
	switch {
	case d.Auth == nil && !cfg.AuthNone:
		return errors.New("api: Deps.Auth is required unless Config.AuthNone (nobody could log in or call a device route)")
	case d.Engine != nil && d.Resolver == nil:
		return errors.New("api: Deps.Engine needs Deps.Resolver (the device and queue routes use both)")
	case d.Signing != nil && d.Engine == nil:
		return errors.New("api: Deps.Signing needs Deps.Engine (the director signs the engine's updates)")
	case cfg.RVI.NodeURL != "" && d.Engine == nil:
		return errors.New("api: Config.RVI needs Deps.Engine (RVI is a transport over the device API)")
	}
	return nil
}

// Server is the HTTP application.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	auth *auth.Service // Deps.Auth: accounts, sessions, tokens, audit log (nil only with Config.AuthNone)
	rvi  *rvi          // the RVI transport (nil without Config.RVI.NodeURL)

	audit   auditStats
	metrics *metrics          // nil without metrics
	proxies []*net.IPNet      // Config.TrustedProxies
	routes  []Route           // the route table (routes.go)
	byRoute map[string]*Route // rows by "METHOD gin-path"
}

// New builds the gin engine with every route of the route table registered. It returns an error for a
// missing dependency (Deps.check) or an invalid trusted-proxy entry.
func New(cfg Config, deps Deps) (*gin.Engine, *Server, error) {
	if err := deps.check(cfg); err != nil {
		return nil, nil, err
	}
	proxies, err := parseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, nil, fmt.Errorf("api: %w", err)
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 8 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, deps: deps, log: cfg.Logger, auth: deps.Auth, proxies: proxies}
	if s.auth != nil && deps.Resolver != nil {
		deps.Resolver.AddHooks(s.auth.ResolverHooks())
	}
	if cfg.RVI.NodeURL != "" && deps.Engine != nil {
		s.rvi = newRVI(cfg.RVI, deps.Engine, cfg.ChunkSize, s)
	}
	r := gin.New()
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, nil, fmt.Errorf("api: %w", err)
	}
	// authenticate guards every route by its row's role (auth_routes.go).
	if !cfg.noMetrics {
		s.metrics = newMetrics(s)
		r.Use(s.measure())
	}
	r.Use(s.recoverer(), s.accessLog(), s.hsts(), s.authenticate(), s.limitBody())
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		if isUIResource(c.Request.URL.Path) {
			refuseAsset(c)
			return
		}
		writeError(c, errs.New(errs.NotFound, "not_found", "No route for %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, gin.H{"code": "method_not_allowed", "description": "Method not allowed"})
	})

	s.routes = s.routeTable()
	s.byRoute = make(map[string]*Route, len(s.routes))
	for i := range s.routes {
		rt := &s.routes[i]
		if rt.Role == roleUnset || rt.Handler == nil {
			panic(fmt.Sprintf("api: route %s has no role or no handler", rt.key()))
		}
		if _, dup := s.byRoute[rt.key()]; dup {
			panic(fmt.Sprintf("api: route %s is in the table twice", rt.key()))
		}
		s.byRoute[rt.key()] = rt
		if s.metrics != nil {
			rt.metrics = s.metrics.forRoute(rt)
		}
		r.Handle(rt.Method, rt.Path, rt.Handler)
	}
	if s.rvi != nil {
		go s.rvi.register(context.Background())
	}
	return r, s, nil
}

// Close ends the server's background work (the RVI transport's resends); call it before the store
// closes. Calling it again does nothing.
func (s *Server) Close() {
	if s.rvi != nil {
		s.rvi.stop()
	}
}

// CheckTrustedProxies reports a trusted-proxy entry that is not an IP address or CIDR.
func CheckTrustedProxies(list []string) error {
	_, err := parseProxies(list)
	return err
}

// route is the table row of the matched route, or nil when none matched.
func (s *Server) route(c *gin.Context) *Route {
	return s.byRoute[c.Request.Method+" "+c.FullPath()]
}

// writeError is the one place that maps a domain error to a status and the {"code","description"} body.
func writeError(c *gin.Context, err error) {
	e, ok := errs.As(err)
	if !ok {
		slog.Error("internal error", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		e = errs.New(errs.Internal, "internal_error", "Internal server error")
	}
	if secs, ok := e.Details["retryAfter"].(int); ok && e.Kind == errs.TooManyRequests {
		c.Header("Retry-After", strconv.Itoa(secs))
	}
	body := gin.H{"code": e.Code, "description": e.Description}
	for k, v := range e.Details {
		body[k] = v
	}
	c.AbortWithStatusJSON(statusOf(e.Kind), body)
}

var statusByKind = map[errs.Kind]int{
	errs.Internal:        http.StatusInternalServerError,
	errs.Invalid:         http.StatusBadRequest,
	errs.NotFound:        http.StatusNotFound,
	errs.Unacceptable:    http.StatusNotAcceptable,
	errs.Conflict:        http.StatusConflict,
	errs.Unauthorized:    http.StatusUnauthorized,
	errs.Forbidden:       http.StatusForbidden,
	errs.TooLarge:        http.StatusRequestEntityTooLarge,
	errs.NotImplemented:  http.StatusNotImplemented,
	errs.TooManyRequests: http.StatusTooManyRequests,
}

func statusOf(k errs.Kind) int {
	if s, ok := statusByKind[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// bindJSON decodes the body into v, answering 400 invalid_entity (or 413) itself when it cannot: an
// unknown field or a field of the wrong type is named (jsonBodyError).
func bindJSON(c *gin.Context, v any) bool {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// one JSON value and nothing after it: {"vin":"…"}xxx is not a body to act on
		if _, terr := dec.Token(); terr != io.EOF {
			var mbe *http.MaxBytesError
			if errors.As(terr, &mbe) {
				err = terr
			} else {
				err = errs.InvalidEntity("Invalid JSON body: data after the JSON value")
			}
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(c, errs.New(errs.TooLarge, "body_too_large", "Request body exceeds %d bytes", mbe.Limit))
			return false
		}
		if e, ok := errs.As(err); ok {
			writeError(c, e)
			return false
		}
		writeError(c, jsonBodyError(err))
		return false
	}
	return true
}

func (s *Server) limitBody() gin.HandlerFunc {
	return func(c *gin.Context) {
		if rt := s.route(c); c.Request.Body != nil && strings.HasPrefix(c.Request.URL.Path, "/api/v1/") &&
			!isMultipart(c.Request) && (rt == nil || !rt.Streaming) {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBody)
		}
		c.Next()
	}
}

func isMultipart(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= 19 && ct[:19] == "multipart/form-data"
}

func (s *Server) recoverer() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", v)
				writeError(c, errors.New("panic"))
			}
		}()
		c.Next()
	}
}

func (s *Server) accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		if c.Writer.Status() >= 500 {
			s.log.Error("request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(), "ms", time.Since(start).Milliseconds())
		} else {
			s.log.Debug("request", "method", c.Request.Method, "path", c.Request.URL.Path, "status", c.Writer.Status(), "ms", time.Since(start).Milliseconds())
		}
	}
}
