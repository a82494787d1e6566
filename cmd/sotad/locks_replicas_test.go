package main

// Writes that must hold across replicas, on three real sotad processes on one PostgreSQL schema:
// one package version queued on A, B and C at once leaves no vehicle with two active updates of it;
// a vehicle created on B can be written to on A and C at once (its token minted, a request queued
// for it, a data plan and an installed package set), with no 404 while their indexes catch up.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// putBinary uploads content as the binary of package name/version through base.
func putBinary(t *testing.T, base, name, version string, content []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name+".bin")
	require.NoError(t, err)
	fw.Write(content)
	mw.Close()
	req, err := http.NewRequest("PUT", base+"/packages/"+name+"/"+version, &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

// answers200 is must for another goroutine than the test's: it reports, and does not stop the test.
func answers200(t *testing.T, method, url string, body any) ([]byte, bool) {
	code, b, err := call(method, url, body)
	return b, assert.NoError(t, err) && assert.Equalf(t, 200, code, "%s %s: %s", method, url, b)
}

// TestReplicasQueueOnePackageAtOnceWithoutDuplicates: in every round, A and C queue the package
// (update requests of different priorities over the package's filter) while B launches a campaign of
// it (its own priority, a first group selected by a filter that changes with the round), all three at
// once; afterwards every vehicle has exactly one active update of the package, by the requests' vehicle
// lists and by each vehicle's queue. The round then cancels everything for the next one. Last, a
// campaign launched on A, B and C at once is launched once (two 409 already_launched).
func TestReplicasQueueOnePackageAtOnceWithoutDuplicates(t *testing.T) {
	ps := startReplicas(t, 3)
	a, b, c := ps[0], ps[1], ps[2]
	const n = 90
	vins := make([]string, n)
	for i := range vins {
		vins[i] = fmt.Sprintf("WDDLCK%011d", i)
		must(t, 200, "POST", ps[i%3]+"/vehicles", map[string]string{"vin": vins[i]})
	}
	putBinary(t, b, "lck", "1.0.0", []byte("the package's bytes"))
	must(t, 200, "POST", b+"/filters", map[string]string{"name": "lckfleet", "expression": `vin_matches "^WDDLCK"`})
	must(t, 200, "PUT", b+"/packages/lck/1.0.0/filter/lckfleet", nil)
	pkg := map[string]string{"name": "lck", "version": "1.0.0"}

	const rounds = 12
	for round := 0; round < rounds; round++ {
		var camp struct{ ID string }
		require.NoError(t, json.Unmarshal(must(t, 200, "POST", b+"/campaigns", map[string]any{
			"name": fmt.Sprintf("round %d", round), "packageId": pkg, "priority": 20,
			"groups": []map[string]string{{"name": "first", "filter": fmt.Sprintf(`vin_matches "[%d%d%d]$"`, round%10, (round+3)%10, (round+7)%10)}},
		}), &camp))

		var wg sync.WaitGroup
		start := make(chan struct{})
		ids := make([]string, 3)
		errs := make([]error, 3)
		queue := func(i int, base string, priority int) {
			defer wg.Done()
			<-start
			code, body, err := call("POST", base+"/update_requests", map[string]any{"packageId": pkg, "priority": priority})
			if err == nil && code != 200 {
				err = fmt.Errorf("queue on %c: %d %s", 'A'+i, code, body)
			}
			var r struct{ ID string }
			if err == nil {
				err = json.Unmarshal(body, &r)
			}
			ids[i], errs[i] = r.ID, err
		}
		wg.Add(3)
		go queue(0, a, 5)
		go queue(2, c, 1)
		go func() {
			defer wg.Done()
			<-start
			code, body, err := call("POST", b+"/campaigns/"+camp.ID+"/launch", nil)
			if err == nil && code != 200 {
				err = fmt.Errorf("launch on B: %d %s", code, body)
			}
			var l struct{ UpdateRequest string }
			if err == nil {
				err = json.Unmarshal(body, &l)
			}
			ids[1], errs[1] = l.UpdateRequest, err
		}()
		close(start)
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}

		// by the requests' vehicle lists, every request's (a campaign's gate may have released its
		// second group meanwhile), each read on another replica than the one that queued it
		var reqs []struct{ ID string }
		require.NoError(t, json.Unmarshal(must(t, 200, "GET", c+"/update_requests?limit=10000", nil), &reqs))
		active := map[string][]string{}
		for i, r := range reqs {
			for _, st := range []string{"pending", "inFlight"} {
				var rows []struct{ VIN string }
				require.NoError(t, json.Unmarshal(must(t, 200, "GET", ps[i%3]+"/update_requests/"+r.ID+"/vehicles?status="+st, nil), &rows))
				for _, row := range rows {
					active[row.VIN] = append(active[row.VIN], r.ID)
				}
			}
		}
		var twice []string
		for _, v := range vins {
			if len(active[v]) != 1 {
				twice = append(twice, fmt.Sprintf("%s: %d", v, len(active[v])))
			}
		}
		sort.Strings(twice)
		require.Emptyf(t, twice, "round %d: vehicles without exactly one active update of the package (requests %v)", round, ids)

		// by each vehicle's queue, on a replica that changes with the round
		base := ps[round%3]
		for _, v := range vins {
			var q []struct {
				PackageID struct{ Name, Version string } `json:"packageId"`
			}
			require.NoError(t, json.Unmarshal(must(t, 200, "GET", base+"/vehicles/"+v+"/queue", nil), &q))
			require.Lenf(t, q, 1, "round %d: %s's queue on %s", round, v, base)
			assert.Equal(t, "lck", q[0].PackageID.Name)
		}

		// the campaign is finished when its launch found every vehicle queued already
		code, body, err := call("POST", a+"/campaigns/"+camp.ID+"/abort", nil)
		require.NoError(t, err)
		require.Truef(t, code == 200 || code == 409 && bytes.Contains(body, []byte("finished")), "abort: %d %s", code, body)
		for i, r := range reqs {
			must(t, 200, "PUT", ps[i%3]+"/update_requests/"+r.ID+"/cancel", nil)
		}
	}

	// one campaign launched on A, B and C at once is launched once
	for k := 0; k < 5; k++ {
		var camp struct{ ID string }
		require.NoError(t, json.Unmarshal(must(t, 200, "POST", b+"/campaigns", map[string]any{
			"name": fmt.Sprintf("once %d", k), "packageId": pkg}), &camp))
		var wg sync.WaitGroup
		start := make(chan struct{})
		codes := make([]string, 3)
		for i, base := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				code, body, err := call("POST", base+"/campaigns/"+camp.ID+"/launch", nil)
				if assert.NoError(t, err) {
					var e struct{ Code string }
					json.Unmarshal(body, &e)
					codes[i] = fmt.Sprint(code, e.Code)
				}
			}()
		}
		close(start)
		wg.Wait()
		sort.Strings(codes)
		assert.Equal(t, []string{"200", "409already_launched", "409already_launched"}, codes, "campaign %d", k)
		var got struct {
			Groups []struct{ UpdateRequest string }
		}
		require.NoError(t, json.Unmarshal(must(t, 200, "GET", a+"/campaigns/"+camp.ID, nil), &got))
		var reqs []struct{ CampaignID string }
		require.NoError(t, json.Unmarshal(must(t, 200, "GET", c+"/update_requests?limit=10000", nil), &reqs))
		n := 0
		for _, r := range reqs {
			if r.CampaignID == camp.ID {
				n++
			}
		}
		assert.Equal(t, 1, n, "campaign %d has one update request", k)
	}
}

