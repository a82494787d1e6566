package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// POST /api/v1/fleet/import: bulk import of vehicles as JSON lines (resolver.Service.Import).

const fleetImportPath = "/api/v1/fleet/import"

func init() {
	streamingRoutes[fleetImportPath] = true
	addRoutes(func(s *Server, _ *gin.Engine, v1 *gin.RouterGroup) {
		if s.deps.Resolver == nil {
			return
		}
		h := resolverHandlers{s: s, rs: s.deps.Resolver}
		v1.POST("/fleet/import", h.importFleet)
	})
}

func (h resolverHandlers) importFleet(c *gin.Context) {
	res, err := h.rs.Import(c.Request.Context(), c.Request.Body, nil)
	reply(c, http.StatusOK, res, err)
}
