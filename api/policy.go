package api

// SDL policy routes: the policy-server endpoint head units call with their snapshot (the envelope
// of the official SDL policy server), the master tables per environment, and table validation.
// Rules live in package policy.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"sota/errs"
	"sota/policy"
)

type policyHandlers struct{ p *policy.Service }

// readTable reads the body as a policy table (bare, envelope, or Base64 of either).
func readTable(c *gin.Context) (policy.Table, bool) {
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(c, errs.New(errs.TooLarge, "body_too_large", "Request body exceeds %d bytes", mbe.Limit))
		} else {
			writeError(c, errs.InvalidEntity("Cannot read the request body: %v", err))
		}
		return nil, false
	}
	t, err := policy.Parse(b)
	if err != nil {
		writeError(c, err)
		return nil, false
	}
	return t, true
}

// answer is the policy server: snapshot in, PTU out in the SDL policy server's envelope.
func (h policyHandlers) answer(env string) gin.HandlerFunc {
	return func(c *gin.Context) {
		pts, ok := readTable(c)
		if !ok {
			return
		}
		ptu, err := h.p.Answer(env, pts)
		if err != nil {
			writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{
			"meta": gin.H{"request_id": requestID(), "code": http.StatusOK, "message": nil},
			"data": []any{map[string]any(ptu)},
		})
	}
}

func (h policyHandlers) getTable(c *gin.Context) {
	t, err := h.p.Master(c.Param("env"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, map[string]any(t))
}

func (h policyHandlers) putTable(c *gin.Context) {
	t, ok := readTable(c)
	if !ok {
		return
	}
	r, err := h.p.PutMaster(c.Param("env"), t)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (h policyHandlers) validate(c *gin.Context) {
	kind, err := policy.ParseKind(c.DefaultQuery("kind", "ptu"))
	if err != nil {
		writeError(c, err)
		return
	}
	t, ok := readTable(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, policy.Validate(kind, t))
}

// requestID is a random UUID (version 4) naming one policy-server answer.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
