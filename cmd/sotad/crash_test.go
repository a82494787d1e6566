package main

// Crash safety: the real sotad binary under concurrent writes is killed with SIGKILL at random
// moments and restarted on the same data directory. Every write answered 2xx must be there, and the
// in-memory FleetIndex rebuilt at start must agree with the stored records (the vehicle list, the
// reverse lookups by package and by component, resolve). SOTA_CRASH_CYCLES sets the number of kills
// (make soak runs 50); SOTA_CRASH_SEED replays the random moments.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/internal/sotadtest"
	"sota/internal/storetest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// buildSotad builds the server binary into a temporary directory.
func buildSotad(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sotad")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoErrorf(t, err, "go build: %s", out)
	return bin
}

// sotadProc is one running sotad process.
type sotadProc struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
	done chan struct{}
}

var listeningRE = regexp.MustCompile(`msg="sotad listening" addr=(\S+) .*store=(\w+)`)

// startSotad starts the binary on a free loopback port over dataDir and waits until it answers.
func startSotad(t *testing.T, bin, dataDir string) *sotadProc {
	t.Helper()
	return startSotadOn(t, bin, dataDir, storetest.Spec(t, dataDir), storetest.Kind())
}

// startSotadOn is startSotad with the --store value and its kind ("badger" or "postgres") given, and
// extra flags: several processes on one PostgreSQL store (replicas) have a data directory each.
func startSotadOn(t testing.TB, bin, dataDir, spec, kind string, extra ...string) *sotadProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--data", dataDir, "--store", spec, "--auth", "none", "--admin-password", "crash-test-password"}, extra...)...)
	cmd.Env = append(os.Environ(), "SOTA_LOG_LEVEL=info")
	sotadtest.DieWithParent(cmd) // a test binary killed by its timeout leaves no server running
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &sotadProc{cmd: cmd, logs: &bytes.Buffer{}, done: make(chan struct{})}
	addr, backend := make(chan string, 1), make(chan string, 1)
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				backend <- m[2]
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
		require.Equal(t, kind, <-backend, "sotad runs on the store it was given")
	case <-p.done:
		t.Fatalf("sotad exited at start:\n%s", p.logs)
	case <-time.After(60 * time.Second):
		p.kill()
		t.Fatalf("sotad did not start:\n%s", p.logs)
	}
	return p
}

