package api

import (
	"bytes"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"sota/dsl"
	"sota/errs"
)

// Routes of the filter language that need no stored data: validate and format. References
// (`filter "name"`) resolve through Deps.Filters. Both take {"expression","name"} or, with any
// content type but application/json, the bare filter text as the body, so that
// `curl --data-binary 'vin_matches "^WDD"' …/validate/filter` works (a filter cannot start with "{").

type filterExpression struct {
	Expression string `json:"expression"`
	Name       string `json:"name"`
}

// checkFilter validates an expression as if it were saved under name (when given), so that a
// reference cycle through the filter being edited is found, and returns its checked tree.
func (s *Server) checkFilter(req filterExpression) (dsl.Node, error) {
	n, err := dsl.ValidateFilter(req.Name, req.Expression, s.deps.Filters)
	if err != nil {
		return nil, errs.InvalidFilter(err)
	}
	return n, nil
}

// bindFilterRequest reads the body as JSON, or as the bare filter text when it is not declared as
// JSON and does not start with "{".
func bindFilterRequest(c *gin.Context, req *filterExpression) bool {
	if c.ContentType() == "application/json" {
		return bindJSON(c, req)
	}
	body, err := io.ReadAll(c.Request.Body)
	if err == nil && !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		req.Expression = string(body)
		return true
	}
	// JSON after all, or a read error (too large) that bindJSON reports as it does for every route
	if err != nil {
		c.Request.Body = io.NopCloser(errReader{err})
	} else {
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
	}
	return bindJSON(c, req)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func (s *Server) validateFilter(c *gin.Context) {
	var req filterExpression
	if !bindFilterRequest(c, &req) {
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
	if !bindFilterRequest(c, &req) {
		return
	}
	n, err := s.checkFilter(req)
	if err != nil {
		writeError(c, err)
		return
	}
	c.PureJSON(http.StatusOK, gin.H{"expression": dsl.Format(n)}) // ">=" as written, not \u003e=
}

// lintOptions are the saved filters and, with a resolver, the fleet's vocabulary.
func (s *Server) lintOptions(name string) dsl.LintOptions {
	o := dsl.LintOptions{Filters: s.deps.Filters, Name: name}
	if s.deps.Resolver != nil {
		o.Fleet = s.deps.Resolver.Vocabulary()
	}
	return o
}

// lintFilter answers every error and warning of an expression; a broken filter is an answer here,
// not a 406.
func (s *Server) lintFilter(c *gin.Context) {
	var req filterExpression
	if !bindFilterRequest(c, &req) {
		return
	}
	c.PureJSON(http.StatusOK, dsl.Lint(req.Expression, s.lintOptions(req.Name)))
}

// completeFilter names what may come at a byte offset of an expression.
func (s *Server) completeFilter(c *gin.Context) {
	var req struct {
		Expression string `json:"expression"`
		Offset     *int   `json:"offset"`
	}
	if !bindJSON(c, &req) {
		return
	}
	if req.Offset == nil {
		writeError(c, errs.InvalidEntity(`The body needs "offset", the byte offset of the cursor in "expression"`))
		return
	}
	o := s.lintOptions("")
	out, err := dsl.Complete(req.Expression, *req.Offset, dsl.CompleteOptions{Filters: o.Filters, Fleet: o.Fleet})
	if err != nil {
		writeError(c, errs.InvalidEntity("Invalid offset: %v", err))
		return
	}
	c.PureJSON(http.StatusOK, out)
}
