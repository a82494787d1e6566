package client_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/client"
	"sota/resolver"
	"sota/wire"
)

// A staged campaign over 1,000 simulated vehicles (device clients with their software loading
// managers): the canary's failures pause the campaign by itself, no vehicle outside the released
// groups is ever offered the update, and a resume lets it complete group by group.
func TestStagedRolloutOverAThousandVehicles(t *testing.T) {
	const vehicles = 1000
	srv := newServer(t, 4096)
	nav := resolver.PackageID{Name: "nav", Version: "5.0.0"}
	srv.upload(nav, randomBytes(seeded(), 3000))
	srv.admin("POST", "/filters", map[string]any{"name": "fleet", "expression": `vin_matches "^WDD"`}, nil)
	srv.admin("PUT", "/packages/nav/5.0.0/filter/fleet", nil, nil)

	managers := map[string]*client.Manager{}
	vins := make([]string, 0, vehicles)
	httpc := &http.Client{Timeout: 10 * time.Second}
	for i := 1; i <= vehicles; i++ {
		vin := vinOf(i)
		srv.admin("PUT", "/vehicles/"+vin, nil, nil)
		managers[vin] = &client.Manager{Dir: t.TempDir(), Client: &client.Client{Server: srv.url(), VIN: vin, Token: srv.token(vin), HTTP: httpc}}
		vins = append(vins, vin)
	}

	var cp struct{ ID string }
	srv.admin("POST", "/campaigns", map[string]any{"name": "nav 5", "packageId": nav,
		"groups":           []map[string]any{{"name": "canary", "percent": 2}, {"name": "wave", "percent": 20}},
		"successThreshold": 75, "errorThreshold": 10}, &cp)
	var launch struct {
		Vehicles int
		Groups   []struct {
			Name     string
			Vehicles int
		}
	}
	srv.admin("POST", "/campaigns/"+cp.ID+"/launch", nil, &launch)
	require.Equal(t, vehicles, launch.Vehicles)
	require.Equal(t, []int{20, 200, 780}, []int{launch.Groups[0].Vehicles, launch.Groups[1].Vehicles, launch.Groups[2].Vehicles})

	type group struct {
		Name, Status string
		Requests     []string
		Counts       map[string]int
	}
	type campaign struct {
		Status, PauseReason string
		Groups              []group
		Counts              map[string]int
	}
	get := func() campaign {
		var c campaign
		srv.admin("GET", "/campaigns/"+cp.ID, nil, &c)
		return c
	}
	// released is every vehicle that has an update in a released group.
	released := func() map[string]string {
		out := map[string]string{}
		for _, g := range get().Groups {
			for _, r := range g.Requests {
				var vs []struct{ VIN string }
				srv.admin("GET", "/update_requests/"+r+"/vehicles?limit=10000", nil, &vs)
				for _, v := range vs {
					out[v.VIN] = g.Name
				}
			}
		}
		return out
	}
	// run lets the managers of vins poll and install what they are offered, 16 at a time, and
	// checks that each offer went to a vehicle of a released group.
	offered := map[string]int{}
	run := func(vins []string) map[string][]client.Outcome {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out := map[string][]client.Outcome{}
		var mu sync.Mutex
		work := make(chan string)
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for vin := range work {
					os, err := managers[vin].RunOnce(ctx)
					assert.NoError(t, err, vin)
					mu.Lock()
					out[vin] = os
					mu.Unlock()
				}
			}()
		}
		for _, v := range vins {
			work <- v
		}
		close(work)
		wg.Wait()
		rel := released()
		for vin, os := range out {
			if len(os) > 0 {
				_, ok := rel[vin]
				assert.Truef(t, ok, "%s was offered an update outside the released groups", vin)
				offered[vin] += len(os)
			}
		}
		return out
	}
	await := func(what string, cond func(c campaign) bool) campaign {
		deadline := time.Now().Add(20 * time.Second)
		for {
			c := get()
			if cond(c) {
				return c
			}
			require.Falsef(t, time.Now().After(deadline), "%s: %+v", what, c)
			time.Sleep(10 * time.Millisecond)
		}
	}

	rel := released()
	require.Len(t, rel, 20, "only the canary is released")
	var canary []string
	for _, vin := range vins {
		if rel[vin] == "canary" {
			canary = append(canary, vin)
		}
	}
	// Canary vehicles decline (a failure), one after the other: the third (3 of 20 = 15%) is past the
	// 10% error threshold.
	for _, vin := range canary[:5] {
		managers[vin].Decline = true
	}
	for i, vin := range canary[:3] {
		outs := run([]string{vin})
		require.Len(t, outs[vin], 1)
		assert.Equal(t, wire.ResultUserDeclined, outs[vin][0].Code)
		c := await("failure counted", func(c campaign) bool { return c.Counts["failed"] == i+1 })
		if i < 2 {
			assert.Equal(t, "running", c.Status)
		}
	}
	c := await("paused by itself", func(c campaign) bool { return c.Status == "paused" })
	assert.Equal(t, `group "canary": 3 of 20 failed (15%), error threshold 10%`, c.PauseReason)

	// Paused: nobody is offered the update, canary or not.
	outs := run(vins)
	for vin, os := range outs {
		assert.Emptyf(t, os, "%s was offered an update while the campaign is paused", vin)
	}
	assert.Equal(t, "scheduled", get().Groups[1].Status)

	// Resumed: the rest of the canary installs; 15 of 20 is the 75% success threshold, so the wave
	// follows, then the rest.
	srv.admin("POST", "/campaigns/"+cp.ID+"/resume", nil, nil)
	// (two more decline: 2 failures after the resume are not past 10% of 20)
	outs = run(canary[3:])
	for i, vin := range canary[3:] {
		require.Len(t, outs[vin], 1, vin)
		assert.Equal(t, map[bool]int{true: wire.ResultUserDeclined, false: wire.ResultOK}[i < 2], outs[vin][0].Code)
	}
	await("wave released", func(c campaign) bool { return c.Groups[1].Status != "scheduled" })
	run(vins)
	await("rest released", func(c campaign) bool { return c.Groups[2].Status != "scheduled" })
	run(vins)
	c = await("finished", func(c campaign) bool { return c.Status == "finished" })
	assert.Equal(t, map[string]int{"pending": 0, "inFlight": 0, "finished": 995, "failed": 5, "canceled": 0}, c.Counts)
	for _, g := range c.Groups {
		assert.Equal(t, "done", g.Status, g.Name)
	}
	assert.Len(t, offered, vehicles, "every vehicle was offered the update once its group was released")
	for vin, n := range offered {
		assert.Equal(t, 1, n, fmt.Sprintf("%s was offered the update once", vin))
	}
}
