// Package api holds the HTTP layer: gin routers and handlers (decode, call the domain, encode),
// authentication, the one mapping from domain errors to status codes, and openapi.yaml.
// Handlers hold no business rules.
package api

import (
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"sota/dsl"
	"sota/engine"
	"sota/errs"
	"sota/policy"
	"sota/resolver"
	"sota/store"
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
	MaxBody   int64     // bytes for JSON bodies; 0 means 8 MiB
	Logger    *slog.Logger
}

// Deps are the domain services the handlers call. A nil service leaves its routes out.
type Deps struct {
	DB       *store.DB
	Engine   *engine.Service
	Resolver *resolver.Service // vehicles, packages, components, filters, resolve (api/resolver*.go)
	Filters  dsl.FilterLookup  // saved filters for `filter "name"` references in validate/format; nil: none known
	Policy   *policy.Service   // SDL policy server and table tools (api/policy.go)
}

// Server is the HTTP application.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	auth *Auth // accounts, sessions, API tokens (nil without a store)
}

// New builds the gin engine with every route registered.
func New(cfg Config, deps Deps) (*gin.Engine, *Server) {
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 8 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, deps: deps, log: cfg.Logger}
	if deps.DB != nil {
		s.auth = NewAuth(deps.DB)
		if deps.Resolver != nil {
			deps.Resolver.AddHooks(resolver.Hooks{VehicleDeleted: s.auth.revokeDeviceToken})
		}
	}
	r := gin.New()
	// authenticate guards every /api/v1 route, whoever registers it (see auth_routes.go).
	r.Use(s.recoverer(), s.accessLog(), s.authenticate())
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
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/api/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapiYAML) })

	v1 := r.Group("/api/v1", s.limitBody())
	for _, register := range registrars {
		register(s, r, v1)
	}
	return r, s
}

// registrars are filled by each area's routes file (init), so that areas do not edit one list.
var registrars []func(s *Server, root *gin.Engine, v1 *gin.RouterGroup)

func addRoutes(f func(s *Server, root *gin.Engine, v1 *gin.RouterGroup)) {
	registrars = append(registrars, f)
}

// writeError is the one place that maps a domain error to a status and the {"code","description"} body.
func writeError(c *gin.Context, err error) {
	e, ok := errs.As(err)
	if !ok {
		slog.Error("internal error", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		e = errs.New(errs.Internal, "internal_error", "Internal server error")
	}
	body := gin.H{"code": e.Code, "description": e.Description}
	for k, v := range e.Details {
		body[k] = v
	}
	c.AbortWithStatusJSON(statusOf(e.Kind), body)
}

var statusByKind = map[errs.Kind]int{
	errs.Internal:       http.StatusInternalServerError,
	errs.Invalid:        http.StatusBadRequest,
	errs.NotFound:       http.StatusNotFound,
	errs.Unacceptable:   http.StatusNotAcceptable,
	errs.Conflict:       http.StatusConflict,
	errs.Unauthorized:   http.StatusUnauthorized,
	errs.Forbidden:      http.StatusForbidden,
	errs.TooLarge:       http.StatusRequestEntityTooLarge,
	errs.NotImplemented: http.StatusNotImplemented,
}

func statusOf(k errs.Kind) int {
	if s, ok := statusByKind[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// bindJSON decodes the body into v, answering 400 invalid_entity (or 413) itself when it cannot.
func bindJSON(c *gin.Context, v any) bool {
	if err := c.ShouldBindJSON(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(c, errs.New(errs.TooLarge, "body_too_large", "Request body exceeds %d bytes", mbe.Limit))
			return false
		}
		writeError(c, errs.InvalidEntity("Invalid JSON body: %v", err))
		return false
	}
	return true
}

// streamingRoutes are routes (gin paths) whose handlers read a large body as a stream and bound
// what they keep themselves (fleet import); limitBody leaves them alone.
var streamingRoutes = map[string]bool{}

func (s *Server) limitBody() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil && !isMultipart(c.Request) && !streamingRoutes[c.FullPath()] {
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