func (p *sotadProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

var client = &http.Client{Timeout: 10 * time.Second}

// call sends a JSON request; err is a transport error (the server died), else the status and body.
func call(method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// fact is one acknowledged write: after any crash, the vehicle must have it.
type fact struct {
	vin, kind, value string // kind: vehicle, component, package
}

var (
	crashPackages = []string{"nav/1.0.0", "nav/2.0.0", "radio/1.0.0", "maps/3.1.0"}
	crashParts    = []string{"ECU1", "ECU2", "TCU3"}
)

func crashVIN(cycle, worker, n int) string {
	return fmt.Sprintf("WDDC%02d%d%010d", cycle%100, worker, n)
}

func TestKillNineLosesNoAcknowledgedWrite(t *testing.T) {
	cycles := envInt("SOTA_CRASH_CYCLES", 3)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SOTA_CRASH_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
		seed = s
	}
	t.Logf("%d cycles; replay the kill moments with SOTA_CRASH_SEED=%d", cycles, seed)
	r := rand.New(rand.NewPCG(seed, 1))
	bin := buildSotad(t)
	dataDir := t.TempDir()

	p := startSotad(t, bin, dataDir)
	t.Cleanup(func() { p.kill() })
	must := func(status int, method, path string, body any) {
		t.Helper()
		got, b, err := call(method, p.url+"/api/v1"+path, body)
		require.NoError(t, err)
		require.Equalf(t, status, got, "%s %s: %s", method, path, b)
	}
	for _, pkg := range crashPackages {
		must(200, "PUT", "/packages/"+pkg, map[string]string{"description": "crash test"})
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, err := mw.CreateFormFile("file", "bin")
		require.NoError(t, err)
		fmt.Fprintf(fw, "binary of %s", pkg)
		require.NoError(t, mw.Close())
		req, err := http.NewRequest("PUT", p.url+"/api/v1/packages/"+pkg, &body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 204, resp.StatusCode, "upload %s", pkg)
	}
	for _, part := range crashParts {
		must(200, "PUT", "/components/"+part, map[string]string{"description": "crash test"})
	}
	must(200, "POST", "/filters", map[string]string{"name": "everyone", "expression": "TRUE"})
	must(200, "PUT", "/packages/maps/3.1.0/filter/everyone", nil)
	must(200, "PUT", "/packages/maps/3.1.0/dependencies/nav/2.0.0", nil)
	must(200, "PUT", "/packages/radio/1.0.0/filter/everyone", nil)
	must(200, "PUT", "/packages/nav/1.0.0/filter/everyone", nil)

	var acked []fact
	var attempted []string            // every VIN a PUT was sent for, answered or not
	ackedRequests := map[string]int{} // update request id -> vehicles queued, as answered
	for cycle := range cycles {
		var mu sync.Mutex
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // bulk imports of 100 vehicles: an answered import is wholly there
			defer wg.Done()
			rw := rand.New(rand.NewPCG(seed, uint64(cycle*10+9)))
			for n := 0; ; n++ {
				var body bytes.Buffer
				var facts []fact
				for i := range 100 {
					vin := crashVIN(cycle, 8, n*1000+i)
					pkg, part := crashPackages[rw.IntN(len(crashPackages))], crashParts[rw.IntN(len(crashParts))]
					name, ver, _ := strings.Cut(pkg, "/")
					fmt.Fprintf(&body, `{"vin":%q,"packages":[{"name":%q,"version":%q}],"components":[%q]}`+"\n", vin, name, ver, part)
					facts = append(facts, fact{vin, "vehicle", ""}, fact{vin, "component", part}, fact{vin, "package", pkg})
					mu.Lock()
					attempted = append(attempted, vin)
					mu.Unlock()
				}
				req, _ := http.NewRequest("POST", p.url+"/api/v1/fleet/import", &body)
				req.Header.Set("Content-Type", "application/x-ndjson")
				res, err := client.Do(req)
				if err != nil {
					return // killed
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil {
					return
				}
				if res.StatusCode != 200 {
					t.Errorf("import: %d %s", res.StatusCode, b)
					return
				}
				mu.Lock()
				acked = append(acked, facts...)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond) // leave room for the single writes
			}
		}()
		wg.Add(1)
		go func() { // update requests of radio 1.0.0 for every vehicle that has none pending yet
			defer wg.Done()
			for {
				status, b, err := call("POST", p.url+"/api/v1/update_requests", map[string]any{"packageId": map[string]string{"name": "radio", "version": "1.0.0"}})
				if err != nil {
					return // killed
				}
				var r struct {
					ID       string
					Vehicles int
				}
				if status != 200 || json.Unmarshal(b, &r) != nil {
					t.Errorf("update request: %d %s", status, b)
					return
				}
				mu.Lock()
				ackedRequests[r.ID] = r.Vehicles
				mu.Unlock()
				time.Sleep(30 * time.Millisecond)
			}
		}()
		wg.Add(1)
		go func() { // campaigns of nav 1.0.0, created and launched
			defer wg.Done()
			for n := 0; ; n++ {
				status, b, err := call("POST", p.url+"/api/v1/campaigns", map[string]any{"name": fmt.Sprintf("c%d-%d", cycle, n),
					"packageId": map[string]string{"name": "nav", "version": "1.0.0"}, "priority": 5,
					"startTime": time.Now().UTC().Format(time.RFC3339), "endTime": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)})
				if err != nil {
					return
				}
				var c struct{ ID string }
				if status != 200 || json.Unmarshal(b, &c) != nil {
					t.Errorf("campaign: %d %s", status, b)
					return
				}
				status, b, err = call("POST", p.url+"/api/v1/campaigns/"+c.ID+"/launch", nil)
				if err != nil {
					return
				}
				var l struct {
					UpdateRequest string
					Vehicles      int
				}
				if status != 200 || json.Unmarshal(b, &l) != nil {
					t.Errorf("launch: %d %s", status, b)
					return
				}
				mu.Lock()
				ackedRequests[l.UpdateRequest] = l.Vehicles
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rw := rand.New(rand.NewPCG(seed, uint64(cycle*10+w+2)))
				for n := 0; ; n++ {
					vin := crashVIN(cycle, w, n)
					mu.Lock()
					attempted = append(attempted, vin)
					mu.Unlock()
					steps := []fact{{vin, "vehicle", ""}, {vin, "component", crashParts[rw.IntN(len(crashParts))]}, {vin, "package", crashPackages[rw.IntN(len(crashPackages))]}}
					for _, f := range steps {
						var status int
						var body []byte
						var err error
						switch f.kind {
						case "vehicle":
							status, body, err = call("PUT", p.url+"/api/v1/vehicles/"+vin, nil)
						case "component":
							status, body, err = call("PUT", p.url+"/api/v1/vehicles/"+vin+"/component/"+f.value, nil)
						case "package":
							status, body, err = call("PUT", p.url+"/api/v1/vehicles/"+vin+"/package/"+f.value, nil)
						}
						if err != nil {
							return // killed
						}
						if status/100 != 2 {
							t.Errorf("%s %s %s: %d %s", f.kind, vin, f.value, status, body)
							return
						}
						mu.Lock()
						acked = append(acked, f)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(20+r.IntN(400)) * time.Millisecond)
		p.kill()
		wg.Wait()
		require.False(t, t.Failed())

		p = startSotad(t, bin, dataDir)
		checkAfterCrash(t, p.url, cycle, acked, attempted)
		checkRequestsAfterCrash(t, p.url, cycle, ackedRequests)
	}
	t.Logf("%d acknowledged writes and %d update requests over %d kills survived, index and store agree", len(acked), len(ackedRequests), cycles)
}

type expanded struct {
	VIN        string `json:"vin"`
	Packages   []struct{ Name, Version string }
	Components []string
}

func checkAfterCrash(t *testing.T, url string, cycle int, acked []fact, attempted []string) {
	t.Helper()
	get := func(path string, v any) http.Header {
		t.Helper()
		req, _ := http.NewRequest("GET", url+"/api/v1"+path, nil)
		res, err := client.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		require.Equalf(t, 200, res.StatusCode, "after kill %d: GET %s: %s", cycle+1, path, b)
		require.NoError(t, json.Unmarshal(b, v))
		return res.Header
	}
	getAll := func(path string) []string {
		t.Helper()
		var all []string
		for {
			var page []string
			h := get(fmt.Sprintf("%s?limit=10000&offset=%d", path, len(all)), &page)
			all = append(all, page...)
			if n, _ := strconv.Atoi(h.Get("X-Total-Count")); len(all) >= n || len(page) == 0 {
				return all
			}
		}
	}
	// The vehicle list comes from the index, each record from the store.
	var all []expanded
	for total := -1; total < 0 || len(all) < total; {
		var page []expanded
		h := get(fmt.Sprintf("/vehicles?expand=true&limit=10000&offset=%d", len(all)), &page)
		n, err := strconv.Atoi(h.Get("X-Total-Count"))
		require.NoError(t, err)
		require.Truef(t, total < 0 || n == total, "after kill %d: X-Total-Count changed from %d to %d", cycle+1, total, n)
		total = n
		all = append(all, page...)
		require.Truef(t, len(page) == 10000 || len(all) == total, "after kill %d: %d of %d indexed VINs have a stored record", cycle+1, len(all), total)
	}
	byVIN := map[string]expanded{}
	for _, v := range all {
		byVIN[v.VIN] = v
	}
	// Every acknowledged write is there.
	for _, f := range acked {
		v, ok := byVIN[f.vin]
		require.Truef(t, ok, "after kill %d: acknowledged vehicle %s is missing", cycle+1, f.vin)
		switch f.kind {
		case "component":
			require.Containsf(t, v.Components, f.value, "after kill %d: acknowledged component %s of %s is missing", cycle+1, f.value, f.vin)
		case "package":
			name, ver, _ := strings.Cut(f.value, "/")
			require.Truef(t, slices.ContainsFunc(v.Packages, func(p struct{ Name, Version string }) bool { return p.Name == name && p.Version == ver }),
				"after kill %d: acknowledged package %s of %s is missing: %v", cycle+1, f.value, f.vin, v.Packages)
		}
	}
	// A vehicle the store has (written or in flight at the kill) is in the index.
	ackedVIN := map[string]bool{}
	for _, f := range acked {
		ackedVIN[f.vin] = true
	}
	for _, vin := range attempted {
		if ackedVIN[vin] {
			continue // checked above
		}
		status, _, err := call("GET", url+"/api/v1/vehicles/"+vin, nil)
		require.NoError(t, err)
		_, listed := byVIN[vin]
		require.Equalf(t, status == 200, listed, "after kill %d: %s stored (%d) but listed=%v", cycle+1, vin, status, listed)
	}
	// Reverse lookups answered by the index equal what the stored records say.
	for _, pkg := range crashPackages {
		name, ver, _ := strings.Cut(pkg, "/")
		var want []string
		var got []string
		for _, v := range all {
			if slices.ContainsFunc(v.Packages, func(p struct{ Name, Version string }) bool { return p.Name == name && p.Version == ver }) {
				want = append(want, v.VIN)
			}
		}
		got = getAll("/packages/" + pkg + "/vehicles")
		require.Equalf(t, orNil(want), orNil(got), "after kill %d: vehicles with %s (index) vs stored records", cycle+1, pkg)
	}
	for _, part := range crashParts {
		var want []string
		var got []string
		for _, v := range all {
			if slices.Contains(v.Components, part) {
				want = append(want, v.VIN)
			}
		}
		got = getAll("/components/" + part + "/vehicles")
		require.Equalf(t, orNil(want), orNil(got), "after kill %d: vehicles with %s (index) vs stored records", cycle+1, part)
	}
	// Resolve (index plan and solver) over the rebuilt index: everyone without maps 3.1.0, with nav 2.0.0
	// first unless installed.
	var targets [][2]json.RawMessage
	get("/resolve/maps/3.1.0", &targets)
	var want, got []string
	for _, v := range all {
		has := func(n, ver string) bool {
			return slices.ContainsFunc(v.Packages, func(p struct{ Name, Version string }) bool { return p.Name == n && p.Version == ver })
		}
		if has("maps", "3.1.0") {
			continue
		}
		install := `[{"name":"maps","version":"3.1.0"}]`
		if !has("nav", "2.0.0") {
			install = `[{"name":"nav","version":"2.0.0"},{"name":"maps","version":"3.1.0"}]`
		}
		want = append(want, v.VIN+" "+install)
	}
	for _, tg := range targets {
		var vin string
		require.NoError(t, json.Unmarshal(tg[0], &vin))
		got = append(got, vin+" "+string(tg[1]))
	}
	require.Equalf(t, orNil(want), orNil(got), "after kill %d: resolve maps 3.1.0", cycle+1)
}

func orNil(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// checkRequestsAfterCrash: an answered update request has all its updates pending; one interrupted
// while queuing is aborted with none left pending; and for every request the per-status index (counts,
// VIN lists) agrees with the vehicles' queues (the update records).
func checkRequestsAfterCrash(t *testing.T, url string, cycle int, acked map[string]int) {
	t.Helper()
	get := func(path string, v any) {
		t.Helper()
		status, b, err := call("GET", url+"/api/v1"+path, nil)
		require.NoError(t, err)
		require.Equalf(t, 200, status, "after kill %d: GET %s: %s", cycle+1, path, b)
		require.NoError(t, json.Unmarshal(b, v))
	}
	var reqs []struct {
		ID, State, CampaignID string
		Vehicles              int
	}
	// a request interrupted while queuing is aborted once its queuing lease has expired (at once on
	// Badger; on PostgreSQL another replica might be queuing it, so the lease of the killed process
	// runs out first: engine.DefaultQueueLeaseTTL)
	for deadline := time.Now().Add(engine.DefaultQueueLeaseTTL + 10*time.Second); ; time.Sleep(100 * time.Millisecond) {
		get("/update_requests?limit=10000", &reqs)
		queuing := false
		for _, r := range reqs {
			queuing = queuing || r.State == "queuing"
		}
		if !queuing || time.Now().After(deadline) {
			break
		}
	}
	listed := map[string]bool{}
	queues := map[string]map[string]bool{} // VIN -> request ids of its pending updates
	for _, r := range reqs {
		listed[r.ID] = true
		if r.CampaignID != "" && r.State == "queued" {
			var c struct{ Status, UpdateRequest string }
			get("/campaigns/"+r.CampaignID, &c)
			want := "running"
			if r.Vehicles == 0 && c.Status == "finished" {
				// launched before any vehicle was imported: an empty campaign is done at once
				want = "finished"
			}
			require.Equalf(t, [2]string{want, r.ID}, [2]string{c.Status, c.UpdateRequest},
				"after kill %d: campaign %s has a queued update request %s of %d vehicles", cycle+1, r.CampaignID, r.ID, r.Vehicles)
		}
		var one struct{ Counts map[string]int }
		get("/update_requests/"+r.ID, &one)
		var pending []struct{ VIN string }
		get("/update_requests/"+r.ID+"/vehicles?status=pending", &pending)
		require.Equalf(t, one.Counts["pending"], len(pending), "after kill %d: request %s: pending count vs pending list", cycle+1, r.ID)
		if n, ok := acked[r.ID]; ok {
			require.Equalf(t, n, one.Counts["pending"], "after kill %d: answered request %s (%s) lost updates", cycle+1, r.ID, r.State)
		} else if r.State != "queued" {
			require.Equalf(t, 0, one.Counts["pending"], "after kill %d: interrupted request %s (%s) left updates pending", cycle+1, r.ID, r.State)
		}
		for i, v := range pending {
			if i == 10 || len(queues) >= 500 {
				break // a sample: the first vehicles of each request, 500 queues at most
			}
			if queues[v.VIN] == nil {
				var q []struct{ RequestID string }
				get("/vehicles/"+v.VIN+"/queue", &q)
				queues[v.VIN] = map[string]bool{}
				for _, u := range q {
					queues[v.VIN][u.RequestID] = true
				}
			}
			require.Truef(t, queues[v.VIN][r.ID], "after kill %d: %s is pending for request %s but not in its queue", cycle+1, v.VIN, r.ID)
		}
	}
	for id := range acked {
		require.Truef(t, listed[id], "after kill %d: answered update request %s is missing", cycle+1, id)
	}
	for vin, ids := range queues {
		for id := range ids {
			require.Truef(t, listed[id], "after kill %d: %s has an update of unknown request %s", cycle+1, vin, id)
		}
	}
}
