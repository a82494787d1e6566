package main

// Disk use under churn: the real sotad binary runs a steady workload for SOTA_CHURN (e.g. 10m; make
// soak runs 10 minutes) while the size of its store is sampled: on Badger the disk use of the data
// directory (allocated blocks), on PostgreSQL (SOTA_TEST_STORE=postgres) the size of the store's
// tables with their indexes and TOAST. Rewritten records (installed sets, update statuses, lastSeen,
// the status index) leave garbage behind that Badger's compaction and value-log GC, or PostgreSQL's
// autovacuum, must reclaim; the records the workload adds for good (update history, audit entries)
// are the baseline: after a warm-up the store may grow by what its live data grows, not more.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/store"
)

const (
	churnVehicles = 200
	churnVersions = 10
)

// TestChurnDiskFlat: 200 vehicles poll, start and finish their updates, and get their installed sets
// replaced, while an operator queues an update request every 2 s (a new version of one package each
// time, so that every request reaches the vehicles that do not have it) and every 10 s one whose
// validity ends at once, purged as expired. The store's size is sampled every 15 s. After the first
// fifth of the run (warm-up), the growth of the store must stay within what the live data grew (a
// scan of every key and value, read with sotad stopped at the end of the warm-up and at the end of
// the run) plus churnSlack, and its largest sample within that plus churnPeakSlack.
func TestChurnDiskFlat(t *testing.T) {
	spec := os.Getenv("SOTA_CHURN")
	if spec == "" {
		t.Skip("SOTA_CHURN is not set: SOTA_CHURN=10m go test ./cmd/sotad -run TestChurnDiskFlat -v -timeout 30m (make soak runs it)")
	}
	total, err := time.ParseDuration(spec)
	require.NoError(t, err, "SOTA_CHURN")
	warm := total / 5

	bin := buildSotad(t)
	dataDir := t.TempDir()
	p := startSotad(t, bin, dataDir)
	t.Cleanup(func() { p.kill() })

	c := &churn{t: t, url: p.url, rnd: rand.New(rand.NewPCG(1, 2))}
	c.setup()
	var samples []churnSample
	begin := time.Now()
	sample := func(phase string) {
		s := churnSample{at: time.Since(begin), bytes: storeBytes(t, dataDir), phase: phase}
		samples = append(samples, s)
		t.Logf("%6.0f s  %s  %7.1f MiB  (%d polls, %d requests, %d finished, %d installed sets replaced)",
			s.at.Seconds(), phase, mib(s.bytes), c.polls.Load(), c.requests.Load(), c.finished.Load(), c.replaced.Load())
	}
	sample("start")
	c.run(warm, func() { sample("warm-up") })

	// the end of the warm-up: sotad stopped (gracefully, so that nothing is in flight), the live data
	// scanned, sotad started again on the same store
	stop(t, p)
	live1 := liveBytes(t, dataDir)
	disk1 := storeBytes(t, dataDir)
	t.Logf("after the warm-up: store %.1f MiB, live keys and values %.1f MiB", mib(disk1), mib(live1))
	p = startSotad(t, bin, dataDir)
	c.url = p.url
	c.run(total-warm, func() { sample("churn") })
	c.countPurged()
	stop(t, p)
	live2 := liveBytes(t, dataDir)
	disk2 := storeBytes(t, dataDir)

	var peak int64
	for _, s := range samples {
		if s.phase == "churn" {
			peak = max(peak, s.bytes)
		}
	}
	t.Logf("churn of %s on %s: store %.1f MiB at the start, %.1f MiB after the warm-up, peak %.1f MiB after it, %.1f MiB at the end; live data %.1f MiB after the warm-up, %.1f MiB at the end (+%.1f MiB); %d polls, %d update requests, %d updates finished, %d installed sets replaced, %d updates purged",
		total, storetest.Kind(), mib(samples[0].bytes), mib(disk1), mib(peak), mib(disk2), mib(live1), mib(live2), mib(live2-live1),
		c.polls.Load(), c.requests.Load(), c.finished.Load(), c.replaced.Load(), c.purged.Load())
	require.Positive(t, c.finished.Load(), "the workload finished no update")
	require.Positive(t, c.purged.Load(), "the workload purged no update")
	// Slack: the store's buffers. Badger writes every commit to the log of its memtable (64 MiB) and
	// flushes full memtables to tables, so a running store holds up to a few memtables' logs on top
	// of its tables; a stopped one has flushed them.
	growth := live2 - live1
	require.LessOrEqualf(t, disk2-disk1, growth+churnSlack,
		"the store grew by %.1f MiB after the warm-up, its live data by %.1f MiB", mib(disk2-disk1), mib(growth))
	require.LessOrEqualf(t, peak-disk1, growth+churnPeakSlack,
		"the store peaked at %.1f MiB after the warm-up, from %.1f MiB (live data +%.1f MiB)", mib(peak), mib(disk1), mib(growth))
}

