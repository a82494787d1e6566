package api

// Core routes: package binaries, update requests, campaigns, vehicle queues and history, data plans and
// billing cycles, the scheduler's manual triggers and the wake-up key. Rules live in package engine.

import (
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"sota/engine"
	"sota/errs"
	"sota/resolver"
	"sota/wire"
)

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
	setAuditTarget(c, body.ID)
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
	c.JSON(http.StatusOK, wire.WakeupKey{Algorithm: "ed25519", PublicKey: base64.StdEncoding.EncodeToString(h.e.PublicKey()),
		SignedMessage: wire.WakeupSignedMessage})
}

func (h coreHandlers) download(c *gin.Context) {
	f, b, err := h.e.OpenBinary(resolver.PackageID{Name: c.Param("name"), Version: c.Param("version")})
	if err != nil {
		writeError(c, err)
		return
	}
	defer f.Close()
	c.Header("ETag", `"`+b.SHA256+`"`)
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", `attachment; filename="`+b.Name+"-"+b.Version+`"`)
	http.ServeContent(c.Writer, c.Request, "", b.UploadedAt, f)
}

func (h coreHandlers) queue(c *gin.Context) {
	var in engine.NewRequest
	if !bindJSON(c, &in) {
		return
	}
	setAuditTarget(c, in.PackageID.Name+"/"+in.PackageID.Version)
	r, err := h.e.QueueUpdate(c.Request.Context(), in)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": r.ID, "vehicles": r.Vehicles, "skipped": r.Skipped})
}

func (h coreHandlers) listRequests(c *gin.Context) {
	p, ok := corePage(c)
	if !ok {
		return
	}
	rs, total, err := h.e.Requests(p)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("X-Total-Count", strconv.Itoa(total))
	c.JSON(http.StatusOK, rs)
}

func (h coreHandlers) getRequest(c *gin.Context) {
	r, err := h.e.Request(c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (h coreHandlers) requestVehicles(c *gin.Context) {
	var st engine.Status
	if v, ok := c.GetQuery("status"); ok {
		var err error
		if st, err = engine.ParseStatus(v); err != nil {
			writeError(c, err)
			return
		}
	}
	p, ok := corePage(c)
	if !ok {
		return
	}
	vs, total, err := h.e.RequestVehicles(c.Param("id"), st, p)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("X-Total-Count", strconv.Itoa(total))
	c.JSON(http.StatusOK, vs)
}

func (h coreHandlers) cancel(c *gin.Context) {
	cancel := h.e.Cancel
	switch v := c.Query("inFlight"); v {
	case "", "false":
	case "true":
		cancel = h.e.CancelInFlight
	default:
		writeError(c, errs.InvalidEntity("inFlight must be true or false, not %q", v))
		return
	}
	n, err := cancel(c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"canceled": n})
}

func (h coreHandlers) createCampaign(c *gin.Context) {
	var in engine.NewCampaign
	if !bindJSON(c, &in) {
		return
	}
	setAuditTarget(c, in.Name)
	cp, err := h.e.CreateCampaign(in)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, cp)
}

func (h coreHandlers) listCampaigns(c *gin.Context) {
	cs, err := h.e.Campaigns()
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("X-Total-Count", strconv.Itoa(len(cs)))
	c.JSON(http.StatusOK, cs)
}

func (h coreHandlers) getCampaign(c *gin.Context) {
	cp, err := h.e.Campaign(c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, cp)
}

func (h coreHandlers) previewCampaign(c *gin.Context) {
	var sample *int
	if v, ok := c.GetQuery("sample"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(c, errs.InvalidEntity("sample must be a number, not %q", v))
			return
		}
		sample = &n
	}
	res, err := h.e.PreviewCampaign(c.Request.Context(), c.Param("id"), sample)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (h coreHandlers) launchCampaign(c *gin.Context) {
	l, err := h.e.LaunchCampaign(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, l)
}

func (h coreHandlers) pauseCampaign(c *gin.Context) {
	by := principal(c).Username
	cp, err := h.e.PauseCampaign(c.Param("id"), by)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, cp)
}

func (h coreHandlers) resumeCampaign(c *gin.Context) {
	cp, err := h.e.ResumeCampaign(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, cp)
}

func (h coreHandlers) releaseCampaign(c *gin.Context) {
	cp, err := h.e.ReleaseNextGroup(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, cp)
}

