package api

// The audit log's HTTP side. For an audited route, authenticate prepares the entry and a store hook;
// the handler calls its domain through a handle with that hook (the route table's resolverRoute,
// coreRoute, policyRoute wrappers, or svc.With(auditHook(c))), so that the entry is written in the
// transaction of the change. A successful call whose change did not go through such a handle (a bulk
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
	"sota/store"
)

const auditKey = "sota.audit"

// auditCall is the audit entry of the request being served and the hook that writes it.
type auditCall struct {
	entry auth.AuditEntry
	hook  *store.Hook
}

// auditStats counts entries written after the change rather than with it (see package comment above).
type auditStats struct{ separate atomic.Int64 }

// startAudit prepares the entry of an audited call: target from the path's parameters.
func (s *Server) startAudit(c *gin.Context, rt *Route, id *identity) *auditCall {
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
	call := &auditCall{entry: auth.AuditEntry{Actor: actor, Role: id.Role, Method: rt.Method, Route: rt.Path,
		Target: strings.Join(target, "/"), Status: status, Summary: summary}}
	call.hook = s.auth.AuditHook(&call.entry)
	c.Set(auditKey, call)
	return call
}

// finishAudit writes the entry of a successful call whose change wrote no entry itself.
func (s *Server) finishAudit(c *gin.Context, call *auditCall) {
	st := c.Writer.Status()
	if st < 200 || st > 299 || call.hook.Committed() {
		return
	}
	call.entry.Status = st
	s.audit.separate.Add(1)
	if err := s.auth.RecordAudit(call.entry); err != nil {
		s.log.Error("audit log: entry not written", "route", call.entry.Route, "target", call.entry.Target, "err", err)
	}
}

// auditHook is the hook of the request's audit entry, or nil when the route is not audited.
func auditHook(c *gin.Context) *store.Hook {
	if v, ok := c.Get(auditKey); ok {
		return v.(*auditCall).hook
	}
	return nil
}

// setAuditTarget names the entity a call changes when the path does not (a create from the body).
// Call it before the domain call.
func setAuditTarget(c *gin.Context, target string) {
	if v, ok := c.Get(auditKey); ok {
		v.(*auditCall).entry.Target = target
	}
}

// setAuditStatus records the success status when it is not 200. Call it before the domain call.
func setAuditStatus(c *gin.Context, status int) {
	if v, ok := c.Get(auditKey); ok {
		v.(*auditCall).entry.Status = status
	}
}

// resolverRoute, coreRoute and policyRoute serve a route with handlers whose service writes the
// request's audit entry (if any) in the change's transaction.
func (s *Server) resolverRoute(f func(resolverHandlers, *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) { f(resolverHandlers{s: s, rs: s.deps.Resolver.With(auditHook(c))}, c) }
}

func (s *Server) coreRoute(f func(coreHandlers, *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) { f(coreHandlers{e: s.deps.Engine.With(auditHook(c))}, c) }
}

func (s *Server) policyRoute(f func(policyHandlers, *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) { f(policyHandlers{p: s.deps.Policy.With(auditHook(c))}, c) }
}

// authSvc is the auth service with the request's audit hook.
func (s *Server) authSvc(c *gin.Context) *auth.Service { return s.auth.With(auditHook(c)) }

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