const (
	churnSlack     = 64 << 20  // a stopped store's growth beyond its live data's
	churnPeakSlack = 320 << 20 // a running one's: Badger's memtables (5 of 64 MiB) not yet flushed
)

type churnSample struct {
	at    time.Duration
	bytes int64
	phase string
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// stop ends sotad with SIGTERM (a graceful stop that closes the store) and waits for it.
func stop(t *testing.T, p *sotadProc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		p.kill()
		t.Fatalf("sotad did not stop on SIGTERM:\n%s", p.logs)
	}
}

// storeBytes is the size of the store: on Badger the disk use (allocated blocks) of the data
// directory, on PostgreSQL the size of the store's tables with their indexes and TOAST.
func storeBytes(t *testing.T, dataDir string) int64 {
	t.Helper()
	if storetest.Postgres() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, storetest.Spec(t, dataDir))
		require.NoError(t, err)
		defer conn.Close(ctx)
		var n int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&n))
		return n
	}
	var n int64
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	require.NoError(t, err)
	return n
}

// liveBytes opens the store of a stopped sotad and adds up its keys and values.
func liveBytes(t *testing.T, dataDir string) int64 {
	t.Helper()
	db, err := store.OpenStore(storetest.Spec(t, dataDir), dataDir, store.Options{GCInterval: -1})
	require.NoError(t, err)
	defer db.Close()
	var n int64
	require.NoError(t, db.View(func(tx store.Txn) error {
		return tx.Iterate(nil, func(k, v []byte) error { n += int64(len(k) + len(v)); return nil })
	}))
	return n
}

// churn is the workload.
type churn struct {
	t      *testing.T
	url    string
	rnd    *rand.Rand // the operator's
	vins   []string
	tokens []string
	round  int

	expiring []string // the requests whose validity ends at once
	skip     sync.Map // their ids: the vehicles leave their updates alone, so that purges expire them

	polls, requests, finished, replaced, purged atomic.Int64
}

// churnClient waits longer than the crash test's client: a purge on a loaded machine may take seconds.
var churnClient = &http.Client{Timeout: time.Minute}

// do sends one call and checks that its status is one of ok.
func (c *churn) do(method, path, token string, body any, out any, ok ...int) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+"/api/v1"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := churnClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if !slices.Contains(ok, res.StatusCode) {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil && res.StatusCode == ok[0] {
		return json.Unmarshal(b, out)
	}
	return nil
}

// call is do on the test's goroutine: a failure ends the test.
func (c *churn) call(status int, method, path, token string, body any, out any) {
	c.t.Helper()
	require.NoError(c.t, c.do(method, path, token, body, out, status))
}

func churnPackage(k int) string { return fmt.Sprintf("churn/1.0.%d", k%churnVersions) }

// setup: the package's versions with binaries, a filter for everyone, the vehicles with device tokens.
func (c *churn) setup() {
	c.call(200, "POST", "/filters", "", map[string]string{"name": "everyone", "expression": "TRUE"}, nil)
	for k := range churnVersions {
		pkg := churnPackage(k)
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, err := mw.CreateFormFile("file", "bin")
		require.NoError(c.t, err)
		fmt.Fprintf(fw, "binary of %s", pkg)
		require.NoError(c.t, mw.Close())
		req, err := http.NewRequest("PUT", c.url+"/api/v1/packages/"+pkg, &body)
		require.NoError(c.t, err)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		res, err := churnClient.Do(req)
		require.NoError(c.t, err)
		res.Body.Close()
		require.Equal(c.t, 204, res.StatusCode, "upload %s", pkg)
		c.call(200, "PUT", "/packages/"+pkg+"/filter/everyone", "", nil, nil)
	}
	for i := range churnVehicles {
		vin := fmt.Sprintf("WDDCHURN%09d", i)
		c.call(204, "PUT", "/vehicles/"+vin, "", nil, nil)
		var tok struct{ Token string }
		c.call(200, "POST", "/vehicles/"+vin+"/token", "", nil, &tok)
		c.vins, c.tokens = append(c.vins, vin), append(c.tokens, tok.Token)
	}
}

