package api

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"sota/resolver"
)

// Routes of resolution: GET /resolve/:name/:version and POST /resolve/dry-run.

// resolveEntry encodes a target as ["VIN", [PackageId…]].
type resolveEntry resolver.Target

func (e resolveEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{e.VIN, e.Install})
}

func (h resolverHandlers) resolve(c *gin.Context) {
	targets, err := h.rs.Resolve(c.Request.Context(), pkgParam(c))
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]resolveEntry, len(targets))
	for i, t := range targets {
		out[i] = resolveEntry(t)
	}
	c.JSON(http.StatusOK, out)
}

func (h resolverHandlers) dryRun(c *gin.Context) {
	var req resolver.DryRunRequest
	if !bindJSON(c, &req) {
		return
	}
	if e := h.s.deps.Engine; e != nil { // with the engine's problems (missing binaries, data plans, …)
		res, err := e.DryRun(c.Request.Context(), req)
		reply(c, http.StatusOK, res, err)
		return
	}
	res, err := h.rs.DryRun(c.Request.Context(), req)
	reply(c, http.StatusOK, res, err)
}
