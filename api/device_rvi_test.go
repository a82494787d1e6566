package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/policy"
	"sota/resolver"
)

// rviNode stands in for a GENIVI RVI node with its vehicles (a boundary we do not own): it records
// the services the server registers, delivers the server's messages to simulated vehicles, and
// forwards their answers to the registered services.
type rviNode struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	services map[string]string // "/sota/start" -> network_address
	cars     map[string]*rviCar
}

// rviCar is a vehicle behind the node: it accepts every update, acknowledges chunks (except the
// first ack of chunk dropAck, lost on the way, or none at all when mute), checks the payload against
// the checksum at finish and reports OK.
type rviCar struct {
	vin      string
	mute     bool
	dropAck  int
	dropped  bool
	checksum string
	count    int
	chunks   map[int][]byte
	received map[int]int // deliveries per chunk
	log      []string    // message kinds in order
	payloads [][]byte    // completed payloads
	aborted  bool
}

func newRVINode(t *testing.T) *rviNode {
	n := &rviNode{t: t, services: map[string]string{}, cars: map[string]*rviCar{}}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *rviNode) car(vin string) *rviCar {
	c := &rviCar{vin: vin, chunks: map[int][]byte{}, received: map[int]int{}}
	n.mu.Lock()
	n.cars[vin] = c
	n.mu.Unlock()
	return c
}

func (n *rviNode) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage
		Method string
		Params json.RawMessage
	}
	require.NoError(n.t, json.NewDecoder(r.Body).Decode(&req))
	switch req.Method {
	case "register_service":
		var p struct {
			Service        string `json:"service"`
			NetworkAddress string `json:"network_address"`
		}
		json.Unmarshal(req.Params, &p)
		n.mu.Lock()
		n.services[p.Service] = p.NetworkAddress
		n.mu.Unlock()
	case "message":
		var p struct {
			ServiceName string            `json:"service_name"`
			Timeout     int64             `json:"timeout"`
			Parameters  []json.RawMessage `json:"parameters"`
		}
		json.Unmarshal(req.Params, &p)
		require.Len(n.t, p.Parameters, 1)
		assert.Greater(n.t, p.Timeout, time.Now().Unix()-1)
		parts := strings.Split(p.ServiceName, "/") // genivi.org/vin/<VIN>/sota/<x>
		require.Len(n.t, parts, 5, p.ServiceName)
		go n.deliver(parts[2], parts[4], p.Parameters[0])
	}
	json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": "ok"})
}

// toServer calls a registered service of the server as the vehicle.
func (n *rviNode) toServer(service string, payload any) map[string]any {
	n.mu.Lock()
	addr := n.services["/sota/"+service]
	n.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "message",
		"params": map[string]any{"service_name": "genivi.org/backend/sota/" + service, "timeout": time.Now().Unix() + 60, "parameters": []any{payload}}})
	resp, err := http.Post(addr, "application/json", bytes.NewReader(body))
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func (n *rviNode) deliver(vin, kind string, raw json.RawMessage) {
	n.mu.Lock()
	c := n.cars[vin]
	n.mu.Unlock()
	if c == nil {
		return
	}
	n.mu.Lock()
	c.log = append(c.log, kind)
	n.mu.Unlock()
	switch kind {
	case "notify":
		var m struct {
			UpdateAvailable struct {
				UpdateID string `json:"update_id"`
				Size     int64  `json:"size"`
			} `json:"update_available"`
		}
		json.Unmarshal(raw, &m)
		n.toServer("start", map[string]any{"vin": vin, "update_id": m.UpdateAvailable.UpdateID, "services": map[string]string{}})
	case "start":
		var m struct {
			Checksum    string `json:"checksum"`
			ChunksCount int    `json:"chunkscount"`
		}
		json.Unmarshal(raw, &m)
		n.mu.Lock()
		c.checksum, c.count, c.chunks = m.Checksum, m.ChunksCount, map[int][]byte{}
		n.mu.Unlock()
	case "chunk":
		var m struct {
			UpdateID string `json:"update_id"`
			Bytes    []byte `json:"bytes"`
			Index    int    `json:"index"`
		}
		json.Unmarshal(raw, &m)
		n.mu.Lock()
		c.chunks[m.Index] = m.Bytes
		c.received[m.Index]++
		drop := c.mute || (m.Index == c.dropAck && !c.dropped)
		if m.Index == c.dropAck {
			c.dropped = true
		}
		var got []int
		for i := range c.chunks {
			got = append(got, i)
		}
		n.mu.Unlock()
		if !drop {
			n.toServer("ack", map[string]any{"vin": vin, "update_id": m.UpdateID, "chunks": got})
		}
	case "finish":
		var m struct {
			UpdateID string `json:"update_id"`
		}
		json.Unmarshal(raw, &m)
		n.mu.Lock()
		var whole []byte
		for i := 1; i <= c.count; i++ {
			whole = append(whole, c.chunks[i]...)
		}
		ok := sha(whole) == c.checksum
		c.payloads = append(c.payloads, whole)
		n.mu.Unlock()
		code := 0
		if !ok {
			code = 3
		}
		n.toServer("report", map[string]any{"vin": vin, "update_report": map[string]any{"update_id": m.UpdateID,
			"operation_results": []map[string]any{{"id": m.UpdateID, "result_code": code, "result_text": "rvi"}}}})
	case "getpackages":
		n.toServer("packages", map[string]any{"vin": vin, "installed_software": map[string]any{
			"packages": []map[string]any{{"package_id": map[string]string{"name": "radio", "version": "1.0.0"}}}}})
	case "abort":
		n.mu.Lock()
		c.aborted = true
		n.mu.Unlock()
	}
}