// run runs the workload for d, calling sample every 15 s.
func (c *churn) run(d time.Duration, sample func()) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := w; time.Now().Before(deadline) && !c.t.Failed(); i += workers {
				if err := c.vehicle(rnd, i%churnVehicles); err != nil {
					c.t.Error(err)
					return
				}
			}
		}()
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	samples := time.NewTicker(15 * time.Second)
	defer samples.Stop()
	for time.Now().Before(deadline) && !c.t.Failed() {
		select {
		case <-tick.C:
			c.operate()
		case <-samples.C:
			sample()
		}
	}
	wg.Wait()
}

// operate is the operator's turn: an update request for the next version; every fifth turn one whose
// validity ends in a second (the vehicles leave its updates alone, see skip), and two turns later a
// purge.
func (c *churn) operate() {
	c.round++
	pkg := strings.SplitN(churnPackage(c.round), "/", 2)
	body := map[string]any{"packageId": map[string]string{"name": pkg[0], "version": pkg[1]}}
	if c.round%5 == 2 {
		var purged struct{ Purged int }
		c.call(200, "POST", "/update_requests/purge", "", nil, &purged)
	}
	if c.round%5 == 0 {
		now := time.Now().UTC()
		body["periodOfValidity"] = now.Add(-time.Minute).Format(time.RFC3339) + "/" + now.Add(time.Second).Format(time.RFC3339)
		body["priority"] = 1000
	}
	var r struct{ ID string }
	c.call(200, "POST", "/update_requests", "", body, &r)
	c.requests.Add(1)
	if c.round%5 == 0 {
		c.expiring = append(c.expiring, r.ID)
		c.skip.Store(r.ID, true)
	}
}

// countPurged counts the updates of the expiring requests that a purge (the operator's or the
// scheduler's) marked failed as expired.
func (c *churn) countPurged() {
	n := 0
	for _, id := range c.expiring {
		var rows []struct{ ResultText string }
		c.call(200, "GET", "/update_requests/"+id+"/vehicles?status=failed", "", nil, &rows)
		for _, r := range rows {
			if r.ResultText == "expired" {
				n++
			}
		}
	}
	c.purged.Store(int64(n))
}

// vehicle is one turn of vehicle i: it polls; it starts and finishes its first update (a failure one
// time in ten); one turn in five its installed set is replaced by a random set of the versions. It
// runs on a worker goroutine and returns its failure.
func (c *churn) vehicle(rnd *rand.Rand, i int) error {
	vin, tok := c.vins[i], c.tokens[i]
	var rows []struct {
		UpdateID  string
		RequestID string
		Status    string
	}
	if err := c.do("GET", "/vehicle_updates/"+vin, tok, nil, &rows, 200); err != nil {
		return err
	}
	c.polls.Add(1)
	if len(rows) > 0 && rows[0].RequestID != "" {
		if _, ok := c.skip.Load(rows[0].RequestID); ok {
			rows = nil // a request whose validity ends at once (the vehicle's chance was the first second)
		}
	}
	if len(rows) > 0 {
		// 409: the operator's purge expired the update since the poll
		u := rows[0]
		base := "/vehicle_updates/" + vin + "/" + u.UpdateID
		if u.Status == "pending" {
			if err := c.do("POST", base+"/start", tok, nil, nil, 200, 409); err != nil {
				return err
			}
		}
		code := 0
		if rnd.IntN(10) == 0 {
			code = 2
		}
		var msg string
		report := map[string]any{"operation_results": []map[string]any{{"id": u.UpdateID, "result_code": code, "result_text": "churn"}}}
		if err := c.do("POST", base, tok, report, &msg, 200, 409); err != nil {
			return err
		}
		if msg != "" {
			c.finished.Add(1)
		}
	}
	if rnd.IntN(5) == 0 {
		pkgs := []map[string]string{}
		for k := range churnVersions {
			if rnd.IntN(3) == 0 {
				p := strings.SplitN(churnPackage(k), "/", 2)
				pkgs = append(pkgs, map[string]string{"name": p[0], "version": p[1]})
			}
		}
		if err := c.do("PUT", "/vehicles/"+vin+"/packages", "", map[string]any{"packages": pkgs}, nil, 204); err != nil {
			return err
		}
		c.replaced.Add(1)
	}
	return nil
}
