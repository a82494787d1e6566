package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"sota/engine"
	"sota/errs"
	"sota/resolver"
)

// Routes of the External Resolver: vehicles, components, packages (metadata), installed sets,
// dependencies, filters and their package associations, resolve, dry run, explain, fleet import.

type resolverHandlers struct {
	s  *Server
	rs *resolver.Service
}

func pkgParam(c *gin.Context) resolver.PackageID {
	return resolver.PackageID{Name: c.Param("name"), Version: c.Param("version")}
}

// page reads limit/offset, answering 400 itself when they are malformed.
func page(c *gin.Context) (resolver.Page, bool) {
	p, err := resolver.ParsePage(c.Query("limit"), c.Query("offset"))
	if err != nil {
		writeError(c, err)
		return p, false
	}
	return p, true
}

// writeList answers 200 with a page of a list and X-Total-Count.
func writeList(c *gin.Context, items any, total int, err error) {
	if err != nil {
		writeError(c, err)
		return
	}
	c.Header("X-Total-Count", strconv.Itoa(total))
	c.JSON(http.StatusOK, items)
}

// nonEmptyQuery returns a query parameter; present but empty is a 400.
func nonEmptyQuery(c *gin.Context, name string) (string, bool) {
	v, present := c.GetQuery(name)
	if present && v == "" {
		writeError(c, errs.InvalidEntity("Query parameter %s is empty", name))
		return "", false
	}
	return v, true
}

func reply(c *gin.Context, status int, body any, err error) {
	if err != nil {
		writeError(c, err)
		return
	}
	if body == nil {
		c.Status(status)
		return
	}
	c.JSON(status, body)
}

// --- vehicles ---

// vehicleView is a vehicle as the API shows it: the resolver's vehicle with the engine's state of it
// (last contact, data plan), each from the domain that owns it.
type vehicleView struct {
	VIN        string              `json:"vin"`
	LastSeen   *time.Time          `json:"lastSeen"`
	Attributes resolver.Attributes `json:"attributes"`
	DataPlan   *string             `json:"dataPlan"`
}

type expandedVehicle struct {
	vehicleView
	Packages   []resolver.PackageID `json:"packages"`
	Components []string             `json:"components"`
}

// vehicleViews adds the engine's state to the vehicles (none without an engine).
func (h resolverHandlers) vehicleViews(vs []resolver.Vehicle) ([]vehicleView, error) {
	out := make([]vehicleView, len(vs))
	vins := make([]string, len(vs))
	for i, v := range vs {
		out[i] = vehicleView{VIN: v.VIN, Attributes: v.Attributes}
		vins[i] = v.VIN
	}
	if h.s.deps.Engine == nil {
		return out, nil
	}
	states, err := h.s.deps.Engine.VehicleStates(vins)
	for i, st := range states {
		out[i].LastSeen, out[i].DataPlan = st.LastSeen, st.DataPlan
	}
	return out, err
}

func (h resolverHandlers) listVehicles(c *gin.Context) {
	var q resolver.VehicleQuery
	for _, f := range []struct {
		name string
		dst  *string
	}{{"regex", &q.Regex}, {"packageName", &q.PackageName}, {"packageVersion", &q.PackageVersion}, {"component", &q.Component}, {"expression", &q.Expression}} {
		v, ok := nonEmptyQuery(c, f.name)
		if !ok {
			return
		}
		*f.dst = v
	}
	expand := false
	if v, present := c.GetQuery("expand"); present {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(c, errs.InvalidEntity("Query parameter expand must be true or false, not %q", v))
			return
		}
		expand = b
	}
	p, ok := page(c)
	if !ok {
		return
	}
	vs, total, err := h.rs.ListVehicles(q, p)
	if err != nil {
		writeError(c, err)
		return
	}
	views, err := h.vehicleViews(vs)
	if err != nil || !expand {
		writeList(c, views, total, err)
		return
	}
	out := make([]expandedVehicle, len(vs))
	for i, v := range vs {
		out[i] = expandedVehicle{vehicleView: views[i], Packages: v.Packages, Components: v.Components}
	}
	writeList(c, out, total, nil)
}

// fleetStats is the dashboard's fleet figures: vehicles, and those seen in the last day and 30 days.
func (h resolverHandlers) fleetStats(c *gin.Context) {
	now := time.Now()
	n, err := h.rs.CountSeen(now.Add(-24*time.Hour), now.Add(-30*24*time.Hour))
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"vehicles": n.Vehicles, "seenLastDay": n.Seen[0], "seenLast30Days": n.Seen[1], "at": now.UTC()})
}

func (h resolverHandlers) createVehicle(c *gin.Context) {
	var body struct {
		VIN string `json:"vin"`
	}
	if !bindJSON(c, &body) {
		return
	}
	setAuditTarget(c, body.VIN)
	v, err := h.rs.CreateVehicle(body.VIN)
	if err != nil {
		writeError(c, err)
		return
	}
	views, err := h.vehicleViews([]resolver.Vehicle{v})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, views[0])
}

