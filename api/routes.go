package api

// The route table: every route of the server, with the least role that may call it and whether a
// successful call is recorded in the audit log. New registers exactly these rows and nothing else;
// authenticate decides from the row of the matched route who may call it. A route is added by adding a
// row here (routes_test.go fails for a route without a role decision or one registered elsewhere).

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// Role is the least role a route needs. Admin ⊃ operator ⊃ viewer for accounts and API tokens; public,
// device and RVI routes are outside that order and have their own credentials (or none).
type Role int

const (
	roleUnset Role = iota // the zero value: a row without a decision (refused by New and the tests)
	// RolePublic needs no credentials (UI pages, login, health, the SDL policy server head units call).
	RolePublic
	// RoleDevice needs the device token of the VIN in the path.
	RoleDevice
	// RoleRVI needs the RVI node's bearer token (--rvi-token).
	RoleRVI
	// RoleViewer may read: GET routes and calls that compute without changing anything.
	RoleViewer
	// RoleOperator may also change the fleet, filters, packages, requests, campaigns, data plans and
	// policy tables.
	RoleOperator
	// RoleAdmin may do everything, including accounts, other accounts' tokens, audit log and webhooks.
	RoleAdmin
)

var roleNames = map[Role]string{RolePublic: "public", RoleDevice: "device", RoleRVI: "rvi",
	RoleViewer: "viewer", RoleOperator: "operator", RoleAdmin: "admin"}

func (r Role) String() string {
	if n, ok := roleNames[r]; ok {
		return n
	}
	return "unset"
}

// Route is one row of the route table.
type Route struct {
	Method  string
	Path    string // gin pattern of the full path
	Role    Role
	Audited bool // a successful call writes one audit-log entry
	// Streaming marks a route whose handler reads a large body as a stream and bounds what it keeps
	// itself (fleet import); the JSON body limit leaves it alone.
	Streaming bool
	Handler   gin.HandlerFunc
}

func (r Route) key() string { return r.Method + " " + r.Path }

// Routes returns the route table of this server: the rows of the services it was given (a nil service
// leaves its rows out).
func (s *Server) Routes() []Route { return s.routes }

