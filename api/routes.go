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
	// RoleDDI needs the tenant of the path and the device token of the VIN in the path as a hawkBit
	// TargetToken, or a gateway token (GatewayToken).
	RoleDDI
	// RoleViewer may read: GET routes and calls that compute without changing anything.
	RoleViewer
	// RoleOperator may also change the fleet, filters, packages, requests, campaigns, data plans and
	// policy tables.
	RoleOperator
	// RoleAdmin may do everything, including accounts, other accounts' tokens, audit log and webhooks.
	RoleAdmin
)

var roleNames = map[Role]string{RolePublic: "public", RoleDevice: "device", RoleRVI: "rvi",
	RoleDDI: "ddi", RoleViewer: "viewer", RoleOperator: "operator", RoleAdmin: "admin"}

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
	// Long marks a route whose upload or download may outlast the server's read and write timeouts:
	// its deadlines are lifted once the caller is authenticated (Limits).
	Long bool
	// Status is the success status when it is not 200 (the audit entry records it).
	Status  int
	Handler gin.HandlerFunc

	metrics *routeMetrics // set by New
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
		{Method: get, Path: v1 + "/audit", Role: adm, Handler: s.getAudit},

		// Filter language without stored data (filters_dsl.go).
		{Method: post, Path: v1 + "/validate/filter", Role: view, Handler: s.validateFilter},
		{Method: post, Path: v1 + "/filters/format", Role: view, Handler: s.formatFilter},
		{Method: post, Path: v1 + "/filters/lint", Role: view, Handler: s.lintFilter},
		{Method: post, Path: v1 + "/filters/complete", Role: view, Handler: s.completeFilter},
	}

	if !s.cfg.noMetrics && !s.cfg.MetricsSeparate {
		rt = append(rt, Route{Method: get, Path: "/metrics", Role: op, Handler: s.serveMetrics})
	}

	if s.deps.Resolver != nil {
		h := s.resolverRoute // handlers on the resolver handle that writes the call's audit entry
		rt = append(rt, []Route{
			{Method: get, Path: v1 + "/vehicles", Role: view, Handler: h(resolverHandlers.listVehicles)},
			{Method: post, Path: v1 + "/vehicles", Role: op, Audited: audit, Handler: h(resolverHandlers.createVehicle)},
			{Method: put, Path: v1 + "/vehicles/:vin", Role: op, Audited: audit, Status: http.StatusNoContent, Handler: h(resolverHandlers.putVehicle)},
			{Method: get, Path: v1 + "/vehicles/:vin", Role: view, Handler: h(resolverHandlers.getVehicle)},
			{Method: del, Path: v1 + "/vehicles/:vin", Role: op, Audited: audit, Handler: h(resolverHandlers.deleteVehicle)},
			{Method: get, Path: v1 + "/vehicles/:vin/package", Role: view, Handler: h(resolverHandlers.vehiclePackages)},
			{Method: put, Path: v1 + "/vehicles/:vin/package/:name/:version", Role: op, Audited: audit, Handler: h(resolverHandlers.installPackage)},
			{Method: del, Path: v1 + "/vehicles/:vin/package/:name/:version", Role: op, Audited: audit, Handler: h(resolverHandlers.uninstallPackage)},
			{Method: put, Path: v1 + "/vehicles/:vin/packages", Role: op, Audited: audit, Status: http.StatusNoContent, Handler: h(resolverHandlers.replaceInstalled)},
			{Method: get, Path: v1 + "/vehicles/:vin/component", Role: view, Handler: h(resolverHandlers.vehicleComponents)},
			{Method: put, Path: v1 + "/vehicles/:vin/component/:part", Role: op, Audited: audit, Handler: h(resolverHandlers.installComponent)},
			{Method: del, Path: v1 + "/vehicles/:vin/component/:part", Role: op, Audited: audit, Handler: h(resolverHandlers.uninstallComponent)},
			{Method: get, Path: v1 + "/vehicles/:vin/attributes", Role: view, Handler: h(resolverHandlers.getAttributes)},
			{Method: put, Path: v1 + "/vehicles/:vin/attributes", Role: op, Audited: audit, Handler: h(resolverHandlers.putAttributes)},
			{Method: get, Path: v1 + "/stats/fleet", Role: view, Handler: h(resolverHandlers.fleetStats)},

			{Method: get, Path: v1 + "/packages", Role: view, Handler: h(resolverHandlers.listPackages)},
			{Method: post, Path: v1 + "/packages", Role: op, Audited: audit, Handler: h(resolverHandlers.createPackage)},
			{Method: put, Path: v1 + "/packages/:name/:version", Role: op, Audited: audit, Long: true, Handler: h(resolverHandlers.putPackage)},
			{Method: get, Path: v1 + "/packages/:name/:version", Role: view, Handler: h(resolverHandlers.getPackage)},
			{Method: del, Path: v1 + "/packages/:name/:version", Role: op, Audited: audit, Handler: h(resolverHandlers.deletePackage)},
			{Method: get, Path: v1 + "/packages/:name/:version/vehicles", Role: view, Handler: h(resolverHandlers.packageVehicles)},

			{Method: get, Path: v1 + "/components", Role: view, Handler: h(resolverHandlers.listComponents)},
			{Method: post, Path: v1 + "/components", Role: op, Audited: audit, Handler: h(resolverHandlers.createComponent)},
			{Method: put, Path: v1 + "/components/:part", Role: op, Audited: audit, Handler: h(resolverHandlers.putComponent)},
			{Method: del, Path: v1 + "/components/:part", Role: op, Audited: audit, Handler: h(resolverHandlers.deleteComponent)},
			{Method: get, Path: v1 + "/components/:part/vehicles", Role: view, Handler: h(resolverHandlers.componentVehicles)},

			{Method: get, Path: v1 + "/filters", Role: view, Handler: h(resolverHandlers.listFilters)},
			{Method: post, Path: v1 + "/filters", Role: op, Audited: audit, Handler: h(resolverHandlers.createFilter)},
			{Method: get, Path: v1 + "/filters/:name", Role: view, Handler: h(resolverHandlers.getFilter)},
			{Method: put, Path: v1 + "/filters/:name", Role: op, Audited: audit, Handler: h(resolverHandlers.updateFilter)},
			{Method: del, Path: v1 + "/filters/:name", Role: op, Audited: audit, Handler: h(resolverHandlers.deleteFilter)},
			{Method: get, Path: v1 + "/filters/:name/package", Role: view, Handler: h(resolverHandlers.filterPackages)},
			{Method: post, Path: v1 + "/filters/explain", Role: view, Handler: h(resolverHandlers.explain)},

			{Method: get, Path: v1 + "/packages/filter", Role: view, Handler: h(resolverHandlers.associations)},
			{Method: get, Path: v1 + "/packages/:name/:version/filter", Role: view, Handler: h(resolverHandlers.packageFilters)},
			{Method: put, Path: v1 + "/packages/:name/:version/filter/:filter", Role: op, Audited: audit, Handler: h(resolverHandlers.associate)},
			{Method: del, Path: v1 + "/packages/:name/:version/filter/:filter", Role: op, Audited: audit, Handler: h(resolverHandlers.dissociate)},

			{Method: get, Path: v1 + "/packages/:name/:version/dependencies", Role: view, Handler: h(resolverHandlers.dependencies)},
			{Method: put, Path: v1 + "/packages/:name/:version/dependencies/:depName", Role: op, Audited: audit, Handler: h(resolverHandlers.putRangeDependency)},
			{Method: del, Path: v1 + "/packages/:name/:version/dependencies/:depName", Role: op, Audited: audit, Handler: h(resolverHandlers.deleteRangeDependency)},
			{Method: put, Path: v1 + "/packages/:name/:version/dependencies/:depName/:depVersion", Role: op, Audited: audit, Handler: h(resolverHandlers.addDependency)},
			{Method: del, Path: v1 + "/packages/:name/:version/dependencies/:depName/:depVersion", Role: op, Audited: audit, Handler: h(resolverHandlers.removeDependency)},

			{Method: post, Path: v1 + "/fleet/import", Role: op, Audited: audit, Streaming: true, Long: true, Handler: h(resolverHandlers.importFleet)},
			{Method: get, Path: v1 + "/resolve/:name/:version", Role: view, Handler: h(resolverHandlers.resolve)},
			{Method: post, Path: v1 + "/resolve/dry-run", Role: view, Handler: h(resolverHandlers.dryRun)},
		}...)
	}

	if s.deps.Engine != nil {
		h := s.coreRoute // handlers on the engine handle that writes the call's audit entry
		rt = append(rt, []Route{
			{Method: post, Path: v1 + "/data_plans", Role: op, Audited: audit, Handler: h(coreHandlers.addPlan)},
			{Method: post, Path: v1 + "/webhooks", Role: adm, Audited: audit, Handler: h(coreHandlers.addWebhook)},
			{Method: get, Path: v1 + "/webhooks", Role: adm, Handler: h(coreHandlers.listWebhooks)},
			{Method: del, Path: v1 + "/webhooks/:id", Role: adm, Audited: audit, Handler: h(coreHandlers.deleteWebhook)},
			{Method: get, Path: v1 + "/webhooks/:id/deliveries", Role: adm, Handler: h(coreHandlers.webhookDeliveries)},
			{Method: get, Path: v1 + "/data_plans", Role: view, Handler: h(coreHandlers.listPlans)},
			{Method: post, Path: v1 + "/data_plans/:id/billing_cycles", Role: op, Audited: audit, Handler: h(coreHandlers.addCycle)},
			{Method: get, Path: v1 + "/data_plans/:id/billing_cycles", Role: view, Handler: h(coreHandlers.listCycles)},
			{Method: post, Path: v1 + "/update_requests/purge", Role: op, Audited: audit, Handler: h(coreHandlers.purge)},
			{Method: post, Path: v1 + "/update_requests/xmit", Role: op, Audited: audit, Handler: h(coreHandlers.xmit)},
			{Method: get, Path: v1 + "/wakeup/public_key", Role: pub, Handler: h(coreHandlers.publicKey)},
			{Method: get, Path: v1 + "/packages/:name/:version/download", Role: view, Long: true, Handler: h(coreHandlers.download)},
			{Method: post, Path: v1 + "/update_requests", Role: op, Audited: audit, Handler: h(coreHandlers.queue)},
			{Method: get, Path: v1 + "/update_requests", Role: view, Handler: h(coreHandlers.listRequests)},
			{Method: get, Path: v1 + "/update_requests/:id", Role: view, Handler: h(coreHandlers.getRequest)},
			{Method: get, Path: v1 + "/update_requests/:id/vehicles", Role: view, Handler: h(coreHandlers.requestVehicles)},
			{Method: put, Path: v1 + "/update_requests/:id/cancel", Role: op, Audited: audit, Handler: h(coreHandlers.cancel)},
			{Method: post, Path: v1 + "/campaigns", Role: op, Audited: audit, Handler: h(coreHandlers.createCampaign)},
			{Method: get, Path: v1 + "/campaigns", Role: view, Handler: h(coreHandlers.listCampaigns)},
			{Method: get, Path: v1 + "/campaigns/:id", Role: view, Handler: h(coreHandlers.getCampaign)},
			{Method: get, Path: v1 + "/campaigns/:id/preview", Role: view, Handler: h(coreHandlers.previewCampaign)},
			{Method: post, Path: v1 + "/campaigns/:id/launch", Role: op, Audited: audit, Handler: h(coreHandlers.launchCampaign)},
			{Method: post, Path: v1 + "/campaigns/:id/pause", Role: op, Audited: audit, Handler: h(coreHandlers.pauseCampaign)},
			{Method: post, Path: v1 + "/campaigns/:id/resume", Role: op, Audited: audit, Handler: h(coreHandlers.resumeCampaign)},
			{Method: post, Path: v1 + "/campaigns/:id/release", Role: op, Audited: audit, Handler: h(coreHandlers.releaseCampaign)},
			{Method: post, Path: v1 + "/campaigns/:id/abort", Role: op, Audited: audit, Handler: h(coreHandlers.abortCampaign)},
			{Method: get, Path: v1 + "/vehicles/:vin/queue", Role: view, Handler: h(coreHandlers.vehicleQueue)},
			{Method: get, Path: v1 + "/vehicles/:vin/history", Role: view, Handler: h(coreHandlers.vehicleHistory)},
			{Method: get, Path: v1 + "/history", Role: view, Handler: h(coreHandlers.history)},
			{Method: post, Path: v1 + "/vehicles/:vin/get_all_packages", Role: op, Audited: audit, Handler: h(coreHandlers.getAllPackages)},
			{Method: put, Path: v1 + "/vehicles/:vin/data_plan", Role: op, Audited: audit, Handler: h(coreHandlers.setDataPlan)},
			{Method: post, Path: v1 + "/vehicles/:vin/traffic", Role: op, Audited: audit, Handler: h(coreHandlers.traffic)},
			{Method: get, Path: v1 + "/stats/failures", Role: view, Handler: h(coreHandlers.failureStats)},
			{Method: get, Path: v1 + "/stats/active_updates", Role: view, Handler: h(coreHandlers.activeUpdates)},
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
			{Method: get, Path: d + "/:updateId/download", Role: dev, Long: true, Handler: h.download},
			{Method: post, Path: d + "/:updateId", Role: dev, Handler: h.report},
		}...)
	}

	if s.deps.Signing != nil && s.deps.Engine != nil && s.auth != nil {
		h := signingHandlers{s: s}
		rt = append(rt, []Route{
			// TUF metadata and signed target files are public; uploads need offline signatures besides
			{Method: get, Path: v1 + "/tuf/image/:file", Role: pub, Handler: h.imageMetadata},
			{Method: get, Path: v1 + "/tuf/image/targets/:name/:version/:file", Role: pub, Handler: h.targetFile},
			{Method: post, Path: v1 + "/tuf/image/targets", Role: adm, Audited: audit, Handler: s.signingRoute(signingHandlers.uploadTargets)},
			{Method: post, Path: v1 + "/tuf/image/root", Role: adm, Audited: audit, Handler: s.signingRoute(signingHandlers.uploadRoot)},
			{Method: get, Path: v1 + "/vehicle_updates/:vin/tuf/:file", Role: dev, Handler: h.directorMetadata},
		}...)
	}

	if s.deps.Engine != nil && s.deps.Resolver != nil && s.auth != nil {
		h := newDDIHandlers(s)
		const c = "/:tenant/controller/v1/:vin"
		rt = append(rt, []Route{
			{Method: get, Path: c, Role: RoleDDI, Handler: h.poll},
			{Method: get, Path: c + "/deploymentBase/:actionId", Role: RoleDDI, Handler: h.deploymentBase},
			{Method: post, Path: c + "/deploymentBase/:actionId/feedback", Role: RoleDDI, Handler: h.deploymentFeedback},
			{Method: get, Path: c + "/confirmationBase/:actionId", Role: RoleDDI, Handler: h.confirmationBase},
			{Method: post, Path: c + "/confirmationBase/:actionId/feedback", Role: RoleDDI, Handler: h.confirmationFeedback},
			{Method: get, Path: c + "/cancelAction/:actionId", Role: RoleDDI, Handler: h.cancelAction},
			{Method: post, Path: c + "/cancelAction/:actionId/feedback", Role: RoleDDI, Handler: h.cancelFeedback},
			{Method: put, Path: c + "/configData", Role: RoleDDI, Handler: h.configData},
			{Method: get, Path: c + "/installedBase/:actionId", Role: RoleDDI, Handler: h.installedBase},
			{Method: get, Path: c + "/softwaremodules/:moduleId/artifacts", Role: RoleDDI, Handler: h.artifacts},
			{Method: get, Path: c + "/softwaremodules/:moduleId/artifacts/:filename", Role: RoleDDI, Long: true, Handler: h.download},
			{Method: http.MethodHead, Path: c + "/softwaremodules/:moduleId/artifacts/:filename", Role: RoleDDI, Handler: h.download},

			{Method: get, Path: v1 + "/ddi/gateway_tokens", Role: adm, Handler: s.listGatewayTokens},
			{Method: post, Path: v1 + "/ddi/gateway_tokens", Role: adm, Audited: audit, Handler: s.createGatewayToken},
			{Method: del, Path: v1 + "/ddi/gateway_tokens/:id", Role: adm, Audited: audit, Handler: s.revokeGatewayToken},
		}...)
	}

	if s.rvi != nil {
		rt = append(rt, Route{Method: post, Path: "/rvi/:service", Role: rviR, Handler: s.rvi.handle})
	}

	if p := s.deps.Policy; p != nil {
		h := policyHandlers{p: p}
		ph := s.policyRoute // handlers on the policy handle that writes the call's audit entry
		rt = append(rt, []Route{
			// the two environments are explicit: they are the SDL policy server's paths
			{Method: post, Path: v1 + "/production/policy", Role: pub, Handler: h.answer("production")},
			{Method: post, Path: v1 + "/staging/policy", Role: pub, Handler: h.answer("staging")},
			{Method: get, Path: v1 + "/policy/tables/:env", Role: view, Handler: ph(policyHandlers.getTable)},
			{Method: put, Path: v1 + "/policy/tables/:env", Role: op, Audited: audit, Handler: ph(policyHandlers.putTable)},
			{Method: post, Path: v1 + "/policy/validate", Role: view, Handler: ph(policyHandlers.validate)},
		}...)
	}
	return rt
}
