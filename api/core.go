package api

// Core routes: package binaries, update requests, campaigns, vehicle queues and history, data plans and
// billing cycles, the scheduler's manual triggers and the wake-up key. Rules live in package engine.

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"sota/engine"
	"sota/errs"
)

func init() {
	addRoutes(func(s *Server, _ *gin.Engine, v1 *gin.RouterGroup) {
		e := s.deps.Engine
		if e == nil {
			return
		}
		h := coreHandlers{e: e}
		v1.POST("/data_plans", h.addPlan)
		v1.GET("/data_plans", h.listPlans)
		v1.POST("/data_plans/:id/billing_cycles", h.addCycle)
		v1.GET("/data_plans/:id/billing_cycles", h.listCycles)
		v1.POST("/update_requests/purge", h.purge)
		v1.POST("/update_requests/xmit", h.xmit)
		v1.GET("/wakeup/public_key", h.publicKey)
	})
}

type coreHandlers struct{ e *engine.Service }

// corePage reads limit and offset.
func corePage(c *gin.Context) (engine.Page, bool) {
	var p engine.Page
	for name, dst := range map[string]*int{"limit": &p.Limit, "offset": &p.Offset} {
		v := c.Query(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(c, errs.InvalidEntity("%s must be a number, not %q", name, v))
			return p, false
		}
		*dst = n
	}
	if err := p.Check(); err != nil {
		writeError(c, err)
		return p, false
	}
	return p, true
}

// coreTimeQuery reads an optional RFC 3339 query parameter.
func coreTimeQuery(c *gin.Context, name string) (time.Time, bool) {
	v, ok := c.GetQuery(name)
	if !ok {
		return time.Time{}, true
	}
	t, err := engine.ParseTime(name, v)
	if err != nil {
		writeError(c, err)
		return t, false
	}
	return t, true
}

func (h coreHandlers) addPlan(c *gin.Context) {
	var body struct {
		ID string `json:"id"`
	}
	if !bindJSON(c, &body) {
		return
	}
	p, err := h.e.AddDataPlan(body.ID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (h coreHandlers) listPlans(c *gin.Context) {
	regex, given := c.GetQuery("regex")
	if given && regex == "" {
		writeError(c, errs.InvalidEntity("regex must not be empty"))
		return
	}
	ps, err := h.e.DataPlans(regex)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("X-Total-Count", strconv.Itoa(len(ps)))
	c.JSON(http.StatusOK, ps)
}

func (h coreHandlers) addCycle(c *gin.Context) {
	var body struct {
		Start     string `json:"start"`
		PoolBytes *int64 `json:"poolBytes"`
	}
	if !bindJSON(c, &body) {
		return
	}
	if _, err := h.e.DataPlan(c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	start, err := engine.ParseTime("start", body.Start)
	if err != nil {
		writeError(c, err)
		return
	}
	if body.PoolBytes == nil {
		writeError(c, errs.InvalidEntity("poolBytes is required"))
		return
	}
	cy, err := h.e.AddBillingCycle(c.Param("id"), start, *body.PoolBytes)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, cy)
}

func (h coreHandlers) listCycles(c *gin.Context) {
	from, ok := coreTimeQuery(c, "from")
	if !ok {
		return
	}
	to, ok := coreTimeQuery(c, "to")
	if !ok {
		return
	}
	cs, err := h.e.BillingCycles(c.Param("id"), from, to)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, cs)
}

func (h coreHandlers) purge(c *gin.Context) {
	n, err := h.e.Purge()
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"purged": n})
}

func (h coreHandlers) xmit(c *gin.Context) {
	n, err := h.e.Xmit(c.Request.Context())
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"woken": n})
}

func (h coreHandlers) publicKey(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{
		"algorithm":     "ed25519",
		"publicKey":     base64.StdEncoding.EncodeToString(h.e.PublicKey()),
		"signedMessage": "sota-wakeup\\n<vin>\\n<nonce>\\n<issuedAt>",
	})
}