// putVehicle creates the vehicle or keeps it. A body, when there is one, is applied or refused: it may
// hold "attributes" (which replace the vehicle's) and "vin" (which must be the path's); anything else
// is a 400, never silently ignored.
func (h resolverHandlers) putVehicle(c *gin.Context) {
	vin := c.Param("vin")
	raw, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(c, errs.New(errs.TooLarge, "body_too_large", "Request body exceeds %d bytes", mbe.Limit))
			return
		}
		writeError(c, errs.InvalidEntity("Reading the body: %v", err))
		return
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		reply(c, http.StatusNoContent, nil, h.rs.PutVehicle(vin))
		return
	}
	var body struct {
		VIN        *string         `json:"vin"`
		Attributes json.RawMessage `json:"attributes"` // raw, so that null is refused, not ignored
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		if e, ok := errs.As(err); ok {
			writeError(c, e)
			return
		}
		writeError(c, errs.InvalidEntity(`Invalid body: %v; PUT /vehicles/VIN takes no body, or {"attributes": {...}} (and optionally "vin")`, err))
		return
	}
	if dec.More() {
		writeError(c, errs.InvalidEntity("Invalid body: one JSON object expected"))
		return
	}
	if body.VIN != nil && *body.VIN != vin {
		writeError(c, errs.InvalidEntity("The body's vin %q is not the path's %q", *body.VIN, vin))
		return
	}
	if body.Attributes == nil {
		reply(c, http.StatusNoContent, nil, h.rs.PutVehicle(vin))
		return
	}
	var attrs resolver.Attributes
	if err := json.Unmarshal(body.Attributes, &attrs); err != nil {
		if e, ok := errs.As(err); ok {
			writeError(c, e)
		} else {
			writeError(c, errs.InvalidEntity("Invalid attributes: %v", err))
		}
		return
	}
	reply(c, http.StatusNoContent, nil, h.rs.PutVehicleAttributes(vin, attrs))
}

func (h resolverHandlers) getVehicle(c *gin.Context) {
	v, err := h.rs.GetVehicle(c.Param("vin"))
	if err != nil {
		writeError(c, err)
		return
	}
	views, err := h.vehicleViews([]resolver.Vehicle{v})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, expandedVehicle{vehicleView: views[0], Packages: v.Packages, Components: v.Components})
}

func (h resolverHandlers) deleteVehicle(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.DeleteVehicle(c.Param("vin")))
}

func (h resolverHandlers) vehiclePackages(c *gin.Context) {
	ids, err := h.rs.InstalledPackages(c.Param("vin"))
	reply(c, http.StatusOK, ids, err)
}

func (h resolverHandlers) installPackage(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.InstallPackage(c.Param("vin"), pkgParam(c)))
}

func (h resolverHandlers) uninstallPackage(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.UninstallPackage(c.Param("vin"), pkgParam(c)))
}

func (h resolverHandlers) replaceInstalled(c *gin.Context) {
	var body struct {
		Packages *[]resolver.PackageID `json:"packages"`
	}
	if !bindJSON(c, &body) {
		return
	}
	if body.Packages == nil {
		writeError(c, errs.InvalidEntity(`The body needs "packages": [PackageId]`))
		return
	}
	reply(c, http.StatusNoContent, nil, h.rs.SetInstalled(c.Param("vin"), *body.Packages))
}

func (h resolverHandlers) vehicleComponents(c *gin.Context) {
	parts, err := h.rs.VehicleComponents(c.Param("vin"))
	reply(c, http.StatusOK, parts, err)
}

func (h resolverHandlers) installComponent(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.InstallComponent(c.Param("vin"), c.Param("part")))
}

func (h resolverHandlers) uninstallComponent(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.UninstallComponent(c.Param("vin"), c.Param("part")))
}

func (h resolverHandlers) getAttributes(c *gin.Context) {
	a, err := h.rs.VehicleAttributes(c.Param("vin"))
	reply(c, http.StatusOK, a, err)
}

func (h resolverHandlers) putAttributes(c *gin.Context) {
	var a resolver.Attributes
	if !bindJSON(c, &a) {
		return
	}
	a, err := h.rs.SetAttributes(c.Param("vin"), a)
	reply(c, http.StatusOK, a, err)
}

// --- packages ---

// packageView is a package as the API shows it: the resolver's package with the engine's record of its
// binary (size, sha256, download URI and file name; zero without one), each from the domain that owns it.
type packageView struct {
	resolver.Package
	Size     int64  `json:"size"`
	CheckSum string `json:"checkSum"`
	URI      string `json:"uri"`
	FileName string `json:"fileName,omitempty"`
}

