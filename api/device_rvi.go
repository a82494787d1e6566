package api

// RVI transport: vehicles behind a GENIVI RVI node reach the same transfer sessions, install reports
// and installed-package answers as the device API, over RVI's JSON-RPC 2.0 (the shapes of the original
// server). Outbound, the server calls the node's method "message" with service_name
// "genivi.org/vin/<VIN>/sota/<x>"; inbound, the node calls "message" on /rvi/<start|ack|report|packages>,
// which the server registered at start (register_service). The scheduler's signed wake-ups become RVI
// "notify" messages: with --rvi-url and no --wakeup-url, sotad points the wake-ups at /rvi/wakeup.
//
// Transfer: after "start" the server sends the first unacknowledged chunk; each "ack" lists the
// chunks received and the server sends the first gap, or "finish" when none is left. A chunk whose ack
// does not come within RVIConfig.AckTimeout (30 s) is sent again, at most RVIConfig.Resends (5) times,
// then the server sends "abort" (the persisted session stays for a later start). The wait for an ack
// is in the store (engine/resend.go) and the resends are leased work: with several replicas one at a
// time resends, whichever replica sent the chunk, also after that one died.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"sota/engine"
	"sota/errs"
	"sota/resolver"
	"sota/wire"
)

// RVIConfig enables the RVI transport when NodeURL is set.
type RVIConfig struct {
	NodeURL    string        // the RVI node's JSON-RPC endpoint (--rvi-url)
	Token      string        // bearer token the node sends on inbound calls (--rvi-token)
	SelfURL    string        // this server's base URL as the node reaches it (for register_service)
	AckTimeout time.Duration // default 30 s
	Resends    int           // default 5
	HTTP       *http.Client  // default: 10 s timeout
}

// rviServices are the services the server registers with the node.
var rviServices = []string{"start", "ack", "report", "packages"}

type rvi struct {
	cfg   RVIConfig
	e     *engine.Service
	s     *Server
	chunk int
	stop  func() // ends the resends (engine.StartResends)
}

func newRVI(cfg RVIConfig, e *engine.Service, chunk int, s *Server) *rvi {
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 30 * time.Second
	}
	if cfg.Resends <= 0 {
		cfg.Resends = 5
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	a := &rvi{cfg: cfg, e: e, s: s, chunk: chunk}
	a.stop = sync.OnceFunc(e.StartResends(engine.ResendOptions{Timeout: cfg.AckTimeout, Resends: cfg.Resends}, a.resend))
	return a
}

// call sends one JSON-RPC request to the node.
func (a *rvi) call(ctx context.Context, method string, params any) error {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": time.Now().UnixNano(), "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, "POST", a.cfg.NodeURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cfg.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("RVI node answered %s", resp.Status)
	}
	if json.NewDecoder(resp.Body).Decode(&out) == nil && out.Error != nil {
		return fmt.Errorf("RVI node: %d %s", out.Error.Code, out.Error.Message)
	}
	return nil
}

// register announces the server's services to the node, retrying while it is not reachable.
func (a *rvi) register(ctx context.Context) {
	for _, name := range rviServices {
		addr := strings.TrimRight(a.cfg.SelfURL, "/") + "/rvi/" + name
		for attempt := 0; ; attempt++ {
			err := a.call(ctx, "register_service", map[string]any{"service": "/sota/" + name, "network_address": addr})
			if err == nil {
				break
			}
			if attempt == 9 {
				a.s.log.Error("RVI: register_service failed", "service", name, "err", err)
				break
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
	}
}

// send delivers a message to a vehicle's service.
func (a *rvi) send(vin, service string, payload any) error {
	return a.call(context.Background(), "message", map[string]any{
		"service_name": "genivi.org/vin/" + vin + "/sota/" + service,
		"timeout":      time.Now().Add(a.cfg.AckTimeout).Unix(),
		"parameters":   []any{payload},
	})
}

func (a *rvi) sendLogged(vin, service string, payload any) {
	if err := a.send(vin, service, payload); err != nil {
		a.s.log.Warn("RVI: message not delivered", "vin", vin, "service", service, "err", err)
	}
}

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

func rpcError(c *gin.Context, id json.RawMessage, code int, msg string) {
	if id == nil {
		id = json.RawMessage("null")
	}
	c.JSON(http.StatusOK, gin.H{"jsonrpc": "2.0", "id": id, "error": gin.H{"code": code, "message": msg}})
}

// handle answers the node's JSON-RPC calls on /rvi/<service>, and the engine's wake-ups on /rvi/wakeup.
func (a *rvi) handle(c *gin.Context) {
	service := c.Param("service")
	if service == "wakeup" {
		a.wakeup(c)
		return
	}
	var req rpcRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<20))
	if err := dec.Decode(&req); err != nil {
		rpcError(c, nil, -32700, "Parse error")
		return
	}
	if req.JSONRPC != "2.0" || req.Method == "" {
		rpcError(c, req.ID, -32600, "Invalid Request")
		return
	}
	if req.Method != "message" {
		rpcError(c, req.ID, -32601, "Method not found")
		return
	}
	var p struct {
		ServiceName string            `json:"service_name"`
		Parameters  []json.RawMessage `json:"parameters"`
	}
	if json.Unmarshal(req.Params, &p) != nil || len(p.Parameters) != 1 {
		rpcError(c, req.ID, -32602, "Invalid params: want {service_name, parameters: [payload]}")
		return
	}
	var err error
	switch service {
	case "start":
		err = a.start(p.Parameters[0])
	case "ack":
		err = a.ack(p.Parameters[0])
	case "report":
		err = a.report(p.Parameters[0])
	case "packages":
		err = a.packages(p.Parameters[0])
	default:
		rpcError(c, req.ID, -32601, "Method not found: no service "+service)
		return
	}
	if err != nil {
		code := -32602
		if e, ok := errs.As(err); !ok || e.Kind == errs.Internal {
			code = -32603
			a.s.log.Error("RVI: internal error", "service", service, "err", err)
		}
		rpcError(c, req.ID, code, err.Error())
		return
	}
	c.JSON(http.StatusOK, gin.H{"jsonrpc": "2.0", "id": req.ID, "result": "ok"})
}