// rviEnv is the real server with the RVI transport pointed at the node stand-in; its wake-ups go to
// /rvi/wakeup as sotad wires them.
func newRVIEnv(t *testing.T, node *rviNode) *deviceEnv {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	self := "http://" + ln.Addr().String()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	res, err := resolver.New(db)
	require.NoError(t, err)
	eng, err := engine.New(db, res, engine.Options{DataDir: dir, WakeupURL: self + "/rvi/wakeup"})
	require.NoError(t, err)
	h, apiSrv := newServer(t, Config{AuthNone: true, ChunkSize: 512, RVI: RVIConfig{NodeURL: node.srv.URL, SelfURL: self,
		AckTimeout: 150 * time.Millisecond, Resends: 2}},
		Deps{Auth: auth.New(db), Resolver: res, Filters: res, Engine: eng, Policy: policy.NewService(db)})
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	e := &deviceEnv{t: t, dir: dir, chunk: 512, db: db, eng: eng, res: res, srv: srv}
	t.Cleanup(e.close)
	t.Cleanup(apiSrv.Close) // the resends end before the store closes
	return e
}

// WL-28 to WL-50 over RVI: notify, start, chunks (a lost ack makes the server send the chunk again),
// finish, report; then the next update is notified; get-all-packages; a vehicle that never acks gets
// abort after the resends. The same persisted sessions serve the device API.
func TestRVITransport(t *testing.T) {
	node := newRVINode(t)
	e := newRVIEnv(t, node)
	maps, nav, radio := payloadBytes(1, 700), payloadBytes(2, 1500), payloadBytes(3, 100)
	e.deviceFleet(maps, nav, radio)
	require.Eventually(t, func() bool {
		node.mu.Lock()
		defer node.mu.Unlock()
		return len(node.services) == 4
	}, 5*time.Second, 10*time.Millisecond, "the server registers its services")
	node.mu.Lock()
	assert.Equal(t, e.srv.URL+"/rvi/ack", node.services["/sota/ack"])
	node.mu.Unlock()

	car := node.car(vinA)
	car.dropAck = 2
	mute := node.car(vinB)
	mute.mute = true
	navReq := e.queue("nav", "2.0.0", 1)
	radioReq := e.queue("radio", "1.0.0", 5)

	var woken struct{ Woken int }
	e.want(200, "", "POST", "/update_requests/xmit", "", nil, &woken)
	assert.Equal(t, 2, woken.Woken)

	finished := func(req string, n int) func() bool {
		return func() bool {
			r, err := e.eng.Request(req)
			return err == nil && r.Counts.Finished == n
		}
	}
	require.Eventually(t, finished(navReq, 1), 10*time.Second, 20*time.Millisecond, "nav installed over RVI")
	require.Eventually(t, finished(radioReq, 1), 10*time.Second, 20*time.Millisecond, "then radio, notified after the report")
	require.Eventually(t, func() bool { node.mu.Lock(); defer node.mu.Unlock(); return mute.aborted }, 10*time.Second, 20*time.Millisecond)

	node.mu.Lock()
	require.Len(t, car.payloads, 2)
	assert.Equal(t, append(append([]byte{}, maps...), nav...), car.payloads[0])
	assert.Equal(t, radio, car.payloads[1])
	assert.Equal(t, 2, car.received[2], "chunk 2 was sent again after its ack was lost")
	assert.Equal(t, []string{"notify", "start", "chunk", "chunk", "chunk", "chunk", "chunk", "chunk", "finish", "notify", "start", "chunk", "finish"}, car.log)
	assert.Equal(t, []string{"notify", "start", "chunk", "chunk", "chunk", "abort"}, mute.log, "the first chunk, two resends, then abort")
	node.mu.Unlock()

	var installed []resolver.PackageID
	e.want(200, "", "GET", "/vehicles/"+vinA+"/package", "", nil, &installed)
	assert.ElementsMatch(t, []resolver.PackageID{{Name: "maps", Version: "1.0.0"}, {Name: "nav", Version: "2.0.0"}, {Name: "radio", Version: "1.0.0"}}, installed)
	var hist []struct {
		Status     string
		ResultText string
	}
	e.want(200, "", "GET", "/vehicles/"+vinA+"/history", "", nil, &hist)
	require.Len(t, hist, 2)
	assert.Equal(t, "finished", hist[0].Status)
	assert.Equal(t, "OK: rvi", hist[0].ResultText)

	// the muted vehicle's session is persisted; it can continue over the device API
	q, err := e.eng.Queue(vinB)
	require.NoError(t, err)
	st, err := e.eng.TransferStatus(vinB, q[0].ID)
	require.NoError(t, err)
	assert.Equal(t, 0, st.Acked)
	assert.Equal(t, 3, st.Served)
	tok := e.token(vinB)
	var c chunkBody
	e.want(200, "", "GET", "/vehicle_updates/"+vinB+"/"+q[0].ID+"/chunk", tok, nil, &c)
	assert.Equal(t, 1, c.Index)

	// get-all-packages over RVI: a signed wake-up makes the server send getpackages; the vehicle answers
	var gap struct{ ID string }
	e.want(200, "", "POST", "/vehicles/"+vinA+"/get_all_packages", "", nil, &gap)
	wk, _ := json.Marshal(e.eng.SignWakeup(vinA))
	resp, err := http.Post(e.srv.URL+"/rvi/wakeup", "application/json", bytes.NewReader(wk))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
	require.Eventually(t, finished(gap.ID, 1), 10*time.Second, 20*time.Millisecond, "get-all-packages answered")
	e.want(200, "", "GET", "/vehicles/"+vinA+"/package", "", nil, &installed)
	assert.Equal(t, []resolver.PackageID{{Name: "radio", Version: "1.0.0"}}, installed)
	node.mu.Lock()
	assert.Equal(t, "getpackages", car.log[len(car.log)-1])
	node.mu.Unlock()
}

