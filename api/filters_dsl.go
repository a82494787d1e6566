package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"sota/dsl"
	"sota/errs"
)

// Routes of the filter language that need no stored data: validate and format. References
// (`filter "name"`) resolve through Deps.Filters.

func init() {
	addRoutes(func(s *Server, _ *gin.Engine, v1 *gin.RouterGroup) {
		v1.POST("/validate/filter", s.validateFilter)
		v1.POST("/filters/format", s.formatFilter)
	})
}

type filterExpression struct {
	Expression string `json:"expression"`
	Name       string `json:"name"`
}

// checkFilter validates an expression as if it were saved under name (when given), so that a
// reference cycle through the filter being edited is found, and returns its checked tree.
func (s *Server) checkFilter(req filterExpression) (dsl.Node, error) {
	refs := s.deps.Filters
	if req.Name != "" {
		refs = dsl.WithFilter(refs, req.Name, req.Expression)
	}
	n, err := dsl.Validate(req.Expression, refs)
	if err != nil {
		return nil, errs.InvalidFilter(err)
	}
	return n, nil
}

func (s *Server) validateFilter(c *gin.Context) {
	var req filterExpression
	if !bindJSON(c, &req) {
		return
	}
	if _, err := s.checkFilter(req); err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, "OK")
}

func (s *Server) formatFilter(c *gin.Context) {
	var req filterExpression
	if !bindJSON(c, &req) {
		return
	}
	n, err := s.checkFilter(req)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"expression": dsl.Format(n)})
}
