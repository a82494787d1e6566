package api

// Device API (/api/v1/vehicle_updates/:vin/...): polling, notification, transfer sessions, install
// reports and the installed-package list, behind the vehicle's device token; and the admin route that
// mints device tokens. Rules live in package engine (device.go, transfer.go, report.go).

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"sota/engine"
	"sota/errs"
	"sota/resolver"
	"sota/wire"
)

// DefaultChunkSize is the transfer chunk size when Config.ChunkSize is 0.
const DefaultChunkSize = 65536

type deviceHandlers struct {
	s     *Server
	e     *engine.Service
	chunk int
}

func (h deviceHandlers) mintToken(c *gin.Context) {
	vin := c.Param("vin")
	if err := resolver.ValidVIN(vin); err != nil {
		writeError(c, err)
		return
	}
	// the vehicle is checked in the minting transaction (a vehicle created on another replica a
	// moment ago is not in this one's index yet)
	tok, err := h.s.authSvc(c).MintDeviceToken(vin)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"token": tok})
}

func (h deviceHandlers) poll(c *gin.Context) {
	rows, err := h.e.Poll(c.Param("vin"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", appendPollRows(make([]byte, 0, 64+200*len(rows)), rows))
}

// appendPollRows encodes poll rows as encoding/json would, without reflection: the poll is the
// device API's hottest call.
func appendPollRows(b []byte, rows []engine.PollRow) []byte {
	b = append(b, '[')
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"updateId":`...)
		b = appendJSONString(b, r.UpdateID)
		b = append(b, `,"requestId":`...)
		b = appendJSONString(b, r.RequestID)
		b = append(b, `,"packageId":`...)
		if r.PackageID == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, `{"name":`...)
			b = appendJSONString(b, r.PackageID.Name)
			b = append(b, `,"version":`...)
			b = appendJSONString(b, r.PackageID.Version)
			b = append(b, '}')
		}
		b = append(b, `,"installPos":`...)
		b = strconv.AppendInt(b, int64(r.InstallPos), 10)
		b = append(b, `,"status":`...)
		b = appendJSONString(b, string(r.Status))
		b = append(b, `,"createdAt":"`...)
		b = r.CreatedAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `"}`...)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string; anything but plain printable ASCII goes through
// encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func (h deviceHandlers) notification(c *gin.Context) {
	n, ok, err := h.e.Notify(c.Param("vin"))
	if err != nil {
		writeError(c, err)
		return
	}
	if !ok {
		c.Status(http.StatusNoContent)
		return
	}
	c.JSON(http.StatusOK, n)
}

func (h deviceHandlers) installed(c *gin.Context) {
	var ids []resolver.PackageID
	if !bindJSON(c, &ids) {
		return
	}
	if err := h.e.InstalledReport(c.Param("vin"), ids); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h deviceHandlers) start(c *gin.Context) {
	tr, err := h.e.StartTransfer(c.Param("vin"), c.Param("updateId"), h.chunk)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, tr)
}

func (h deviceHandlers) cancel(c *gin.Context) {
	u, err := h.e.DeviceCancel(c.Param("vin"), c.Param("updateId"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"updateId": u.ID, "status": u.Status, "resultText": u.ResultText})
}

func (h deviceHandlers) nextChunk(c *gin.Context) {
	ch, ok, err := h.e.NextChunk(c.Param("vin"), c.Param("updateId"))
	if err != nil {
		writeError(c, err)
		return
	}
	if !ok {
		c.Status(http.StatusNoContent)
		return
	}
	c.JSON(http.StatusOK, ch)
}

func (h deviceHandlers) chunkAt(c *gin.Context) {
	i, err := strconv.Atoi(c.Param("index"))
	if err != nil {
		writeError(c, errs.InvalidEntity("chunk index must be a number, not %q", c.Param("index")))
		return
	}
	if i < 1 {
		writeError(c, errs.New(errs.NotFound, "missing_chunk", "Chunk %d does not exist: chunks are numbered from 1", i))
		return
	}
	ch, err := h.e.ChunkAt(c.Param("vin"), c.Param("updateId"), i)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, ch)
}

func (h deviceHandlers) ack(c *gin.Context) {
	var body wire.Ack
	if !bindJSON(c, &body) {
		return
	}
	next, err := h.e.AckChunks(c.Param("vin"), c.Param("updateId"), body.Chunks)
	if err != nil {
		writeError(c, err)
		return
	}
	var out wire.AckAnswer // next: null when every chunk is acknowledged
	if next != 0 {
		out.Next = &next
	}
	c.JSON(http.StatusOK, out)
}

func (h deviceHandlers) finalize(c *gin.Context) {
	var body wire.Finalize
	if !bindJSON(c, &body) {
		return
	}
	if body.Chunks == nil {
		writeError(c, errs.InvalidEntity("chunks (the number of chunks received) is required"))
		return
	}
	msg, err := h.e.FinalizeTransfer(c.Param("vin"), c.Param("updateId"), *body.Chunks, body.SHA256)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, msg)
}

// countingWriter counts the payload bytes written to the client.
type countingWriter struct {
	gin.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (h deviceHandlers) download(c *gin.Context) {
	vin, id := c.Param("vin"), c.Param("updateId")
	r, tr, err := h.e.OpenPayload(vin, id)
	if err != nil {
		writeError(c, err)
		return
	}
	defer r.Close()
	c.Header("ETag", `"`+tr.SHA256+`"`)
	c.Header("Content-Type", "application/octet-stream")
	w := &countingWriter{ResponseWriter: c.Writer}
	http.ServeContent(w, c.Request, "", time.Time{}, r)
	if err := h.e.AddSent(vin, id, w.n); err != nil {
		h.s.log.Error("device download: counting sent bytes", "vin", vin, "update", id, "err", err)
	}
}

func (h deviceHandlers) report(c *gin.Context) {
	var body wire.InstallReport
	if !bindJSON(c, &body) {
		return
	}
	_, msg, err := h.e.InstallReport(c.Param("vin"), c.Param("updateId"), body.OperationResults)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, msg)
}
