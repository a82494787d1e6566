package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"sota/errs"
	"sota/resolver"
)

// Routes of the resolver for filters, filter–package associations, dependencies, resolve, dry run
// and explain.

// --- filters ---

func (h resolverHandlers) listFilters(c *gin.Context) {
	re, ok := nonEmptyQuery(c, "regex")
	if !ok {
		return
	}
	p, ok := page(c)
	if !ok {
		return
	}
	fs, total, err := h.rs.ListFilters(re, p)
	writeList(c, fs, total, err)
}

func (h resolverHandlers) createFilter(c *gin.Context) {
	var body resolver.Filter
	if !bindJSON(c, &body) {
		return
	}
	setAuditTarget(c, body.Name)
	f, err := h.rs.CreateFilter(body.Name, body.Expression)
	reply(c, http.StatusOK, f, err)
}

func (h resolverHandlers) getFilter(c *gin.Context) {
	f, err := h.rs.GetFilter(c.Param("name"))
	reply(c, http.StatusOK, f, err)
}

func (h resolverHandlers) updateFilter(c *gin.Context) {
	var body struct {
		Expression *string `json:"expression"`
	}
	if !bindJSON(c, &body) {
		return
	}
	if body.Expression == nil {
		writeError(c, errs.InvalidEntity(`The body needs "expression"`))
		return
	}
	f, err := h.rs.UpdateFilter(c.Param("name"), *body.Expression)
	reply(c, http.StatusOK, f, err)
}

func (h resolverHandlers) deleteFilter(c *gin.Context) {
	force := false
	if v, ok := c.GetQuery("force"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(c, errs.InvalidEntity("force must be true or false, not %q", v))
			return
		}
		force = b
	}
	reply(c, http.StatusOK, nil, h.rs.DeleteFilter(c.Param("name"), force))
}

func (h resolverHandlers) filterPackages(c *gin.Context) {
	pkgs, err := h.rs.FilterPackages(c.Param("name"))
	if err != nil {
		writeError(c, err)
		return
	}
	views, err := h.packageViews(pkgs)
	reply(c, http.StatusOK, views, err)
}

func (h resolverHandlers) explain(c *gin.Context) {
	var body struct {
		Expression string `json:"expression"`
		VIN        string `json:"vin"`
	}
	if !bindJSON(c, &body) {
		return
	}
	result, tree, err := h.rs.Explain(body.Expression, body.VIN)
	reply(c, http.StatusOK, gin.H{"result": result, "tree": tree}, err)
}

// --- associations ---

func (h resolverHandlers) associations(c *gin.Context) {
	as, err := h.rs.Associations()
	reply(c, http.StatusOK, as, err)
}

func (h resolverHandlers) packageFilters(c *gin.Context) {
	fs, err := h.rs.PackageFilters(pkgParam(c))
	reply(c, http.StatusOK, fs, err)
}

func (h resolverHandlers) associate(c *gin.Context) {
	a, err := h.rs.Associate(pkgParam(c), c.Param("filter"))
	reply(c, http.StatusOK, a, err)
}

func (h resolverHandlers) dissociate(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.Dissociate(pkgParam(c), c.Param("filter")))
}

// --- dependencies ---

func depParam(c *gin.Context) resolver.PackageID {
	return resolver.PackageID{Name: c.Param("depName"), Version: c.Param("depVersion")}
}

func (h resolverHandlers) dependencies(c *gin.Context) {
	recursive := false
	if v, present := c.GetQuery("recursive"); present {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(c, errs.InvalidEntity("Query parameter recursive must be true or false, not %q", v))
			return
		}
		recursive = b
	}
	edges, err := h.rs.Dependencies(pkgParam(c), recursive)
	reply(c, http.StatusOK, edges, err)
}

func (h resolverHandlers) addDependency(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.AddDependency(pkgParam(c), depParam(c)))
}

func (h resolverHandlers) removeDependency(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.RemoveDependency(pkgParam(c), depParam(c)))
}

func (h resolverHandlers) putRangeDependency(c *gin.Context) {
	var body struct {
		Range *string `json:"range"`
	}
	if !bindJSON(c, &body) {
		return
	}
	if body.Range == nil {
		writeError(c, errs.InvalidEntity(`The body needs "range", e.g. ">=1.2.0 <2.0.0"`))
		return
	}
	reply(c, http.StatusOK, nil, h.rs.SetRangeDependency(pkgParam(c), c.Param("depName"), *body.Range))
}

func (h resolverHandlers) deleteRangeDependency(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.RemoveRangeDependency(pkgParam(c), c.Param("depName")))
}
