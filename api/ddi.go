package api

// hawkBit Direct Device Integration API v1 (/:tenant/controller/v1/:vin/...): a transport over the
// engine calls the device API makes (delivery order, install reports, data plans), so that SWUpdate's
// suricatta, RAUC's hawkBit updater and Zephyr's hawkBit client update through this server unchanged.
// The controller id is the VIN; an action id names one vehicle's update (engine/actions.go). Bodies are
// read tolerantly (unknown fields are ignored, as hawkBit does); every href is absolute, built from the
// request's Host and scheme.

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"sota/engine"
	"sota/errs"
	"sota/resolver"
	"sota/wire"
)

// DDIConfig configures the hawkBit DDI transport.
type DDIConfig struct {
	Tenant string        // the tenant of the paths (compared case-insensitively); "" means DefaultDDITenant
	Poll   time.Duration // the polling interval devices are told (config.polling.sleep); 0 means DefaultDDIPoll
}

// Defaults of DDIConfig.
const (
	DefaultDDITenant = "DEFAULT"
	DefaultDDIPoll   = 5 * time.Minute
)

// MaxDDIPoll is the longest polling interval HH:MM:SS can say.
const MaxDDIPoll = 100*time.Hour - time.Second

func (s *Server) ddiTenant() string {
	if s.cfg.DDI.Tenant == "" {
		return DefaultDDITenant
	}
	return s.cfg.DDI.Tenant
}

