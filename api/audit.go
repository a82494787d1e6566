package api

// The audit log's HTTP side. For an audited route, authenticate prepares the entry (auth.Audit, which
// holds the hook that writes it); the handler calls its domain through a handle with that hook (the
// route table's resolverRoute, coreRoute, policyRoute wrappers, or svc.With(auditOf(c).Hook())), so that the
// entry is written in the transaction of the change. A successful call whose change did not go through such a handle (a bulk
// import's batches) gets its entry in a transaction of its own afterwards, and is counted.

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"sota/auth"
	"sota/errs"
)

const auditKey = "sota.audit"

// auditStats counts entries written after the change rather than with it (see package comment above).
type auditStats struct{ separate atomic.Int64 }

// startAudit prepares the entry of an audited call: target from the path's parameters.
func (s *Server) startAudit(c *gin.Context, rt *Route, id *identity) *auth.Audit {
	actor := id.Actor()
	if actor == "" {
		actor = "anonymous" // --auth=none
	}
	var target []string
	for _, p := range c.Params {
		target = append(target, p.Value)
	}
	summary := c.Request.Method + " " + c.Request.URL.Path
	if c.Request.URL.RawQuery != "" {
		summary += "?" + c.Request.URL.RawQuery
	}
	status := rt.Status
	if status == 0 {
		status = http.StatusOK
	}
	call := s.auth.StartAudit(auth.AuditEntry{Actor: actor, Role: id.Role, Method: rt.Method, Route: rt.Path,
		Target: strings.Join(target, "/"), Status: status, Summary: summary})
	c.Set(auditKey, call)
	return call
}

// finishAudit writes the entry of a successful call whose change wrote no entry itself.
func (s *Server) finishAudit(c *gin.Context, call *auth.Audit) {
	st := c.Writer.Status()
	if st < 200 || st > 299 || call.Written() {
		return
	}
	call.Entry.Status = st
	s.audit.separate.Add(1)
	if err := s.auth.RecordAudit(call.Entry); err != nil {
		s.log.Error("audit log: entry not written", "route", call.Entry.Route, "target", call.Entry.Target, "err", err)
	}
}

// auditOf is the audit of the request, or nil when the route is not audited.
func auditOf(c *gin.Context) *auth.Audit {
	if v, ok := c.Get(auditKey); ok {
		return v.(*auth.Audit)
	}
	return nil
}

// setAuditTarget names the entity a call changes when the path does not (a create from the body).
// Call it before the domain call.
func setAuditTarget(c *gin.Context, target string) {
	if v, ok := c.Get(auditKey); ok {
		v.(*auth.Audit).Entry.Target = target
	}
}

// setAuditStatus records the success status when it is not 200. Call it before the domain call.
func setAuditStatus(c *gin.Context, status int) {
	if v, ok := c.Get(auditKey); ok {
		v.(*auth.Audit).Entry.Status = status
	}
}

// resolverRoute, coreRoute and policyRoute serve a route with handlers whose service writes the
// request's audit entry (if any) in the change's transaction.
func (s *Server) resolverRoute(f func(resolverHandlers, *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) { f(resolverHandlers{s: s, rs: s.deps.Resolver.With(auditOf(c).Hook())}, c) }
}

func (s *Server) coreRoute(f func(coreHandlers, *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) { f(coreHandlers{e: s.deps.Engine.With(auditOf(c).Hook())}, c) }
}

func (s *Server) policyRoute(f func(policyHandlers, *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) { f(policyHandlers{p: s.deps.Policy.With(auditOf(c).Hook())}, c) }
}

// authSvc is the auth service with the request's audit hook.
func (s *Server) authSvc(c *gin.Context) *auth.Service { return s.auth.With(auditOf(c).Hook()) }

// getAudit serves GET /audit?from=&to=&actor=&target=&limit=&offset= (newest first, X-Total-Count).
func (s *Server) getAudit(c *gin.Context) {
	q := auth.AuditQuery{Actor: c.Query("actor"), Target: c.Query("target"), Limit: 1000}
	for name, dst := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(c, errs.InvalidEntity("%s must be an RFC 3339 time (2026-12-06T07:00:00Z), not %q", name, v))
				return
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int{"limit": &q.Limit, "offset": &q.Offset} {
		if v := c.Query(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || name == "limit" && n > 10000 {
				writeError(c, errs.InvalidEntity("%s must be a number from 0 to 10000, not %q", name, v))
				return
			}
			*dst = n
		}
	}
	entries, total, err := s.auth.AuditLog(q)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("X-Total-Count", strconv.Itoa(total))
	c.JSON(http.StatusOK, entries)
}