func TestRVIJSONRPCErrors(t *testing.T) {
	node := newRVINode(t)
	e := newRVIEnv(t, node)
	post := func(path, body string) map[string]any {
		resp, err := http.Post(e.srv.URL+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out), "%s", b)
		return out
	}
	code := func(out map[string]any) float64 {
		e, _ := out["error"].(map[string]any)
		if e == nil {
			return 0
		}
		return e["code"].(float64)
	}
	assert.EqualValues(t, -32700, code(post("/rvi/start", "{not json")))
	assert.EqualValues(t, -32600, code(post("/rvi/start", `{"method":"message"}`)))
	assert.EqualValues(t, -32601, code(post("/rvi/start", `{"jsonrpc":"2.0","id":1,"method":"frobnicate"}`)))
	assert.EqualValues(t, -32601, code(post("/rvi/bogus", `{"jsonrpc":"2.0","id":1,"method":"message","params":{"parameters":[{}]}}`)))
	assert.EqualValues(t, -32602, code(post("/rvi/start", `{"jsonrpc":"2.0","id":1,"method":"message","params":{"parameters":[]}}`)))
	assert.EqualValues(t, -32602, code(post("/rvi/start", `{"jsonrpc":"2.0","id":1,"method":"message","params":{"parameters":[{"vin":"BAD","update_id":"x"}]}}`)))
	e.admin("PUT", "/vehicles/"+vinA, nil)
	out := post("/rvi/ack", `{"jsonrpc":"2.0","id":7,"method":"message","params":{"parameters":[{"vin":"`+vinA+`","update_id":"00000000-0000-4000-8000-000000000000","chunks":[1]}]}}`)
	assert.EqualValues(t, -32602, code(out))
	assert.EqualValues(t, 7, out["id"])
	// a wake-up not signed by the server is refused
	resp, err := http.Post(e.srv.URL+"/rvi/wakeup", "application/json", strings.NewReader(`{"vin":"`+vinA+`","nonce":"1","issuedAt":"x","signature":"AAAA"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 403, resp.StatusCode)
}