func decodeParam(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return errs.InvalidEntity("Invalid params: %v", err)
	}
	return nil
}

func (a *rvi) start(raw json.RawMessage) error {
	var m struct {
		VIN      string `json:"vin"`
		UpdateID string `json:"update_id"`
	}
	if err := decodeParam(raw, &m); err != nil {
		return err
	}
	if err := resolver.ValidVIN(m.VIN); err != nil {
		return err
	}
	a.e.Contact(m.VIN)
	tr, err := a.e.StartTransfer(m.VIN, m.UpdateID, a.chunk)
	if err != nil {
		return err
	}
	go func() {
		a.sendLogged(m.VIN, "start", map[string]any{"update_id": tr.UpdateID, "checksum": tr.SHA256, "chunkscount": tr.ChunksCount})
		a.sendNext(m.VIN, tr.UpdateID)
	}()
	return nil
}

func (a *rvi) ack(raw json.RawMessage) error {
	var m struct {
		VIN      string `json:"vin"`
		UpdateID string `json:"update_id"`
		Chunks   []int  `json:"chunks"`
	}
	if err := decodeParam(raw, &m); err != nil {
		return err
	}
	if err := resolver.ValidVIN(m.VIN); err != nil {
		return err
	}
	a.e.Contact(m.VIN)
	if _, err := a.e.AckChunks(m.VIN, m.UpdateID, m.Chunks); err != nil {
		return err
	}
	go a.sendNext(m.VIN, m.UpdateID)
	return nil
}

// sendNext sends the first unacknowledged chunk, whose ack is then awaited (a resend follows when it
// does not come in time), or, when every chunk is acknowledged, completes the transfer and sends
// finish.
func (a *rvi) sendNext(vin, id string) {
	ch, ok, err := a.e.NextChunkAwaitingAck(vin, id, a.cfg.AckTimeout)
	if err != nil {
		a.s.log.Warn("RVI: next chunk", "vin", vin, "update", id, "err", err)
		return
	}
	if !ok {
		a.finish(vin, id)
		return
	}
	a.sendChunk(vin, id, ch)
}

// finish finalizes a transfer whose chunks are all acknowledged and sends finish.
func (a *rvi) finish(vin, id string) {
	st, err := a.e.TransferStatus(vin, id)
	if err == nil {
		_, err = a.e.FinalizeTransfer(vin, id, st.ChunksCount, st.SHA256)
	}
	if err != nil {
		a.s.log.Warn("RVI: finalize", "vin", vin, "update", id, "err", err)
		return
	}
	a.sendLogged(vin, "finish", map[string]any{"update_id": id, "signature": st.SHA256})
}

func (a *rvi) sendChunk(vin, id string, ch engine.Chunk) {
	a.sendLogged(vin, "chunk", map[string]any{"update_id": id, "bytes": ch.Data, "index": ch.Index})
}