// FormatDDIPoll writes a polling interval as hawkBit's HH:MM:SS.
func FormatDDIPoll(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

// ParseDDIPoll reads HH:MM:SS (from 00:00:01 to 99:59:59).
func ParseDDIPoll(s string) (time.Duration, error) {
	var h, m, sec int
	if n, err := fmt.Sscanf(s, "%d:%d:%d", &h, &m, &sec); err != nil || n != 3 || len(s) != 8 ||
		h < 0 || m < 0 || m > 59 || sec < 0 || sec > 59 {
		return 0, fmt.Errorf("polling interval must be HH:MM:SS, not %q", s)
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second
	if d <= 0 {
		return 0, fmt.Errorf("polling interval must be at least 00:00:01")
	}
	return d, nil
}

type ddiHandlers struct {
	s     *Server
	e     *engine.Service
	sleep string // config.polling.sleep
}

func newDDIHandlers(s *Server) ddiHandlers {
	p := s.cfg.DDI.Poll
	if p <= 0 {
		p = DefaultDDIPoll
	}
	return ddiHandlers{s: s, e: s.deps.Engine, sleep: FormatDDIPoll(min(p, MaxDDIPoll))}
}

// base is the absolute URL of the vehicle's controller resource, as the device called it: its Host,
// and https when the request came over TLS (or through a --trusted-proxy that says so).
func (h ddiHandlers) base(c *gin.Context) string {
	scheme := "http"
	if h.s.secure(c.Request) {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host + "/" + url.PathEscape(c.Param("tenant")) + "/controller/v1/" + url.PathEscape(c.Param("vin"))
}

// ddiJSON decodes a DDI body tolerantly: unknown fields are ignored (SWUpdate sends "id" and "time"),
// a malformed body or a field of the wrong type is 400.
func ddiJSON(c *gin.Context, v any) bool {
	err := json.NewDecoder(c.Request.Body).Decode(v)
	if err == nil {
		return true
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(c, errs.New(errs.TooLarge, "body_too_large", "Request body exceeds %d bytes", mbe.Limit))
	default:
		if e, ok := errs.As(err); ok {
			writeError(c, e)
			return false
		}
		writeError(c, jsonBodyError(err))
	}
	return false
}

// action reads the :actionId of the path and the vehicle's update it names.
func (h ddiHandlers) action(c *gin.Context) (engine.Update, bool) {
	n, err := engine.ParseActionID(c.Param("actionId"))
	if err != nil {
		writeError(c, err)
		return engine.Update{}, false
	}
	u, err := h.e.UpdateByAction(c.Param("vin"), n)
	if err != nil {
		writeError(c, err)
		return engine.Update{}, false
	}
	return u, true
}

func actionString(u engine.Update) string { return strconv.FormatUint(u.ActionID, 10) }

// stateHash changes whenever what the device should do about the update changes (hawkBit's ?c=).
func stateHash(u engine.Update) string {
	var b [48]byte
	k := strconv.AppendUint(b[:0], u.ActionID, 10)
	k = append(k, u.Status...)
	if u.CancelRequested {
		k = append(k, 'c')
	}
	if u.Confirmed {
		k = append(k, 'k')
	}
	f := fnv.New32a()
	f.Write(k)
	return strconv.FormatInt(int64(int32(f.Sum32())), 10)
}

func appendLink(b []byte, first bool, name, href string) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":{"href":`...)
	b = appendJSONString(b, href)
	return append(b, '}')
}

// poll is the base resource: the polling interval and what to do next.
func (h ddiHandlers) poll(c *gin.Context) {
	vin := c.Param("vin")
	u, ok, err := h.e.NextAction(vin)
	if err != nil {
		writeError(c, err)
		return
	}
	reported, err := h.e.ConfigReported(vin)
	if err != nil {
		writeError(c, err)
		return
	}
	base := h.base(c)
	b := make([]byte, 0, 384)
	b = append(b, `{"config":{"polling":{"sleep":"`...)
	b = append(b, h.sleep...)
	b = append(b, `"}},"_links":{`...)
	first := true
	if ok {
		id := actionString(u)
		switch {
		case u.CancelRequested:
			b = appendLink(b, first, "cancelAction", base+"/cancelAction/"+id)
		case u.AwaitsConfirmation():
			b = appendLink(b, first, "confirmationBase", base+"/confirmationBase/"+id+"?c="+stateHash(u))
		default:
			b = appendLink(b, first, "deploymentBase", base+"/deploymentBase/"+id+"?c="+stateHash(u))
		}
		first = false
	}
	if !reported {
		b = appendLink(b, first, "configData", base+"/configData")
	}
	b = append(b, "}}"...)
	c.Data(http.StatusOK, "application/hal+json;charset=UTF-8", b)
}

// DDI answer shapes.
type (
	ddiHref struct {
		Href string `json:"href"`
	}
	ddiArtifact struct {
		Filename string             `json:"filename"`
		Hashes   map[string]string  `json:"hashes"`
		Size     int64              `json:"size"`
		Links    map[string]ddiHref `json:"_links"`
	}
	ddiChunk struct {
		Part      string        `json:"part"`
		Version   string        `json:"version"`
		Name      string        `json:"name"`
		Artifacts []ddiArtifact `json:"artifacts"`
	}
	ddiDeployment struct {
		Download          string     `json:"download"`
		Update            string     `json:"update"`
		MaintenanceWindow string     `json:"maintenanceWindow,omitempty"`
		Chunks            []ddiChunk `json:"chunks"`
	}
	ddiActionHistory struct {
		Status   string   `json:"status"`
		Messages []string `json:"messages"`
	}
)

// moduleID names a package version in artifact paths: "<name>@<version>" (neither part can hold '@').
func moduleID(p resolver.PackageID) string { return p.Name + "@" + p.Version }

func parseModuleID(s string) (resolver.PackageID, error) {
	name, version, ok := strings.Cut(s, "@")
	id := resolver.PackageID{Name: name, Version: version}
	if !ok || resolver.ValidPackageID(id) != nil {
		return id, errs.New(errs.NotFound, engine.CodeMissingArtifact, "Software module %q does not exist", s)
	}
	return id, nil
}

func (h ddiHandlers) artifact(c *gin.Context, b engine.Binary) ddiArtifact {
	href := h.base(c) + "/softwaremodules/" + url.PathEscape(moduleID(resolver.PackageID{Name: b.Name, Version: b.Version})) +
		"/artifacts/" + url.PathEscape(b.FileName)
	return ddiArtifact{Filename: b.FileName, Size: b.Size,
		Hashes: map[string]string{"sha1": b.SHA1, "md5": b.MD5, "sha256": b.SHA256},
		Links:  map[string]ddiHref{"download-http": {href}, "md5sum-http": {href + ".MD5SUM"}}}
}

// deployment describes an update as deploymentBase (and installedBase, confirmationBase) show it: one
// chunk per package of its install list, in install order.
func (h ddiHandlers) deployment(c *gin.Context, u engine.Update) (gin.H, bool) {
	mode := "forced"
	if u.RequestConfirmation {
		mode = "attempt"
	}
	d := ddiDeployment{Download: mode, Update: mode, Chunks: []ddiChunk{}}
	if open, limited := h.e.InWindow(u); limited {
		d.MaintenanceWindow = "unavailable"
		if open {
			d.MaintenanceWindow = "available"
		}
	}
	for _, p := range u.Install {
		b, err := h.e.Artifact(p)
		if err != nil {
			writeError(c, err)
			return nil, false
		}
		d.Chunks = append(d.Chunks, ddiChunk{Part: "os", Name: p.Name, Version: p.Version, Artifacts: []ddiArtifact{h.artifact(c, b)}})
	}
	out := gin.H{"id": actionString(u), "deployment": d}
	if u.ResultText != "" || !u.Status.Active() {
		msgs := []string{}
		if u.ResultText != "" {
			msgs = append(msgs, u.ResultText)
		}
		out["actionHistory"] = ddiActionHistory{Status: string(u.Status), Messages: msgs}
	}
	return out, true
}

func (h ddiHandlers) deploymentBase(c *gin.Context) {
	u, ok := h.action(c)
	if !ok {
		return
	}
	if u.AwaitsConfirmation() {
		writeError(c, errs.New(errs.Conflict, engine.CodeConfirmationRequired, "Action %s waits for the device's confirmation (confirmationBase)", actionString(u)))
		return
	}
	if out, ok := h.deployment(c, u); ok {
		c.JSON(http.StatusOK, out)
	}
}

func (h ddiHandlers) confirmationBase(c *gin.Context) {
	u, ok := h.action(c)
	if !ok {
		return
	}
	out, ok := h.deployment(c, u)
	if !ok {
		return
	}
	out["confirmation"] = map[string]any{"links": map[string]ddiHref{"feedback": {h.base(c) + "/confirmationBase/" + actionString(u) + "/feedback"}}}
	c.JSON(http.StatusOK, out)
}

func (h ddiHandlers) installedBase(c *gin.Context) {
	u, ok := h.action(c)
	if !ok {
		return
	}
	if u.Status != engine.Finished {
		writeError(c, errs.New(errs.NotFound, engine.CodeMissingAction, "Action %s is not installed (it is %s)", actionString(u), u.Status))
		return
	}
	if out, ok := h.deployment(c, u); ok {
		c.JSON(http.StatusOK, out)
	}
}

// ddiFeedback is the body of a feedback call.
type ddiFeedback struct {
	Status struct {
		Execution string `json:"execution"`
		Result    struct {
			Finished string `json:"finished"`
		} `json:"result"`
		Details []string `json:"details"`
	} `json:"status"`
}

func (f ddiFeedback) details() string {
	var ds []string
	for _, d := range f.Status.Details {
		if d = strings.TrimSpace(d); d != "" {
			ds = append(ds, d)
		}
	}
	return strings.Join(ds, "; ")
}

const ddiExecutions = "closed, proceeding, canceled, scheduled, rejected, resumed, downloaded or download"

// deploymentFeedback maps the device's feedback to the engine's statuses: progress → in flight;
// closed + success (or none) → finished with result code 0; closed + failure → failed with 19
// GENERAL_ERROR and the details; rejected → failed with 13 USER_DECLINED; canceled → the device's cancel.
func (h ddiHandlers) deploymentFeedback(c *gin.Context) {
	var f ddiFeedback
	if !ddiJSON(c, &f) {
		return
	}
	u, ok := h.action(c)
	if !ok {
		return
	}
	vin, text := c.Param("vin"), f.details()
	var err error
	switch f.Status.Execution {
	case "proceeding", "scheduled", "resumed", "downloaded", "download":
		_, err = h.e.MarkInFlight(vin, u.ID, text)
	case "closed":
		code := wire.ResultOK
		switch f.Status.Result.Finished {
		case "success", "none", "":
		case "failure":
			code = wire.ResultGeneralError
		default:
			writeError(c, errs.InvalidEntity("status.result.finished must be success, failure or none, not %q", f.Status.Result.Finished))
			return
		}
		_, _, err = h.e.InstallReport(vin, u.ID, []engine.OperationResult{{ID: actionString(u), ResultCode: code, ResultText: text}})
	case "rejected":
		_, _, err = h.e.InstallReport(vin, u.ID, []engine.OperationResult{{ID: actionString(u), ResultCode: wire.ResultUserDeclined, ResultText: text}})
	case "canceled":
		_, err = h.e.DeviceCancel(vin, u.ID)
	default:
		writeError(c, errs.InvalidEntity("status.execution must be %s, not %q", ddiExecutions, f.Status.Execution))
		return
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (h ddiHandlers) cancelAction(c *gin.Context) {
	u, ok := h.action(c)
	if !ok {
		return
	}
	if !u.CancelRequested && u.Status != engine.Canceled {
		writeError(c, errs.New(errs.NotFound, engine.CodeMissingAction, "Action %s has no cancel", actionString(u)))
		return
	}
	id := actionString(u)
	c.JSON(http.StatusOK, gin.H{"id": id, "cancelAction": gin.H{"stopId": id}})
}

// cancelFeedback: closed + success (or canceled) accepts the cancel; rejected, or closed + failure,
// refuses it and the update goes on; progress states change nothing.
func (h ddiHandlers) cancelFeedback(c *gin.Context) {
	var f ddiFeedback
	if !ddiJSON(c, &f) {
		return
	}
	u, ok := h.action(c)
	if !ok {
		return
	}
	var err error
	switch ex, fin := f.Status.Execution, f.Status.Result.Finished; {
	case ex == "closed" && fin == "failure", ex == "rejected":
		_, err = h.e.AnswerCancel(c.Param("vin"), u.ID, false, f.details())
	case ex == "closed", ex == "canceled":
		_, err = h.e.AnswerCancel(c.Param("vin"), u.ID, true, f.details())
	case ex == "proceeding", ex == "scheduled", ex == "resumed", ex == "downloaded", ex == "download":
	default:
		writeError(c, errs.InvalidEntity("status.execution must be %s, not %q", ddiExecutions, ex))
		return
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// confirmationFeedback: confirmed → the update is offered as deploymentBase; denied → failed with 13
// USER_DECLINED.
func (h ddiHandlers) confirmationFeedback(c *gin.Context) {
	var f struct {
		Confirmation string   `json:"confirmation"`
		Details      []string `json:"details"`
	}
	if !ddiJSON(c, &f) {
		return
	}
	u, ok := h.action(c)
	if !ok {
		return
	}
	var confirmed bool
	switch f.Confirmation {
	case "confirmed":
		confirmed = true
	case "denied":
	default:
		writeError(c, errs.InvalidEntity("confirmation must be confirmed or denied, not %q", f.Confirmation))
		return
	}
	fb := ddiFeedback{}
	fb.Status.Details = f.Details
	if _, err := h.e.Confirm(c.Param("vin"), u.ID, confirmed, fb.details()); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// configData stores the data as vehicle attributes (hawkBit's modes merge, replace, remove).
func (h ddiHandlers) configData(c *gin.Context) {
	var in struct {
		Mode string          `json:"mode"`
		Data json.RawMessage `json:"data"`
	}
	if !ddiJSON(c, &in) {
		return
	}
	if len(in.Data) == 0 {
		writeError(c, errs.InvalidEntity("data (an object of attribute names and values) is required"))
		return
	}
	var data resolver.Attributes
	if err := data.UnmarshalJSON(in.Data); err != nil {
		writeError(c, err)
		return
	}
	if _, err := h.e.ReportConfig(c.Param("vin"), in.Mode, data); err != nil {
		writeError(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (h ddiHandlers) module(c *gin.Context) (resolver.PackageID, bool) {
	id, err := parseModuleID(c.Param("moduleId"))
	if err != nil {
		writeError(c, err)
		return id, false
	}
	return id, true
}

func (h ddiHandlers) artifacts(c *gin.Context) {
	id, ok := h.module(c)
	if !ok {
		return
	}
	_, b, err := h.e.VehicleArtifact(c.Param("vin"), id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, []ddiArtifact{h.artifact(c, b)})
}

// download serves an artifact's bytes (Range supported; the bytes sent count on the vehicle's data
// plan) or, for "<filename>.MD5SUM", its md5 line; HEAD answers the size.
func (h ddiHandlers) download(c *gin.Context) {
	id, ok := h.module(c)
	if !ok {
		return
	}
	vin, name := c.Param("vin"), c.Param("filename")
	_, b, err := h.e.VehicleArtifact(vin, id)
	if err != nil {
		writeError(c, err)
		return
	}
	if name != b.FileName {
		if strings.TrimSuffix(name, ".MD5SUM") == b.FileName {
			c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(b.MD5+"  "+b.FileName))
			return
		}
		writeError(c, errs.New(errs.NotFound, engine.CodeMissingArtifact, "Software module %s has no artifact %q", moduleID(id), name))
		return
	}
	c.Header("ETag", `"`+b.SHA256+`"`)
	if c.Request.Method == http.MethodHead { // SWUpdate asks for the size first
		c.Header("Accept-Ranges", "bytes")
		c.Header("Content-Type", "application/octet-stream")
		c.Header("Content-Length", strconv.FormatInt(b.Size, 10))
		c.Status(http.StatusOK)
		return
	}
	f, b, err := h.e.OpenArtifact(vin, id)
	if err != nil {
		writeError(c, err)
		return
	}
	defer f.Close()
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", "attachment; filename="+strconv.Quote(b.FileName))
	w := &countingWriter{ResponseWriter: c.Writer}
	http.ServeContent(w, c.Request, "", time.Time{}, f)
	if err := h.e.CountDownload(vin, w.n); err != nil {
		h.s.log.Error("DDI download: counting sent bytes", "vin", vin, "module", moduleID(id), "err", err)
	}
}