// TestReplicasWriteForAVehicleCreatedOnAnotherReplicaAtOnce: right after a vehicle was created
// through B, A and C at once mint its device token, queue a request for its installed packages,
// attach it to a data plan, install a package on it and count traffic for it; none of it answers 404
// (the writes check the vehicle in their transactions, or in the store when this replica's index does
// not know it yet), and the token minted last works on every replica.
func TestReplicasWriteForAVehicleCreatedOnAnotherReplicaAtOnce(t *testing.T) {
	ps := startReplicas(t, 3)
	a, b, c := ps[0], ps[1], ps[2]
	must(t, 200, "POST", b+"/data_plans", map[string]string{"id": "fleet"})
	must(t, 200, "PUT", b+"/packages/nav/1.0.0", map[string]string{"description": "navigation"})
	for i := 0; i < 20; i++ {
		vin := fmt.Sprintf("WDDNEW%011d", i)
		must(t, 200, "POST", b+"/vehicles", map[string]string{"vin": vin})
		var wg sync.WaitGroup
		tokens := make([]string, 2)
		for k, base := range []string{a, c} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var tok struct{ Token string }
				if body, ok := answers200(t, "POST", base+"/vehicles/"+vin+"/token", nil); ok && assert.NoError(t, json.Unmarshal(body, &tok)) {
					tokens[k] = tok.Token
				}
				answers200(t, "POST", base+"/vehicles/"+vin+"/get_all_packages", nil)
				answers200(t, "PUT", base+"/vehicles/"+vin+"/data_plan", map[string]string{"id": "fleet"})
				answers200(t, "PUT", base+"/vehicles/"+vin+"/package/nav/1.0.0", nil)
				answers200(t, "POST", base+"/vehicles/"+vin+"/traffic", map[string]int{"bytes": 10})
			}()
		}
		wg.Wait()
		// the two mints revoked each other in some order: exactly one token is live
		var history []struct{ RequestID string }
		require.NoError(t, json.Unmarshal(must(t, 200, "GET", b+"/vehicles/"+vin+"/history", nil), &history))
		assert.Len(t, history, 2, "%s: a get-all-packages request from A and one from C", vin)
		live := 0
		for _, tok := range tokens {
			req, _ := http.NewRequest("GET", b+"/vehicle_updates/"+vin, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := client.Do(req)
			require.NoError(t, err)
			res.Body.Close()
			if res.StatusCode == 200 {
				live++
			}
		}
		assert.Equal(t, 1, live, "%s: the token minted last works, the other is revoked", vin)
	}
}