// resend is what the resends (run by whichever replica holds their lease) decided for a chunk whose
// ack did not come in time: the chunk again, the next one, finish, or abort after the last resend.
func (a *rvi) resend(r engine.Resend) {
	switch {
	case r.Abort:
		a.s.log.Warn("RVI: no ack, transfer aborted", "vin", r.VIN, "update", r.UpdateID, "chunk", r.Index)
		a.sendLogged(r.VIN, "abort", nil)
	case r.Index == 0:
		a.finish(r.VIN, r.UpdateID)
	default:
		ch, err := a.e.ChunkAt(r.VIN, r.UpdateID, r.Index)
		if err != nil {
			a.s.log.Warn("RVI: resend", "vin", r.VIN, "update", r.UpdateID, "err", err)
			return
		}
		a.sendChunk(r.VIN, r.UpdateID, ch)
	}
}

func (a *rvi) report(raw json.RawMessage) error {
	var m struct {
		VIN          string `json:"vin"`
		UpdateReport struct {
			UpdateID         string                   `json:"update_id"`
			OperationResults []engine.OperationResult `json:"operation_results"`
		} `json:"update_report"`
	}
	if err := decodeParam(raw, &m); err != nil {
		return err
	}
	if err := resolver.ValidVIN(m.VIN); err != nil {
		return err
	}
	a.e.Contact(m.VIN)
	if _, _, err := a.e.InstallReport(m.VIN, m.UpdateReport.UpdateID, m.UpdateReport.OperationResults); err != nil {
		return err
	}
	if err := a.e.StopAwaiting(m.VIN, m.UpdateReport.UpdateID); err != nil {
		a.s.log.Warn("RVI: report", "vin", m.VIN, "update", m.UpdateReport.UpdateID, "err", err)
	}
	go a.notify(m.VIN) // INSTALL_REPORT E5: the next update
	return nil
}

func (a *rvi) packages(raw json.RawMessage) error {
	var m struct {
		VIN               string          `json:"vin"`
		InstalledSoftware json.RawMessage `json:"installed_software"`
	}
	if err := decodeParam(raw, &m); err != nil {
		return err
	}
	if err := resolver.ValidVIN(m.VIN); err != nil {
		return err
	}
	// installed_software: [PackageId], or {"packages": [PackageId or {"package_id": PackageId}]}
	var ids []resolver.PackageID
	if json.Unmarshal(m.InstalledSoftware, &ids) != nil {
		var obj struct {
			Packages []struct {
				Name      string              `json:"name"`
				Version   string              `json:"version"`
				PackageID *resolver.PackageID `json:"package_id"`
			} `json:"packages"`
		}
		if err := decodeParam(m.InstalledSoftware, &obj); err != nil {
			return err
		}
		for _, p := range obj.Packages {
			if p.PackageID != nil {
				ids = append(ids, *p.PackageID)
			} else {
				ids = append(ids, resolver.PackageID{Name: p.Name, Version: p.Version})
			}
		}
	}
	a.e.Contact(m.VIN)
	if err := a.e.InstalledReport(m.VIN, ids); err != nil {
		return err
	}
	go a.notify(m.VIN)
	return nil
}

// wakeup receives the engine's signed wake-up and turns it into an RVI notification.
func (a *rvi) wakeup(c *gin.Context) {
	var w engine.Wakeup
	if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 4096)).Decode(&w); err != nil {
		writeError(c, errs.InvalidEntity("Invalid wake-up: %v", err))
		return
	}
	if !wire.VerifyWakeup(a.e.PublicKey(), w) {
		writeError(c, errs.New(errs.Forbidden, "bad_signature", "Wake-up not signed by this server"))
		return
	}
	a.notify(w.VIN)
	c.Status(http.StatusNoContent)
}

// notify sends the vehicle its next update (UPDATE_NOTIFICATION) or getpackages.
func (a *rvi) notify(vin string) {
	n, ok, err := a.e.Notify(vin)
	if err != nil || !ok {
		if err != nil {
			a.s.log.Warn("RVI: notify", "vin", vin, "err", err)
		}
		return
	}
	if n.GetAllPackages != nil {
		a.sendLogged(vin, "getpackages", nil)
		return
	}
	u := n.UpdateAvailable
	a.sendLogged(vin, "notify", map[string]any{
		"update_available": map[string]any{"update_id": u.UpdateID, "signature": "", "description": u.Description,
			"request_confirmation": u.RequestConfirmation, "size": u.Size},
		"services": a.services(),
	})
}

// services tells the vehicle where to answer (the original server's "services" object).
func (a *rvi) services() map[string]string {
	out := map[string]string{}
	for _, s := range rviServices {
		out[s] = "genivi.org/backend/sota/" + s
	}
	return out
}
