package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// POST /api/v1/fleet/import: bulk import of vehicles as JSON lines (resolver.Service.Import).

func (h resolverHandlers) importFleet(c *gin.Context) {
	res, err := h.rs.Import(c.Request.Context(), c.Request.Body, nil)
	reply(c, http.StatusOK, res, err)
}
