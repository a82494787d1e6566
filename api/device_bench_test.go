package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"sota/auth"
	"sota/engine"
	"sota/internal/budget"
	"sota/internal/loadgen"
	"sota/internal/storetest"
	"sota/policy"
	"sota/resolver"
	"sota/store"
)

// benchServer is the real server on loopback over a real store in a temporary directory.
type benchServer struct {
	b   *testing.B
	eng *engine.Service
	srv *httptest.Server
	dir string
	url string // the store's URL on PostgreSQL ("badger" on Badger)
}

func newBenchServer(b *testing.B) *benchServer { return newBenchServerWith(b, Config{AuthNone: true}) }

func newBenchServerWith(b *testing.B, cfg Config) *benchServer {
	return newBenchServerKind(b, cfg, storetest.Kind())
}

// newBenchServerKind is the server on the given kind of store ("badger" or "postgres").
func newBenchServerKind(b *testing.B, cfg Config, kind string) *benchServer {
	return newBenchServerBlobs(b, cfg, kind, "local")
}

// newBenchServerBlobs is newBenchServerKind with package binaries in the given blob store (local, db).
func newBenchServerBlobs(b *testing.B, cfg Config, kind, blobs string) *benchServer {
	dir := b.TempDir()
	db, err := storetest.OpenDirKind(b, kind, dir+"/db")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	res, err := resolver.New(db)
	if err != nil {
		b.Fatal(err)
	}
	o := engine.Options{DataDir: dir}
	if blobs == "db" {
		o.Blobs = store.NewDBBlobs(db)
	}
	eng, err := engine.New(db, res, o)
	if err != nil {
		b.Fatal(err)
	}
	h, _ := newServer(b, cfg, Deps{Auth: auth.New(db), Resolver: res, Filters: res, Engine: eng, Policy: policy.NewService(db)})
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return &benchServer{b: b, eng: eng, srv: srv, dir: dir, url: storetest.SpecKind(b, kind, dir+"/db")}
}

func (s *benchServer) do(method, path string, body any, out any) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, s.srv.URL+"/api/v1"+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.b.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		s.b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.b.Fatal(err)
		}
	}
}

func (s *benchServer) upload(name, version string, content []byte) {
	body, ct := multipartBody(&testing.T{}, "file", content)
	req, _ := http.NewRequest("PUT", s.srv.URL+"/api/v1/packages/"+name+"/"+version, body)
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		s.b.Fatalf("upload: %v %v", err, resp)
	}
	resp.Body.Close()
}

// load runs clients concurrent keep-alive connections against addr for d, each sending the raw
// HTTP/1.1 requests req(n) one after the other (internal/loadgen), and returns the requests per
// second and the 99th-percentile latency.
func load(b *testing.B, addr string, clients int, d time.Duration, req func(n int) []byte) (float64, time.Duration) {
	r, err := loadgen.Run([]string{addr}, clients, d, func(_ string, n int) []byte { return req(n) })
	if err != nil {
		b.Fatal(err)
	}
	return r.PerSecond, r.P99
}

// BenchmarkDevicePoll: GET /vehicle_updates/:vin (token check, lastSeen, queue in delivery order) by 32
// concurrent keep-alive clients over 1,000 vehicles with two queued updates each, on Badger and, with
// SOTA_TEST_PG_URL set, on PostgreSQL (storetest.BenchKinds). Budget on either: ≥ 10,000 req/s, p99
// ≤ 20 ms. Baselines in the same run: on Badger, GET /healthz of the same server; on PostgreSQL, the
// poll's own read done raw (the vehicle's rows of the updates table, one pgx point query at a time)
// by 32 goroutines over a pool as large as the store's, for the same vehicles.
func BenchmarkDevicePoll(b *testing.B) { storetest.BenchKinds(b, benchDevicePoll) }

