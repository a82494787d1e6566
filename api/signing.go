package api

// Signed update metadata (API.md "Signed update metadata"): the TUF image repository's public
// metadata and target files, the uploads of signed targets and roots, and the director's metadata
// for each vehicle behind its device token. Rules live in package signing.

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"sota/errs"
	"sota/signing"
)

type signingHandlers struct {
	s   *Server
	sig *signing.Service // with the request's audit hook for the uploads (signingRoute)
}

// signingRoute serves an upload route with a signing handle that writes the request's audit entry in
// the change's transaction.
func (s *Server) signingRoute(f func(signingHandlers, *gin.Context)) gin.HandlerFunc {
	return func(c *gin.Context) { f(signingHandlers{s: s, sig: s.deps.Signing.With(auditOf(c).Hook())}, c) }
}

func writeMetadata(c *gin.Context, b []byte, err error) {
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json", b)
}

func (h signingHandlers) imageMetadata(c *gin.Context) {
	b, err := h.s.deps.Signing.ImageMetadata(c.Param("file"))
	writeMetadata(c, b, err)
}

func (h signingHandlers) directorMetadata(c *gin.Context) {
	b, err := h.s.deps.Signing.DirectorMetadata(c.Param("vin"), c.Param("file"))
	writeMetadata(c, b, err)
}

func (h signingHandlers) targetFile(c *gin.Context) {
	f, _, err := h.s.deps.Signing.TargetFile(c.Param("name"), c.Param("version"), c.Param("file"))
	if err != nil {
		writeError(c, err)
		return
	}
	defer f.Close()
	c.Header("Content-Type", "application/octet-stream")
	http.ServeContent(c.Writer, c.Request, "", time.Time{}, f)
}

func readMetadataBody(c *gin.Context) ([]byte, bool) {
	b, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(c, errs.New(errs.TooLarge, "body_too_large", "Request body exceeds %d bytes", mbe.Limit))
			return nil, false
		}
		writeError(c, errs.InvalidEntity("Reading the body: %v", err))
		return nil, false
	}
	return b, true
}

func (h signingHandlers) uploadTargets(c *gin.Context) {
	b, ok := readMetadataBody(c)
	if !ok {
		return
	}
	v, err := h.sig.UploadTargets(b)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"version": v})
}

func (h signingHandlers) uploadRoot(c *gin.Context) {
	b, ok := readMetadataBody(c)
	if !ok {
		return
	}
	v, err := h.sig.UploadRoot(b)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"version": v})
}
