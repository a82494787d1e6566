package api

// Webhook routes (admin): subscriptions and their delivery log. Rules live in package engine
// (webhooks.go).

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"sota/errs"
)

func (h coreHandlers) addWebhook(c *gin.Context) {
	var in struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
		Secret string   `json:"secret"`
	}
	if !bindJSON(c, &in) {
		return
	}
	setAuditTarget(c, in.URL)
	w, err := h.e.AddWebhook(in.URL, in.Events, in.Secret)
	if err != nil {
		writeError(c, err)
		return
	}
	w.Secret = ""
	c.JSON(http.StatusOK, w)
}

func (h coreHandlers) listWebhooks(c *gin.Context) { c.JSON(http.StatusOK, h.e.Webhooks()) }

func (h coreHandlers) deleteWebhook(c *gin.Context) {
	if err := h.e.DeleteWebhook(c.Param("id")); err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"deleted": c.Param("id")})
}

func (h coreHandlers) webhookDeliveries(c *gin.Context) {
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(c, errs.InvalidEntity("limit must be a number from 1 to 10000, not %q", v))
			return
		}
		limit = n
	}
	ds, err := h.e.Deliveries(c.Param("id"), limit)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ds)
}