func benchDevicePoll(b *testing.B, kind string) {
	const clients = 32
	s := newBenchServerKind(b, Config{AuthNone: true}, kind)
	addr := s.srv.Listener.Addr().String()
	poll, vins := preparePollsVINs(s, 1000)
	healthz := []byte("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	health := func(int) []byte { return healthz }
	b.ResetTimer()
	var rps, base, raw float64
	var p99, baseP99, rawP99 time.Duration
	for i := 0; i < b.N; i++ {
		base, baseP99 = load(b, addr, clients, 2*time.Second, health)
		if kind == "postgres" {
			raw, rawP99 = rawPointQueries(b, s.url, vins, clients, 2*time.Second)
		}
		rps, p99 = load(b, addr, clients, 4*time.Second, poll)
	}
	b.StopTimer()
	b.Logf("%s: device poll %.0f req/s p99 %v; /healthz %.0f req/s p99 %v", kind, rps, p99, base, baseP99)
	name, baseline, ratio, ratioP99 := "device poll GET /vehicle_updates/:vin, 32 keep-alive clients, loopback", "GET /healthz on the same server", rps/base, float64(baseP99)/float64(p99)
	if kind == "postgres" {
		b.Logf("raw pgx point queries of the vehicles' updates: %.0f queries/s p99 %v", raw, rawP99)
		name = "device poll GET /vehicle_updates/:vin with the PostgreSQL store, 32 keep-alive clients, loopback"
		baseline, ratio, ratioP99 = "raw pgx point queries of the vehicle's updates, 32 goroutines", rps/raw, float64(rawP99)/float64(p99)
	}
	budget.Report(b, budget.Line{Name: name + " (req/s)",
		Figure: rps, Unit: "req/s", Budget: 10000, AtLeast: true, Ratio: ratio, Baseline: baseline})
	budget.Report(b, budget.Line{Name: strings.Replace(name, ", 32 keep-alive clients, loopback", "", 1) + ", p99 latency",
		Figure: float64(p99) / float64(time.Millisecond), Unit: "ms", Budget: 20,
		Ratio: ratioP99, Baseline: baseline + " (p99)"})
}

// rawPointQueries runs the device poll's read raw on PostgreSQL for d: goroutines loops, each
// selecting the rows of the updates table of one vehicle after the other (vins in turn) over one pool
// of the store's size, and returns the queries per second and the 99th-percentile latency.
func rawPointQueries(b *testing.B, url string, vins []string, goroutines int, d time.Duration) (float64, time.Duration) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 16 // the store's pool (store.pgDefaultConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var seq atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				vin := vins[int(seq.Add(1))%len(vins)]
				t0 := time.Now()
				rows, err := pool.Query(ctx, "SELECT update_id, record FROM updates WHERE vin = $1 ORDER BY update_id", []byte(vin))
				if err != nil {
					b.Error(err)
					return
				}
				n := 0
				for rows.Next() {
					n++
				}
				rows.Close()
				if rows.Err() != nil || n != 2 {
					b.Errorf("vehicle %s: %d updates, %v", vin, n, rows.Err())
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if len(lat) == 0 {
		b.Fatal("no query completed")
	}
	slices.Sort(lat)
	return float64(len(lat)) / el.Seconds(), lat[len(lat)*99/100]
}

// BenchmarkDevicePollMetricsAudit: the device poll of BenchmarkDevicePoll on a server with metrics and
// the audit log (the default) against the same on a server without them, in the same run: four rounds
// of 2 s each side, the side that goes first alternating, best of each; the budget is at least 90 % of
// the throughput without.
func BenchmarkDevicePollMetricsAudit(b *testing.B) {
	const clients = 32
	on := newBenchServerWith(b, Config{AuthNone: true})
	off := newBenchServerWith(b, Config{AuthNone: true, noMetrics: true, noAudit: true})
	onPoll, offPoll := preparePolls(on, 1000), preparePolls(off, 1000)
	onAddr, offAddr := on.srv.Listener.Addr().String(), off.srv.Listener.Addr().String()
	b.ResetTimer()
	var bestOn, bestOff float64
	var p99On, p99Off time.Duration
	for i := 0; i < b.N; i++ {
		for r := 0; r < 4; r++ { // the order alternates, so that neither side always goes first
			runOff := func() {
				if rps, p99 := load(b, offAddr, clients, 2*time.Second, offPoll); rps > bestOff {
					bestOff, p99Off = rps, p99
				}
			}
			runOn := func() {
				if rps, p99 := load(b, onAddr, clients, 2*time.Second, onPoll); rps > bestOn {
					bestOn, p99On = rps, p99
				}
			}
			if r%2 == 0 {
				runOff()
				runOn()
			} else {
				runOn()
				runOff()
			}
		}
	}
	b.StopTimer()
	b.Logf("device poll with metrics and audit %.0f req/s p99 %v; without %.0f req/s p99 %v", bestOn, p99On, bestOff, p99Off)
	budget.Report(b, budget.Line{Name: "device poll with metrics and audit log on, relative to off (same run)",
		Figure: bestOn / bestOff, Unit: "x", Budget: 0.9, AtLeast: true, Ratio: bestOn / bestOff,
		Baseline: fmt.Sprintf("the same server without them: %.0f vs %.0f req/s", bestOn, bestOff)})
}

// preparePolls registers vehicles with two queued updates each and device tokens on s, polls each
// once (lastSeen is fresh, as in a running fleet), and returns the raw poll request of the n-th call.
func preparePolls(s *benchServer, vehicles int) func(n int) []byte {
	poll, _ := preparePollsVINs(s, vehicles)
	return poll
}

// preparePollsVINs is preparePolls, also returning the VINs.
func preparePollsVINs(s *benchServer, vehicles int) (func(n int) []byte, []string) {
	b := s.b
	s.do("POST", "/filters", map[string]any{"name": "all", "expression": "TRUE"}, nil)
	for _, p := range []string{"nav", "radio"} {
		s.upload(p, "1.0.0", []byte(p)) // queuing needs the binary
		s.do("PUT", "/packages/"+p+"/1.0.0/filter/all", nil, nil)
	}
	vins := make([]string, vehicles)
	tokens := make([]string, vehicles)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDD%014d", i)
		s.do("PUT", "/vehicles/"+vins[i], nil, nil)
		var t struct{ Token string }
		s.do("POST", "/vehicles/"+vins[i]+"/token", nil, &t)
		tokens[i] = t.Token
	}
	for _, p := range []string{"nav", "radio"} {
		s.do("POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": p, "version": "1.0.0"}}, nil)
	}
	for i := range vins { // every vehicle has polled once: lastSeen is fresh, as in a running fleet
		req, _ := http.NewRequest("GET", s.srv.URL+"/api/v1/vehicle_updates/"+vins[i], nil)
		req.Header.Set("Authorization", "Bearer "+tokens[i])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var rows []engine.PollRow
		json.NewDecoder(resp.Body).Decode(&rows)
		resp.Body.Close()
		if len(rows) != 2 {
			b.Fatalf("vehicle %s has %d updates, want 2", vins[i], len(rows))
		}
	}
	addr := s.srv.Listener.Addr().String()
	polls := make([][]byte, vehicles)
	for i := range polls {
		polls[i] = []byte("GET /api/v1/vehicle_updates/" + vins[i] + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + tokens[i] + "\r\n\r\n")
	}
	return func(n int) []byte { return polls[n%vehicles] }, vins
}