func (h coreHandlers) abortCampaign(c *gin.Context) {
	n, err := h.e.AbortCampaign(c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"canceled": n})
}

func (h coreHandlers) vehicleQueue(c *gin.Context) {
	us, err := h.e.VehicleQueue(c.Param("vin"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, us)
}

func (h coreHandlers) vehicleHistory(c *gin.Context) {
	us, err := h.e.VehicleHistory(c.Param("vin"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, us)
}

func (h coreHandlers) history(c *gin.Context) {
	vin, ok := c.GetQuery("vin")
	if !ok {
		writeError(c, errs.InvalidEntity("the vin query parameter is required"))
		return
	}
	us, err := h.e.VehicleHistory(vin)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, us)
}

func (h coreHandlers) getAllPackages(c *gin.Context) {
	r, err := h.e.QueueGetAllPackages(c.Param("vin"))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": r.ID})
}

func (h coreHandlers) setDataPlan(c *gin.Context) {
	var body struct {
		ID string `json:"id"`
	}
	if !bindJSON(c, &body) {
		return
	}
	p, err := h.e.SetDataPlan(c.Param("vin"), body.ID)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"vin": c.Param("vin"), "dataPlan": p.ID})
}

func (h coreHandlers) traffic(c *gin.Context) {
	var body struct {
		Bytes *int64 `json:"bytes"`
	}
	if !bindJSON(c, &body) {
		return
	}
	if body.Bytes == nil {
		writeError(c, errs.InvalidEntity("bytes is required"))
		return
	}
	tr, err := h.e.AddTraffic(c.Param("vin"), *body.Bytes)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, tr)
}

// upload serves PUT /packages/:name/:version with a multipart body (field "file"; query checksum,
// description, vendor); the resolver's handler of that route hands multipart bodies here.
func (h coreHandlers) upload(c *gin.Context) {
	id := resolver.PackageID{Name: c.Param("name"), Version: c.Param("version")}
	in := engine.Upload{Checksum: c.Query("checksum")}
	if v, ok := c.GetQuery("description"); ok {
		in.Description = &v
	}
	if v, ok := c.GetQuery("vendor"); ok {
		in.Vendor = &v
	}
	mr, err := c.Request.MultipartReader()
	if err != nil {
		writeError(c, errs.InvalidEntity("Invalid multipart body: %v", err))
		return
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			writeError(c, errs.InvalidEntity(`The multipart body has no "file" field`))
			return
		}
		if err != nil {
			writeError(c, errs.InvalidEntity("Invalid multipart body: %v", err))
			return
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		in.FileName = part.FileName()
		_, err = h.e.UploadBinary(id, part, in)
		part.Close()
		if err != nil {
			writeError(c, err)
			return
		}
		c.Status(http.StatusNoContent)
		return
	}
}

// failureStats counts the updates that failed in the last `hours` hours (default 24, at most 720), by
// result code: the dashboard's failure chart.
func (h coreHandlers) failureStats(c *gin.Context) {
	hours := 24
	if v, ok := c.GetQuery("hours"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 720 {
			writeError(c, errs.InvalidEntity("hours must be a whole number from 1 to 720, not %q", v))
			return
		}
		hours = n
	}
	since := time.Now().Add(-time.Duration(hours) * time.Hour)
	fs, err := h.e.FailuresSince(since)
	if err != nil {
		writeError(c, err)
		return
	}
	total := 0
	for _, f := range fs {
		total += f.Count
	}
	c.JSON(http.StatusOK, gin.H{"since": since.UTC(), "hours": hours, "total": total, "failures": fs})
}

// activeUpdates answers the pending and in-flight update counts of the vehicles named by vin (repeated
// or comma-separated), for a vehicle list's "pending updates" column.
func (h coreHandlers) activeUpdates(c *gin.Context) {
	var vins []string
	for _, v := range c.QueryArray("vin") {
		for _, one := range strings.Split(v, ",") {
			if one = strings.TrimSpace(one); one != "" {
				vins = append(vins, one)
			}
		}
	}
	if len(vins) == 0 {
		writeError(c, errs.InvalidEntity("Give the vehicles with vin=VIN (repeated or comma-separated)"))
		return
	}
	if len(vins) > engine.MaxActiveCountVINs {
		writeError(c, errs.InvalidEntity("At most %d VINs at once, not %d", engine.MaxActiveCountVINs, len(vins)))
		return
	}
	counts, err := h.e.ActiveCountsOf(vins)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, counts)
}
