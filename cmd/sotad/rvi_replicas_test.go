package main

// An RVI transfer across replicas: three sotad processes on one PostgreSQL schema with the RVI
// transport pointed at a stand-in RVI node (a boundary we do not own). Every replica registers its
// services at the load balancer's URL (--rvi-advertise-url), and the balancer sends the vehicle's
// messages to B until B dies, then to C. The vehicle's ack of one chunk is lost and B is killed with
// SIGKILL at that moment, so the only thing that can move the transfer on is the resend B was waiting
// to send: the wait is in the store, and whichever replica holds the job/resends lease sends the chunk
// again after --rvi-ack-timeout. Skipped with a message without a PostgreSQL server (SOTA_REQUIRE_POSTGRES=1 makes
// that a failure).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
)

// rviCarNode is an RVI node with one vehicle behind it: it answers the replicas' register_service and
// message calls, delivers chunk, start and finish to the vehicle, and sends the vehicle's start, acks
// and report to the address registered for the service, again while it answers 502 (a balancer whose
// backend just died).
type rviCarNode struct {
	t      *testing.T
	srv    *httptest.Server
	vin    string
	token  string
	onLost func() // runs when the ack of chunk lose is dropped
	lose   int

	mu       sync.Mutex
	checksum string
	count    int
	chunks   map[int][]byte
	sends    map[int][]time.Time // chunk index -> when it arrived
	log      []string
	reported string // the server's answer to the report
	dropped  bool
	services map[string][]string // "/sota/ack" -> the network addresses registered for it
}

