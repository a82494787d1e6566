package load_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"sota/internal/budget"
	"sota/internal/sotadtest"
	"sota/internal/storetest"
)

// BenchmarkReplicaStart1M: a replica's restart on PostgreSQL as a deployment has it. The fleet of
// BenchmarkRestart1M (1,000,000 vehicles with 5 components and 20 packages each and a last contact
// each) is imported into a PostgreSQL schema; replica A, a real sotad process, starts on it and then
// takes a write (a new vehicle) every 20 ms; replica B, another sotad process with a data directory
// of its own, starts on the same store while A writes. Measured: from B's exec until it answers GET
// /vehicles with the whole fleet (X-Total-Count ≥ 1,000,000). B must then also count every contact
// (a dry run of seen_within "60d" matches 1,000,000) and show each vehicle A acknowledged within 1 s.
// Budget ≤ 30 s. Baseline in the same run: a raw SELECT streaming the same vehicle rows. Also
// reported: the memory of a replica holding 1M vehicles (B's RSS after it answered, its peak, its live
// heap at the last garbage collection of the start from GODEBUG=gctrace=1, and the Go heap in use
// from /metrics), the figures docs/scale-out.md plans with. PostgreSQL only: skipped without
// SOTA_TEST_PG_URL (SOTA_REQUIRE_POSTGRES=1 makes a missing server a failure).
func BenchmarkReplicaStart1M(b *testing.B) {
	if os.Getenv("SOTA_TEST_PG_URL") == "" && os.Getenv("SOTA_REQUIRE_POSTGRES") != "1" {
		b.Skip("PostgreSQL only: set SOTA_TEST_PG_URL to a server's URL (e.g. " + storetest.DefaultPGURL + ") to measure it")
	}
	importFleetKind(b, "postgres")
	url := pgImported.data
	bin := sotadtest.Build(b)
	raw1 := rawSelect(b, url)
	load := loadAverage()

	env := []string{"GODEBUG=gctrace=1"}
	a := sotadtest.Start(b, bin, env, "--data", b.TempDir(), "--store", url, "--auth", "none")
	aTotal := waitForFleet(b, a.URL, benchVehicles, 2*time.Minute)
	aCPU, _ := a.CPU()
	b.Logf("replica A answered with the whole fleet %.1f s after it listened (listening %.1f s after its exec; %.1f s of CPU)", aTotal.Seconds(), a.Started.Seconds(), aCPU.Seconds())
	mustJSON(b, "PUT", a.URL+"/api/v1/packages/replicacheck/1.0.0", map[string]string{"description": "restart check"}, nil)

	// A writes while B starts
	var mu sync.Mutex
	acked := 0
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			code, body, err := call("POST", a.URL+"/api/v1/vehicles", map[string]string{"vin": fmt.Sprintf("WDDRST%011d", i)})
			if err != nil || code != http.StatusOK {
				b.Errorf("a write through A: %d %s %v", code, body, err)
				return
			}
			mu.Lock()
			acked++
			mu.Unlock()
		}
	}()

	var elapsed, cpu time.Duration
	var rep *sotadtest.Proc
	for b.Loop() {
		start := time.Now()
		rep = sotadtest.Start(b, bin, env, "--data", b.TempDir(), "--store", url, "--auth", "none")
		waitForFleet(b, rep.URL, benchVehicles, 2*time.Minute)
		elapsed = time.Since(start)
		cpu, _ = rep.CPU()
	}
	close(stop)
	<-stopped
	mu.Lock()
	n := acked
	mu.Unlock()
	// every vehicle A acknowledged reaches B's list within 1 s; the contacts were loaded
	deadline := time.Now().Add(time.Second)
	for total := 0; total < benchVehicles+n; {
		if time.Now().After(deadline) {
			b.Fatalf("B lists %d vehicles 1 s after A acknowledged its last write, want %d", total, benchVehicles+n)
		}
		total = vehicleCount(b, rep.URL)
	}
	var dr struct{ Matched, AlreadyInstalled int }
	mustJSON(b, "POST", rep.URL+"/api/v1/resolve/dry-run", map[string]any{"package": map[string]string{"name": "replicacheck", "version": "1.0.0"}, "expression": `seen_within "60d"`}, &dr)
	if dr.Matched+dr.AlreadyInstalled != benchVehicles {
		b.Fatalf("a dry run of seen_within on B matches %d vehicles, want every one of the %d with a contact", dr.Matched+dr.AlreadyInstalled, benchVehicles)
	}

	time.Sleep(2 * time.Second) // the start's garbage settles
	rss, _ := rep.StatusKB("VmRSS")
	hwm, _ := rep.StatusKB("VmHWM")
	anon, _ := rep.StatusKB("RssAnon")
	heapInuse := metric(b, rep.URL, "go_memstats_heap_inuse_bytes")
	live := lastLiveHeapMB(rep.Logs())
	raw2 := rawSelect(b, url)
	b.Logf("replica B answered with 1M vehicles %.1f s after its exec (listening after %.1f s; %.1f s of CPU) while A took %d writes (load average before: %s); raw SELECT of the vehicle rows: %.1f s before, %.1f s after",
		elapsed.Seconds(), rep.Started.Seconds(), cpu.Seconds(), n, load, raw1.Seconds(), raw2.Seconds())
	var startLog []string
	for _, l := range strings.Split(rep.Logs(), "\n") {
		if strings.HasPrefix(l, "time=") {
			startLog = append(startLog, l)
		}
	}
	b.Logf("replica B's log:\n%s\nits last garbage collection of the start: %s", strings.Join(startLog, "\n"), lastGCLine(rep.Logs()))
	b.Logf("memory of replica B with 1M vehicles: RSS %.0f MiB (anonymous %.0f MiB), peak RSS %.0f MiB, Go heap in use %.0f MiB, live heap at the last GC of the start %d MB",
		float64(rss)/1024, float64(anon)/1024, float64(hwm)/1024, heapInuse/(1<<20), live)
	budget.Report(b, budget.Line{Name: "replica restart with 1M vehicles in PostgreSQL (a sotad process joining a running, writing replica, until it lists the whole fleet)",
		Figure: elapsed.Seconds(), Unit: "s", Budget: 30, Ratio: min(raw1, raw2).Seconds() / elapsed.Seconds(),
		Baseline: "raw SELECT streaming the same vehicle rows"})
	budget.Report(b, budget.Line{Name: "peak RSS of a sotad replica with 1M vehicles in PostgreSQL",
		Figure: float64(hwm) / 1024, Unit: "MiB", Budget: 2048})
}