// routeTable lists every route. Read-only POSTs (validate, format, explain, dry run, policy
// validation) are viewer routes: they compute an answer and change nothing.
func (s *Server) routeTable() []Route {
	const (
		get, post, put, del           = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		v1                            = "/api/v1"
		pub, dev, rviR, view, op, adm = RolePublic, RoleDevice, RoleRVI, RoleViewer, RoleOperator, RoleAdmin
		audit                         = true
	)
	rt := []Route{
		{Method: get, Path: "/healthz", Role: pub, Handler: func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }},
		{Method: get, Path: "/api/openapi.yaml", Role: pub, Handler: func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapiYAML) }},

		// UI and sessions (auth_routes.go); UI pages redirect to the login page themselves.
		{Method: get, Path: "/", Role: pub, Handler: s.uiPage},
		{Method: get, Path: "/index.html", Role: pub, Handler: s.uiPage},
		{Method: get, Path: "/assets/:file", Role: pub, Handler: uiAsset},
		{Method: get, Path: "/login", Role: pub, Handler: s.loginPage},
		{Method: post, Path: "/login", Role: pub, Handler: s.login},
		{Method: post, Path: "/logout", Role: pub, Handler: s.logout},
		{Method: get, Path: v1 + "/session", Role: view, Handler: s.session},
		{Method: get, Path: v1 + "/tokens", Role: view, Handler: s.listTokens},
		{Method: post, Path: v1 + "/tokens", Role: view, Audited: audit, Handler: s.createToken},
		{Method: del, Path: v1 + "/tokens/:id", Role: view, Audited: audit, Handler: s.revokeToken},
		{Method: get, Path: v1 + "/accounts", Role: adm, Handler: s.listAccounts},
		{Method: post, Path: v1 + "/accounts", Role: adm, Audited: audit, Handler: s.createAccount},
		{Method: put, Path: v1 + "/accounts/:username/password", Role: view, Audited: audit, Handler: s.setPassword},
		{Method: del, Path: v1 + "/accounts/:username", Role: adm, Audited: audit, Handler: s.deleteAccount},

		// Filter language without stored data (filters_dsl.go).
		{Method: post, Path: v1 + "/validate/filter", Role: view, Handler: s.validateFilter},
		{Method: post, Path: v1 + "/filters/format", Role: view, Handler: s.formatFilter},
		{Method: post, Path: v1 + "/filters/lint", Role: view, Handler: s.lintFilter},
		{Method: post, Path: v1 + "/filters/complete", Role: view, Handler: s.completeFilter},
	}

	if rs := s.deps.Resolver; rs != nil {
		h := resolverHandlers{s: s, rs: rs}
		rt = append(rt, []Route{
			{Method: get, Path: v1 + "/vehicles", Role: view, Handler: h.listVehicles},
			{Method: get, Path: v1 + "/stats/fleet", Role: view, Handler: h.fleetStats},
			{Method: post, Path: v1 + "/vehicles", Role: op, Audited: audit, Handler: h.createVehicle},
			{Method: put, Path: v1 + "/vehicles/:vin", Role: op, Audited: audit, Handler: h.putVehicle},
			{Method: get, Path: v1 + "/vehicles/:vin", Role: view, Handler: h.getVehicle},
			{Method: del, Path: v1 + "/vehicles/:vin", Role: op, Audited: audit, Handler: h.deleteVehicle},
			{Method: get, Path: v1 + "/vehicles/:vin/package", Role: view, Handler: h.vehiclePackages},
			{Method: put, Path: v1 + "/vehicles/:vin/package/:name/:version", Role: op, Audited: audit, Handler: h.installPackage},
			{Method: del, Path: v1 + "/vehicles/:vin/package/:name/:version", Role: op, Audited: audit, Handler: h.uninstallPackage},
			{Method: put, Path: v1 + "/vehicles/:vin/packages", Role: op, Audited: audit, Handler: h.replaceInstalled},
			{Method: get, Path: v1 + "/vehicles/:vin/component", Role: view, Handler: h.vehicleComponents},
			{Method: put, Path: v1 + "/vehicles/:vin/component/:part", Role: op, Audited: audit, Handler: h.installComponent},
			{Method: del, Path: v1 + "/vehicles/:vin/component/:part", Role: op, Audited: audit, Handler: h.uninstallComponent},
			{Method: get, Path: v1 + "/vehicles/:vin/attributes", Role: view, Handler: h.getAttributes},
			{Method: put, Path: v1 + "/vehicles/:vin/attributes", Role: op, Audited: audit, Handler: h.putAttributes},

			{Method: get, Path: v1 + "/packages", Role: view, Handler: h.listPackages},
			{Method: post, Path: v1 + "/packages", Role: op, Audited: audit, Handler: h.createPackage},
			{Method: put, Path: v1 + "/packages/:name/:version", Role: op, Audited: audit, Handler: h.putPackage},
			{Method: get, Path: v1 + "/packages/:name/:version", Role: view, Handler: h.getPackage},
			{Method: del, Path: v1 + "/packages/:name/:version", Role: op, Audited: audit, Handler: h.deletePackage},
			{Method: get, Path: v1 + "/packages/:name/:version/vehicles", Role: view, Handler: h.packageVehicles},

			{Method: get, Path: v1 + "/components", Role: view, Handler: h.listComponents},
			{Method: post, Path: v1 + "/components", Role: op, Audited: audit, Handler: h.createComponent},
			{Method: put, Path: v1 + "/components/:part", Role: op, Audited: audit, Handler: h.putComponent},
			{Method: del, Path: v1 + "/components/:part", Role: op, Audited: audit, Handler: h.deleteComponent},
			{Method: get, Path: v1 + "/components/:part/vehicles", Role: view, Handler: h.componentVehicles},

			{Method: get, Path: v1 + "/filters", Role: view, Handler: h.listFilters},
			{Method: post, Path: v1 + "/filters", Role: op, Audited: audit, Handler: h.createFilter},
			{Method: get, Path: v1 + "/filters/:name", Role: view, Handler: h.getFilter},
			{Method: put, Path: v1 + "/filters/:name", Role: op, Audited: audit, Handler: h.updateFilter},
			{Method: del, Path: v1 + "/filters/:name", Role: op, Audited: audit, Handler: h.deleteFilter},
			{Method: get, Path: v1 + "/filters/:name/package", Role: view, Handler: h.filterPackages},
			{Method: post, Path: v1 + "/filters/explain", Role: view, Handler: h.explain},

			{Method: get, Path: v1 + "/packages/filter", Role: view, Handler: h.associations},
			{Method: get, Path: v1 + "/packages/:name/:version/filter", Role: view, Handler: h.packageFilters},
			{Method: put, Path: v1 + "/packages/:name/:version/filter/:filter", Role: op, Audited: audit, Handler: h.associate},
			{Method: del, Path: v1 + "/packages/:name/:version/filter/:filter", Role: op, Audited: audit, Handler: h.dissociate},

			{Method: get, Path: v1 + "/packages/:name/:version/dependencies", Role: view, Handler: h.dependencies},
			{Method: put, Path: v1 + "/packages/:name/:version/dependencies/:depName", Role: op, Audited: audit, Handler: h.putRangeDependency},
			{Method: del, Path: v1 + "/packages/:name/:version/dependencies/:depName", Role: op, Audited: audit, Handler: h.deleteRangeDependency},
			{Method: put, Path: v1 + "/packages/:name/:version/dependencies/:depName/:depVersion", Role: op, Audited: audit, Handler: h.addDependency},
			{Method: del, Path: v1 + "/packages/:name/:version/dependencies/:depName/:depVersion", Role: op, Audited: audit, Handler: h.removeDependency},

			{Method: post, Path: v1 + "/fleet/import", Role: op, Audited: audit, Streaming: true, Handler: h.importFleet},
			{Method: get, Path: v1 + "/resolve/:name/:version", Role: view, Handler: h.resolve},
			{Method: post, Path: v1 + "/resolve/dry-run", Role: view, Handler: h.dryRun},
		}...)
	}

	if e := s.deps.Engine; e != nil {
		h := coreHandlers{e: e}
		rt = append(rt, []Route{
			{Method: post, Path: v1 + "/data_plans", Role: op, Audited: audit, Handler: h.addPlan},
			{Method: get, Path: v1 + "/data_plans", Role: view, Handler: h.listPlans},
			{Method: post, Path: v1 + "/data_plans/:id/billing_cycles", Role: op, Audited: audit, Handler: h.addCycle},
			{Method: get, Path: v1 + "/data_plans/:id/billing_cycles", Role: view, Handler: h.listCycles},
			{Method: post, Path: v1 + "/update_requests/purge", Role: op, Audited: audit, Handler: h.purge},
			{Method: post, Path: v1 + "/update_requests/xmit", Role: op, Audited: audit, Handler: h.xmit},
			{Method: get, Path: v1 + "/wakeup/public_key", Role: pub, Handler: h.publicKey},
			{Method: get, Path: v1 + "/packages/:name/:version/download", Role: view, Handler: h.download},
			{Method: post, Path: v1 + "/update_requests", Role: op, Audited: audit, Handler: h.queue},
			{Method: get, Path: v1 + "/update_requests", Role: view, Handler: h.listRequests},
			{Method: get, Path: v1 + "/update_requests/:id", Role: view, Handler: h.getRequest},
			{Method: get, Path: v1 + "/update_requests/:id/vehicles", Role: view, Handler: h.requestVehicles},
			{Method: put, Path: v1 + "/update_requests/:id/cancel", Role: op, Audited: audit, Handler: h.cancel},
			{Method: post, Path: v1 + "/campaigns", Role: op, Audited: audit, Handler: h.createCampaign},
			{Method: get, Path: v1 + "/campaigns", Role: view, Handler: h.listCampaigns},
			{Method: get, Path: v1 + "/campaigns/:id", Role: view, Handler: h.getCampaign},
			{Method: get, Path: v1 + "/campaigns/:id/preview", Role: view, Handler: h.previewCampaign},
			{Method: post, Path: v1 + "/campaigns/:id/launch", Role: op, Audited: audit, Handler: h.launchCampaign},
			{Method: get, Path: v1 + "/vehicles/:vin/queue", Role: view, Handler: h.vehicleQueue},
			{Method: get, Path: v1 + "/vehicles/:vin/history", Role: view, Handler: h.vehicleHistory},
			{Method: get, Path: v1 + "/history", Role: view, Handler: h.history},
			{Method: get, Path: v1 + "/stats/failures", Role: view, Handler: h.failureStats},
			{Method: get, Path: v1 + "/stats/active_updates", Role: view, Handler: h.activeUpdates},
			{Method: post, Path: v1 + "/vehicles/:vin/get_all_packages", Role: op, Audited: audit, Handler: h.getAllPackages},
			{Method: put, Path: v1 + "/vehicles/:vin/data_plan", Role: op, Audited: audit, Handler: h.setDataPlan},
			{Method: post, Path: v1 + "/vehicles/:vin/traffic", Role: op, Audited: audit, Handler: h.traffic},
		}...)
	}

	if s.deps.Engine != nil && s.deps.Resolver != nil && s.auth != nil {
		h := deviceHandlers{s: s, e: s.deps.Engine, chunk: s.cfg.ChunkSize}
		if h.chunk <= 0 {
			h.chunk = DefaultChunkSize
		}
		const d = v1 + "/vehicle_updates/:vin"
		rt = append(rt, []Route{
			{Method: post, Path: v1 + "/vehicles/:vin/token", Role: op, Audited: audit, Handler: h.mintToken},
			{Method: get, Path: d, Role: dev, Handler: h.poll},
			{Method: get, Path: d + "/notification", Role: dev, Handler: h.notification},
			{Method: put, Path: d + "/installed", Role: dev, Handler: h.installed},
			{Method: post, Path: d + "/:updateId/start", Role: dev, Handler: h.start},
			{Method: post, Path: d + "/:updateId/cancel", Role: dev, Handler: h.cancel},
			{Method: get, Path: d + "/:updateId/chunk", Role: dev, Handler: h.nextChunk},
			{Method: get, Path: d + "/:updateId/chunks/:index", Role: dev, Handler: h.chunkAt},
			{Method: post, Path: d + "/:updateId/ack", Role: dev, Handler: h.ack},
			{Method: post, Path: d + "/:updateId/finalize", Role: dev, Handler: h.finalize},
			{Method: get, Path: d + "/:updateId/download", Role: dev, Handler: h.download},
			{Method: post, Path: d + "/:updateId", Role: dev, Handler: h.report},
		}...)
	}

	if s.deps.Signing != nil && s.deps.Engine != nil && s.auth != nil {
		h := signingHandlers{s: s}
		rt = append(rt, []Route{
			// TUF metadata and signed target files are public; uploads need offline signatures besides
			{Method: get, Path: v1 + "/tuf/image/:file", Role: pub, Handler: h.imageMetadata},
			{Method: get, Path: v1 + "/tuf/image/targets/:name/:version/:file", Role: pub, Handler: h.targetFile},
			{Method: post, Path: v1 + "/tuf/image/targets", Role: adm, Audited: audit, Handler: h.uploadTargets},
			{Method: post, Path: v1 + "/tuf/image/root", Role: adm, Audited: audit, Handler: h.uploadRoot},
			{Method: get, Path: v1 + "/vehicle_updates/:vin/tuf/:file", Role: dev, Handler: h.directorMetadata},
		}...)
	}

	if s.rvi != nil {
		rt = append(rt, Route{Method: post, Path: "/rvi/:service", Role: rviR, Handler: s.rvi.handle})
	}

	if p := s.deps.Policy; p != nil {
		h := policyHandlers{p: p}
		rt = append(rt, []Route{
			// the two environments are explicit: they are the SDL policy server's paths
			{Method: post, Path: v1 + "/production/policy", Role: pub, Handler: h.answer("production")},
			{Method: post, Path: v1 + "/staging/policy", Role: pub, Handler: h.answer("staging")},
			{Method: get, Path: v1 + "/policy/tables/:env", Role: view, Handler: h.getTable},
			{Method: put, Path: v1 + "/policy/tables/:env", Role: op, Audited: audit, Handler: h.putTable},
			{Method: post, Path: v1 + "/policy/validate", Role: view, Handler: h.validate},
		}...)
	}
	return rt
}