func newRVICarNode(t *testing.T, vin, token string) *rviCarNode {
	n := &rviCarNode{t: t, vin: vin, token: token, chunks: map[int][]byte{}, sends: map[int][]time.Time{}, services: map[string][]string{}}
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *rviCarNode) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			ServiceName    string            `json:"service_name"`
			Parameters     []json.RawMessage `json:"parameters"`
			Service        string            `json:"service"`
			NetworkAddress string            `json:"network_address"`
		} `json:"params"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		n.t.Errorf("RVI node: %v: %s", err, body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": "ok"})
	if req.Method == "register_service" {
		n.mu.Lock()
		n.services[req.Params.Service] = append(n.services[req.Params.Service], req.Params.NetworkAddress)
		n.mu.Unlock()
		return
	}
	if req.Method != "message" || len(req.Params.Parameters) != 1 {
		n.t.Errorf("RVI node: unexpected call %s", body)
		return
	}
	kind := req.Params.ServiceName[len("genivi.org/vin/"+n.vin+"/sota/"):]
	raw := req.Params.Parameters[0]
	n.mu.Lock()
	n.log = append(n.log, kind)
	n.mu.Unlock()
	switch kind {
	case "start":
		var m struct {
			Checksum    string `json:"checksum"`
			ChunksCount int    `json:"chunkscount"`
		}
		json.Unmarshal(raw, &m)
		n.mu.Lock()
		n.checksum, n.count = m.Checksum, m.ChunksCount
		n.mu.Unlock()
	case "chunk":
		var m struct {
			UpdateID string `json:"update_id"`
			Bytes    []byte `json:"bytes"`
			Index    int    `json:"index"`
		}
		json.Unmarshal(raw, &m)
		n.mu.Lock()
		n.chunks[m.Index] = m.Bytes
		n.sends[m.Index] = append(n.sends[m.Index], time.Now())
		drop := m.Index == n.lose && !n.dropped
		if drop {
			n.dropped = true
		}
		var got []int
		for i := range n.chunks {
			got = append(got, i)
		}
		n.mu.Unlock()
		if drop {
			go n.onLost() // the ack is lost, and the replica that sent the chunk dies
			return
		}
		go n.toServer("ack", map[string]any{"vin": n.vin, "update_id": m.UpdateID, "chunks": got})
	case "finish":
		var m struct {
			UpdateID string `json:"update_id"`
		}
		json.Unmarshal(raw, &m)
		n.mu.Lock()
		var whole []byte
		for i := 1; i <= n.count; i++ {
			whole = append(whole, n.chunks[i]...)
		}
		sum := sha256.Sum256(whole)
		code := 0
		if hex.EncodeToString(sum[:]) != n.checksum {
			code = 3
		}
		n.mu.Unlock()
		go func() {
			out := n.toServer("report", map[string]any{"vin": n.vin, "update_report": map[string]any{"update_id": m.UpdateID,
				"operation_results": []map[string]any{{"id": m.UpdateID, "result_code": code, "result_text": "rvi"}}}})
			n.mu.Lock()
			n.reported = out
			n.mu.Unlock()
		}()
	}
}

// toServer sends a vehicle message to the address registered for the service (the last one), and
// returns the JSON-RPC answer.
func (n *rviCarNode) toServer(service string, payload any) string {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "message",
		"params": map[string]any{"service_name": "genivi.org/backend/sota/" + service, "timeout": time.Now().Unix() + 60, "parameters": []any{payload}}})
	n.mu.Lock()
	addrs := n.services["/sota/"+service]
	n.mu.Unlock()
	if len(addrs) == 0 {
		return "not registered"
	}
	for attempt := 0; attempt < 20; attempt++ {
		req, _ := http.NewRequest("POST", addrs[len(addrs)-1], bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+n.token)
		resp, err := client.Do(req)
		if err != nil {
			return err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway {
			return string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "no replica answered"
}

func TestRVIResendOfAKilledReplicaIsSentByAnother(t *testing.T) {
	spec := storetest.SpecKind(t, "postgres", t.TempDir()) // skips without a server
	bin := buildSotad(t)
	const vin, token = "WDDRV1REPL0000001", "rvi-node-token"
	const ackTimeout = 2 * time.Second
	node := newRVICarNode(t, vin, token)
	procs := map[string]*sotadProc{}
	urls := map[string]string{}
	lb := newBalancer(t, "", []string{"B", "C"}, urls) // its backends are known once they started
	for _, n := range []string{"A", "B", "C"} {
		p := startSotadOn(t, bin, t.TempDir(), spec, "postgres", "--blob-store", "db", "--chunk-size", "512",
			"--rvi-url", node.srv.URL, "--rvi-token", token, "--rvi-ack-timeout", ackTimeout.String(), "--rvi-advertise-url", lb.srv.URL)
		t.Cleanup(p.kill)
		lb.mu.Lock()
		procs[n], urls[n] = p, p.url
		lb.mu.Unlock()
	}
	a := urls["A"] + "/api/v1"
	require.Eventually(t, func() bool {
		node.mu.Lock()
		defer node.mu.Unlock()
		return len(node.services["/sota/packages"]) == 3
	}, 10*time.Second, 10*time.Millisecond, "every replica registers its services")
	node.mu.Lock()
	for _, s := range []string{"start", "ack", "report", "packages"} {
		want := lb.srv.URL + "/rvi/" + s
		assert.Equal(t, []string{want, want, want}, node.services["/sota/"+s], "the replicas register the balancer's address")
	}
	node.mu.Unlock()

	content := make([]byte, 10*512+100) // 11 chunks
	rand.New(rand.NewSource(41)).Read(content)
	putBinary(t, a, "nav", "1.0.0", content)
	must(t, 204, "PUT", a+"/vehicles/"+vin, nil)
	must(t, 200, "POST", a+"/filters", map[string]string{"name": "everyone", "expression": "TRUE"})
	must(t, 200, "PUT", a+"/packages/nav/1.0.0/filter/everyone", nil)
	var req struct{ ID string }
	require.NoError(t, json.Unmarshal(must(t, 200, "POST", a+"/update_requests", map[string]any{"packageId": map[string]string{"name": "nav", "version": "1.0.0"}}), &req))
	var hist []struct{ UpdateID, Status string }
	require.NoError(t, json.Unmarshal(must(t, 200, "GET", a+"/vehicles/"+vin+"/history", nil), &hist))
	require.Len(t, hist, 1)

	const lose = 5
	var killedAt time.Time
	killed := make(chan struct{})
	node.lose = lose
	node.onLost = func() {
		procs["B"].kill()
		killedAt = time.Now()
		close(killed)
	}
	for _, n := range []string{"B", "C"} { // the vehicle reaches B's and C's fleet index
		require.Eventually(t, func() bool {
			res, err := client.Get(urls[n] + "/api/v1/vehicles?regex=^" + vin)
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.Header.Get("X-Total-Count") == "1"
		}, 5*time.Second, 10*time.Millisecond, "%s lists the vehicle", n)
	}
	started := node.toServer("start", map[string]any{"vin": vin, "update_id": hist[0].UpdateID, "services": map[string]string{}})
	require.Contains(t, started, `"result":"ok"`)
	require.Equal(t, "B", lb.exchanges()[0].backend, "the vehicle starts the transfer on B")

	select {
	case <-killed:
	case <-time.After(30 * time.Second):
		t.Fatal("the ack of chunk 5 was never due to be lost")
	}
	var st struct{ Counts struct{ Finished int } }
	require.Eventually(t, func() bool {
		json.Unmarshal(must(t, 200, "GET", a+"/update_requests/"+req.ID, nil), &st)
		return st.Counts.Finished == 1
	}, 30*time.Second, 20*time.Millisecond, "the update finishes after B died")

	node.mu.Lock()
	defer node.mu.Unlock()
	var whole []byte
	for i := 1; i <= node.count; i++ {
		whole = append(whole, node.chunks[i]...)
	}
	assert.Equal(t, 11, node.count)
	assert.Equal(t, sha256.Sum256(content), sha256.Sum256(whole), "the vehicle holds the uploaded bytes")
	for i := 1; i <= node.count; i++ {
		want := 1
		if i == lose {
			want = 2 // sent by B, its ack lost, sent again by the holder of job/resends
		}
		assert.Len(t, node.sends[i], want, "deliveries of chunk %d", i)
	}
	require.Len(t, node.sends[lose], 2)
	gap := node.sends[lose][1].Sub(node.sends[lose][0])
	assert.GreaterOrEqual(t, gap, ackTimeout, "chunk %d is resent once its ack is overdue", lose)
	assert.Contains(t, node.reported, `"result":"ok"`, "the report is accepted")
	log := lb.exchanges()
	last := log[len(log)-1]
	assert.Equal(t, "/rvi/report", last.path)
	assert.Equal(t, "C", last.backend, "by C")
	t.Logf("chunk %d resent %v after its first send (B killed %v after it); messages: %v", lose, gap.Round(time.Millisecond),
		killedAt.Sub(node.sends[lose][0]).Round(time.Millisecond), node.log)
}
