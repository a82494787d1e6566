package api

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"sota/internal/budget"
	"sota/internal/storetest"
)

// BenchmarkDDIPoll: the hawkBit DDI base poll GET /:tenant/controller/v1/:vin (TargetToken check,
// lastSeen, the next update in delivery order with its action id, whether the device reported its
// configuration) by 32 concurrent keep-alive clients over 1,000 vehicles with a queued update each,
// against GET /healthz of the same server as the baseline, on Badger and, with SOTA_TEST_PG_URL set,
// on PostgreSQL (storetest.BenchKinds). Budget on either: ≥ 10,000 req/s, p99 ≤ 20 ms.
func BenchmarkDDIPoll(b *testing.B) { storetest.BenchKinds(b, benchDDIPoll) }

func benchDDIPoll(b *testing.B, kind string) {
	const vehicles, clients = 1000, 32
	s := newBenchServerKind(b, Config{AuthNone: true}, kind)
	s.do("POST", "/filters", map[string]any{"name": "all", "expression": "TRUE"}, nil)
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	f, _ := w.CreateFormFile("file", "rootfs-1.0.0.swu")
	f.Write(bytes.Repeat([]byte("swu"), 1000))
	w.Close()
	req, _ := http.NewRequest("PUT", s.srv.URL+"/api/v1/packages/rootfs/1.0.0", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		b.Fatalf("upload: %v %v", err, resp)
	}
	s.do("PUT", "/packages/rootfs/1.0.0/filter/all", nil, nil)
	vins := make([]string, vehicles)
	tokens := make([]string, vehicles)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDD%014d", i)
		s.do("PUT", "/vehicles/"+vins[i], nil, nil)
		var t struct{ Token string }
		s.do("POST", "/vehicles/"+vins[i]+"/token", nil, &t)
		tokens[i] = t.Token
	}
	s.do("POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": "rootfs", "version": "1.0.0"}}, nil)
	for i := range vins { // every vehicle has polled once (lastSeen fresh, action id assigned), as in a running fleet
		req, _ := http.NewRequest("GET", s.srv.URL+"/DEFAULT/controller/v1/"+vins[i], nil)
		req.Header.Set("Authorization", "TargetToken "+tokens[i])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(got), `"deploymentBase"`) {
			b.Fatalf("vehicle %s: %d %s, want a deploymentBase link", vins[i], resp.StatusCode, got)
		}
	}
	addr := s.srv.Listener.Addr().String()
	polls := make([][]byte, vehicles)
	for i := range polls {
		polls[i] = []byte("GET /DEFAULT/controller/v1/" + vins[i] + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: TargetToken " + tokens[i] + "\r\n\r\n")
	}
	healthz := []byte("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	poll := func(n int) []byte { return polls[n%vehicles] }
	health := func(int) []byte { return healthz }
	b.ResetTimer()
	var rps, base float64
	var p99, baseP99 time.Duration
	for i := 0; i < b.N; i++ {
		base, baseP99 = load(b, addr, clients, 2*time.Second, health)
		rps, p99 = load(b, addr, clients, 4*time.Second, poll)
	}
	b.StopTimer()
	b.Logf("%s: DDI poll %.0f req/s p99 %v; /healthz %.0f req/s p99 %v", kind, rps, p99, base, baseP99)
	name := "DDI poll GET /:tenant/controller/v1/:vin"
	if kind == "postgres" {
		name += " with the PostgreSQL store"
	}
	budget.Report(b, budget.Line{Name: name + ", 32 keep-alive clients, loopback (req/s)",
		Figure: rps, Unit: "req/s", Budget: 10000, AtLeast: true, Ratio: rps / base, Baseline: "GET /healthz on the same server"})
	budget.Report(b, budget.Line{Name: name + ", p99 latency",
		Figure: float64(p99) / float64(time.Millisecond), Unit: "ms", Budget: 20,
		Ratio: float64(baseP99) / float64(p99), Baseline: "GET /healthz p99 on the same server"})
}