// packageViews adds the engine's binary records to the packages (none without an engine).
func (h resolverHandlers) packageViews(pkgs []resolver.Package) ([]packageView, error) {
	out := make([]packageView, len(pkgs))
	ids := make([]resolver.PackageID, len(pkgs))
	for i, p := range pkgs {
		out[i].Package, ids[i] = p, p.ID
	}
	if h.s.deps.Engine == nil {
		return out, nil
	}
	bins, ok, err := h.s.deps.Engine.Binaries(ids)
	for i := range bins {
		if ok[i] {
			out[i].Size, out[i].CheckSum, out[i].URI, out[i].FileName = bins[i].Size, bins[i].SHA256, engine.PackageURI(ids[i]), bins[i].FileName
		}
	}
	return out, err
}

// replyPackage answers one package with its binary.
func (h resolverHandlers) replyPackage(c *gin.Context, pkg resolver.Package, err error) {
	if err != nil {
		writeError(c, err)
		return
	}
	views, err := h.packageViews([]resolver.Package{pkg})
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, views[0])
}

func (h resolverHandlers) listPackages(c *gin.Context) {
	re, ok := nonEmptyQuery(c, "regex")
	if !ok {
		return
	}
	p, ok := page(c)
	if !ok {
		return
	}
	pkgs, total, err := h.rs.ListPackages(re, p)
	if err != nil {
		writeError(c, err)
		return
	}
	views, err := h.packageViews(pkgs)
	writeList(c, views, total, err)
}

func (h resolverHandlers) createPackage(c *gin.Context) {
	var body struct {
		ID *resolver.PackageID `json:"id"`
		resolver.PackageInfo
	}
	if !bindJSON(c, &body) {
		return
	}
	if body.ID == nil {
		writeError(c, errs.InvalidEntity(`The body needs "id": {"name","version"}`))
		return
	}
	setAuditTarget(c, body.ID.Name+"/"+body.ID.Version)
	pkg, err := h.rs.CreatePackage(*body.ID, body.PackageInfo)
	h.replyPackage(c, pkg, err)
}

func (h resolverHandlers) putPackage(c *gin.Context) {
	if isMultipart(c.Request) {
		// the binary upload of the core shares the path; the JSON metadata form is the resolver's
		if h.s.deps.Engine == nil {
			writeError(c, errs.New(errs.NotImplemented, "not_implemented", "Package binary upload is not available"))
			return
		}
		setAuditStatus(c, http.StatusNoContent)
		coreHandlers{e: h.s.deps.Engine.With(auditOf(c).Hook())}.upload(c)
		return
	}
	var info resolver.PackageInfo
	if c.Request.ContentLength != 0 && !bindJSON(c, &info) {
		return
	}
	pkg, err := h.rs.PutPackage(pkgParam(c), info)
	h.replyPackage(c, pkg, err)
}

func (h resolverHandlers) getPackage(c *gin.Context) {
	pkg, err := h.rs.Package(pkgParam(c))
	h.replyPackage(c, pkg, err)
}

func (h resolverHandlers) deletePackage(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.DeletePackage(pkgParam(c)))
}

func (h resolverHandlers) packageVehicles(c *gin.Context) {
	p, ok := page(c)
	if !ok {
		return
	}
	vins, total, err := h.rs.PackageVehicles(pkgParam(c), p)
	writeList(c, vins, total, err)
}

// --- components ---

func (h resolverHandlers) listComponents(c *gin.Context) {
	re, ok := nonEmptyQuery(c, "regex")
	if !ok {
		return
	}
	p, ok := page(c)
	if !ok {
		return
	}
	cs, total, err := h.rs.ListComponents(re, p)
	writeList(c, cs, total, err)
}

type componentBody struct {
	PartNumber  string `json:"partNumber"`
	Description string `json:"description"`
}

func (h resolverHandlers) createComponent(c *gin.Context) {
	var body componentBody
	if !bindJSON(c, &body) {
		return
	}
	setAuditTarget(c, body.PartNumber)
	comp, err := h.rs.CreateComponent(body.PartNumber, body.Description)
	reply(c, http.StatusOK, comp, err)
}

func (h resolverHandlers) putComponent(c *gin.Context) {
	var body componentBody
	if c.Request.ContentLength != 0 && !bindJSON(c, &body) {
		return
	}
	comp, err := h.rs.PutComponent(c.Param("part"), body.Description)
	reply(c, http.StatusOK, comp, err)
}

func (h resolverHandlers) deleteComponent(c *gin.Context) {
	reply(c, http.StatusOK, nil, h.rs.DeleteComponent(c.Param("part")))
}

func (h resolverHandlers) componentVehicles(c *gin.Context) {
	p, ok := page(c)
	if !ok {
		return
	}
	vins, total, err := h.rs.ComponentVehicles(c.Param("part"), p)
	writeList(c, vins, total, err)
}
