package engine

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"sota/examples/load"
	"sota/internal/budget"
	"sota/internal/memlimit"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// BenchmarkCampaign1M: a staged campaign over the 1,000,000 vehicles of the example fleet in three
// groups (canary 1%, wave 10%, rest), on the real Badger store, with sotad's soft memory limit.
//
//   - launch (resolve, assign the groups, store them, queue the canary's 10,000 updates) ≤ 10 s;
//     baseline in the same run: resolving the package alone, which every launch does first.
//   - the gate decision after the deciding install report (the failure that passes the 5% error
//     threshold of the canary) ≤ one scheduler interval (30 s, sotad's default): the time from the
//     report's answer until the campaign is paused; baseline: that install report call itself.
//   - GET /campaigns/:id with 1,000,000 updates (every group released) ≤ 10 ms: the campaign with its
//     per-group counts encoded as the API answers it, median of 200; baseline: counting the
//     campaign's updates by a scan of their status index, what the read would cost without the
//     maintained counts.
func BenchmarkCampaign1M(b *testing.B) {
	if _, err := memlimit.Apply(memlimit.Default); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dir := b.TempDir()
	db, err := storetest.OpenDir(b, dir+"/db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	res, err := resolver.New(db)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := load.Catalogue(res); err != nil {
		b.Fatal(err)
	}
	if _, err := load.Fleet(ctx, res, 42, queueBenchVehicles, nil); err != nil {
		b.Fatal(err)
	}
	if _, err := res.CreatePackage(benchPackage, resolver.PackageInfo{Description: "Fleet agent"}); err != nil {
		b.Fatal(err)
	}
	if err := res.SetRangeDependency(benchPackage, "openssl", ">=3.0.13"); err != nil {
		b.Fatal(err)
	}
	if _, err := res.CreateFilter("everyone", "TRUE"); err != nil {
		b.Fatal(err)
	}
	if _, err := res.Associate(benchPackage, "everyone"); err != nil {
		b.Fatal(err)
	}
	b.Logf("example fleet of %d vehicles imported in %.1f s", res.Index().Len(), time.Since(start).Seconds())
	s, err := New(db, res, Options{DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}

	resolveStart := time.Now()
	targets, err := res.Resolve(ctx, benchPackage)
	resolveTime := time.Since(resolveStart)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range installPackages(targets) { // every install list's package has a binary
		if _, err := s.UploadBinary(p, strings.NewReader("binary of "+p.String()), Upload{}); err != nil {
			b.Fatal(err)
		}
	}
	targets = nil

	one, ten, five := 1, 10, 5
	c, err := s.CreateCampaign(NewCampaign{Name: "bench", PackageID: benchPackage, ErrorThreshold: &five,
		Groups: []GroupSpec{{Name: "canary", Percent: &one}, {Name: "wave", Percent: &ten}}})
	if err != nil {
		b.Fatal(err)
	}
	launchStart := time.Now()
	l, err := s.LaunchCampaign(ctx, c.ID)
	launchTime := time.Since(launchStart)
	if err != nil {
		b.Fatal(err)
	}
	sizes := []int{l.Groups[0].Vehicles, l.Groups[1].Vehicles, l.Groups[2].Vehicles}
	if l.Vehicles != queueBenchVehicles || !slices.Equal(sizes, []int{10_000, 100_000, 890_000}) {
		b.Fatalf("launched %d vehicles in groups %v", l.Vehicles, sizes)
	}

	// The canary fails: 500 failures of 10,000 are 5%, the 501st passes the threshold.
	canary, _, err := s.RequestVehicles(l.UpdateRequest, Pending, Page{Limit: 501})
	if err != nil {
		b.Fatal(err)
	}
	fail := []OperationResult{{ID: "x", ResultCode: wire.ResultInstallFailed}}
	for _, v := range canary[:500] {
		if _, _, err := s.InstallReport(v.VIN, v.UpdateID, fail); err != nil {
			b.Fatal(err)
		}
	}
	if cur, _ := s.Campaign(c.ID); cur.Status != CampaignRunning {
		b.Fatalf("campaign %s after 500 failures of 10,000 (5%%, not past the threshold)", cur.Status)
	}
	last := canary[500]
	reportStart := time.Now()
	if _, _, err := s.InstallReport(last.VIN, last.UpdateID, fail); err != nil {
		b.Fatal(err)
	}
	reportTime := time.Since(reportStart)
	var gateTime time.Duration
	for {
		cur, err := s.Campaign(c.ID)
		if err != nil {
			b.Fatal(err)
		}
		if cur.Status == CampaignPaused {
			gateTime = time.Since(reportStart) - reportTime
			b.Logf("paused: %s", cur.PauseReason)
			break
		}
		if time.Since(reportStart) > 2*time.Minute {
			b.Fatalf("no gate decision within 2 minutes: %+v", cur)
		}
		time.Sleep(100 * time.Microsecond)
	}

	// Every group released: 1,000,000 updates in the campaign.
	if _, err := s.ResumeCampaign(ctx, c.ID); err != nil {
		b.Fatal(err)
	}
	releaseStart := time.Now()
	for range 2 {
		if _, err := s.ReleaseNextGroup(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
	}
	releaseTime := time.Since(releaseStart)
	cur, err := s.Campaign(c.ID)
	if err != nil {
		b.Fatal(err)
	}
	if n := cur.Counts.Pending + cur.Counts.Failed; n != queueBenchVehicles {
		b.Fatalf("the campaign counts %d updates, want %d: %+v", n, queueBenchVehicles, cur.Counts)
	}
	gets := make([]time.Duration, 200)
	for i := range gets {
		t0 := time.Now()
		cp, err := s.Campaign(c.ID)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(cp); err != nil {
			b.Fatal(err)
		}
		gets[i] = time.Since(t0)
	}
	slices.Sort(gets)
	getTime := gets[len(gets)/2]
	scanStart := time.Now()
	scanned := 0
	err = db.View(func(t store.Txn) error {
		for _, r := range cur.UpdateRequests {
			for _, st := range Statuses {
				if err := t.IterateKeys(rsPrefix(r, st), func([]byte) error { scanned++; return nil }); err != nil {
					return err
				}
			}
		}
		return nil
	})
	scanTime := time.Since(scanStart)
	if err != nil || scanned != queueBenchVehicles {
		b.Fatalf("scan counted %d updates (%v)", scanned, err)
	}
	for b.Loop() { // the measurements above are the benchmark; one campaign per run
	}

	b.Logf("launch %.2f s (resolve alone %.2f s); gate decision %.1f ms after the deciding report (the report %.1f ms); releasing wave and rest %.1f s; GET median %.3f ms (scan of the status index %.0f ms)",
		launchTime.Seconds(), resolveTime.Seconds(), ms(gateTime), ms(reportTime), releaseTime.Seconds(), ms(getTime), ms(scanTime))
	budget.Report(b, budget.Line{Name: "campaign launch over 1,000,000 vehicles in 3 groups (assign, store the groups, queue the 1% canary)",
		Figure: launchTime.Seconds(), Unit: "s", Budget: 10, Ratio: resolveTime.Seconds() / launchTime.Seconds(), Baseline: "resolving the package alone"})
	budget.Report(b, budget.Line{Name: "campaign gate decision after the deciding install report (1M-vehicle campaign)",
		Figure: ms(gateTime), Unit: "ms", Budget: 30_000, Ratio: ms(reportTime) / ms(gateTime), Baseline: "the install report call"})
	budget.Report(b, budget.Line{Name: "GET /campaigns/:id with 1,000,000 updates (campaign with per-group counts, encoded)",
		Figure: ms(getTime), Unit: "ms", Budget: 10, Ratio: ms(scanTime) / ms(getTime), Baseline: "counting its updates by a scan of the status index"})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