// BenchmarkRangeDownload: GET /vehicle_updates/:vin/:updateId/download of a 64 MiB payload in 8 MiB
// Range requests on loopback, against io.Copy of the same bytes as a file from local disk, with the
// binaries in files (local) and in the store (db: 256 KiB chunks), on Badger and, with
// SOTA_TEST_PG_URL set, in PostgreSQL (storetest.BenchKinds).
func BenchmarkRangeDownload(b *testing.B) {
	storetest.BenchKinds(b, func(b *testing.B, kind string) {
		blobs := []string{"local", "db"}
		if kind == "postgres" {
			blobs = []string{"db"} // the default there; local files are the Badger rows' case
		}
		for _, bl := range blobs {
			b.Run(bl, func(b *testing.B) { benchRangeDownload(b, kind, bl) })
		}
	})
}

func benchRangeDownload(b *testing.B, kind, blobs string) {
	const size, piece = 64 << 20, 8 << 20
	s := newBenchServerBlobs(b, Config{AuthNone: true}, kind, blobs)
	content := payloadBytes(7, size)
	s.upload("big", "1.0.0", content)
	s.do("POST", "/filters", map[string]any{"name": "all", "expression": "TRUE"}, nil)
	s.do("PUT", "/packages/big/1.0.0/filter/all", nil, nil)
	vin := "WDD00000000000001"
	s.do("PUT", "/vehicles/"+vin, nil, nil)
	var t struct{ Token string }
	s.do("POST", "/vehicles/"+vin+"/token", nil, &t)
	s.do("POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": "big", "version": "1.0.0"}}, nil)
	q, err := s.eng.Queue(vin)
	if err != nil || len(q) != 1 {
		b.Fatalf("queue: %v %v", q, err)
	}
	id := q[0].ID
	req, _ := http.NewRequest("POST", s.srv.URL+"/api/v1/vehicle_updates/"+vin+"/"+id+"/start", nil)
	req.Header.Set("Authorization", "Bearer "+t.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("start: %v %v", err, resp)
	}
	resp.Body.Close()
	blob := s.dir + "/baseline.bin" // the baseline reads the bytes from a file, whatever the blob store
	if err := os.WriteFile(blob, content, 0o600); err != nil {
		b.Fatal(err)
	}

	hc := &http.Client{Transport: &http.Transport{}}
	download := func() time.Duration {
		t0 := time.Now()
		for off := 0; off < size; off += piece {
			req, _ := http.NewRequest("GET", s.srv.URL+"/api/v1/vehicle_updates/"+vin+"/"+id+"/download", nil)
			req.Header.Set("Authorization", "Bearer "+t.Token)
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+piece-1))
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 206 || n != piece {
				b.Fatalf("range %d: %d, %d bytes", off, resp.StatusCode, n)
			}
		}
		return time.Since(t0)
	}
	copyFile := func() time.Duration {
		t0 := time.Now()
		f, err := os.Open(blob)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, f)
		f.Close()
		if n != size {
			b.Fatalf("blob has %d bytes", n)
		}
		return time.Since(t0)
	}
	download() // warm the page cache
	b.ResetTimer()
	var best, bestBase time.Duration
	for i := 0; i < b.N; i++ {
		for r := 0; r < 3; r++ {
			if d := download(); best == 0 || d < best {
				best = d
			}
			if d := copyFile(); bestBase == 0 || d < bestBase {
				bestBase = d
			}
		}
	}
	b.StopTimer()
	mbs := float64(size) / (1 << 20) / best.Seconds()
	name, baseline := "device Range download of a 64 MiB payload in 8 MiB ranges, loopback", "io.Copy of the same blob file from local disk"
	if blobs == "db" {
		name += ", binaries in the store (--blob-store db, " + map[string]string{"badger": "Badger", "postgres": "PostgreSQL"}[kind] + ")"
		baseline = "io.Copy of the same bytes as a file from local disk"
	}
	budget.Report(b, budget.Line{Name: name,
		Figure: mbs, Unit: "MB/s", Budget: 200, AtLeast: true, Ratio: bestBase.Seconds() / best.Seconds(),
		Baseline: baseline})
}