// waitForFleet waits until the server lists at least want vehicles and returns how long that took
// from the call.
func waitForFleet(b *testing.B, base string, want int, within time.Duration) time.Duration {
	b.Helper()
	start := time.Now()
	for vehicleCount(b, base) < want {
		if time.Since(start) > within {
			b.Fatalf("%s lists fewer than %d vehicles after %v", base, want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// vehicleCount is X-Total-Count of GET /vehicles.
func vehicleCount(b *testing.B, base string) int {
	b.Helper()
	res, err := http.Get(base + "/api/v1/vehicles?limit=1")
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("GET /vehicles: %s", res.Status)
	}
	n, err := strconv.Atoi(res.Header.Get("X-Total-Count"))
	if err != nil {
		b.Fatalf("X-Total-Count: %v", err)
	}
	return n
}

// call sends a JSON request and returns the status and the body.
func call(method, url string, body any) (int, []byte, error) {
	j, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(method, url, strings.NewReader(string(j)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// mustJSON sends a JSON request, requires a 2xx and decodes the answer into out (unless nil).
func mustJSON(b *testing.B, method, url string, body, out any) {
	b.Helper()
	code, got, err := call(method, url, body)
	if err != nil || code/100 != 2 {
		b.Fatalf("%s %s: %d %s %v", method, url, code, got, err)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			b.Fatalf("%s %s: %v in %s", method, url, err, got)
		}
	}
}

// metric is one unlabelled sample of the server's /metrics.
func metric(b *testing.B, base, name string) float64 {
	b.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	b.Fatalf("/metrics has no %s", name)
	return 0
}

// gcLine is a GODEBUG=gctrace=1 line's heap sizes: at the start of the cycle, at its end, and live
// (marked) after it, in MB.
var gcLine = regexp.MustCompile(`gc \d+ @.* (\d+)->(\d+)->(\d+) MB`)

// lastGCLine is the last GODEBUG=gctrace=1 line of the log.
func lastGCLine(logs string) string {
	ms := gcLine.FindAllString(logs, -1)
	if len(ms) == 0 {
		return "none"
	}
	return ms[len(ms)-1]
}

// lastLiveHeapMB is the live heap after the last garbage collection the log shows.
func lastLiveHeapMB(logs string) int {
	ms := gcLine.FindAllStringSubmatch(logs, -1)
	if len(ms) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(ms[len(ms)-1][3])
	return n
}

// BenchmarkPollWriteLoad: what device polls write to the database, the figure the 50M plan of
// docs/scale-out.md extrapolates from. One sotad replica on a fresh PostgreSQL schema; 1,000 vehicles
// with device tokens each poll (GET /vehicle_updates/:vin, nothing queued) once, their first contact,
// and then once more within the minute. After each round the replica is stopped, so that its
// database sessions have flushed their statistics, and the rows inserted, updated and deleted in the
// schema's tables (pg_stat_user_tables) are divided by the polls. No budget: logged.
func BenchmarkPollWriteLoad(b *testing.B) {
	if os.Getenv("SOTA_TEST_PG_URL") == "" && os.Getenv("SOTA_REQUIRE_POSTGRES") != "1" {
		b.Skip("PostgreSQL only: set SOTA_TEST_PG_URL to a server's URL (e.g. " + storetest.DefaultPGURL + ") to measure it")
	}
	const n = 1000
	url := storetest.SpecKind(b, "postgres", b.TempDir())
	bin := sotadtest.Build(b)
	dir := b.TempDir()
	start := func() *sotadtest.Proc {
		return sotadtest.Start(b, bin, nil, "--data", dir, "--store", url, "--auth", "none")
	}
	p := start()
	vins := make([]string, n)
	tokens := make([]string, n)
	parallel(b, n, func(i int) {
		vins[i] = fmt.Sprintf("WDDPWL%011d", i)
		mustJSON(b, "POST", p.URL+"/api/v1/vehicles", map[string]string{"vin": vins[i]}, nil)
		var tok struct{ Token string }
		mustJSON(b, "POST", p.URL+"/api/v1/vehicles/"+vins[i]+"/token", nil, &tok)
		tokens[i] = tok.Token
	})
	p.Stop(syscall.SIGTERM)
	for b.Loop() {
		for _, round := range []string{"first contact of each vehicle", "a second poll within the minute"} {
			before := tableWrites(b, url)
			p = start()
			t0 := time.Now()
			parallel(b, n, func(i int) {
				req, _ := http.NewRequest("GET", p.URL+"/api/v1/vehicle_updates/"+vins[i], nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Errorf("poll of %s: %s", vins[i], res.Status)
				}
			})
			took := time.Since(t0)
			p.Stop(syscall.SIGTERM)
			after := tableWrites(b, url)
			var parts []string
			total := 0.0
			for _, t := range sortedTables(after) {
				d := after[t].sub(before[t])
				if d.ins+d.upd+d.del == 0 {
					continue
				}
				per := float64(d.ins+d.upd+d.del) / n
				total += per
				parts = append(parts, fmt.Sprintf("%s %.2f (%d inserted, %d updated, %d deleted)", t, per, d.ins, d.upd, d.del))
			}
			b.Logf("%s: %d polls in %v; rows written per poll: %.2f in all; %s", round, n, took.Round(time.Millisecond), total, strings.Join(parts, "; "))
		}
	}
}

// parallel runs fn(0..n-1) on 8 goroutines.
func parallel(b *testing.B, n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

type rowWrites struct{ ins, upd, del int64 }

func (a rowWrites) sub(b rowWrites) rowWrites {
	return rowWrites{a.ins - b.ins, a.upd - b.upd, a.del - b.del}
}

// tableWrites reads the rows inserted, updated and deleted so far in each table of the store's
// schema (the search_path of url).
func tableWrites(b *testing.B, url string) map[string]rowWrites {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE schemaname = current_schema()`)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]rowWrites{}
	for rows.Next() {
		var name string
		var w rowWrites
		if err := rows.Scan(&name, &w.ins, &w.upd, &w.del); err != nil {
			b.Fatal(err)
		}
		out[name] = w
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

func sortedTables(m map[string]rowWrites) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
