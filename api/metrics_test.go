package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
)

// scrape reads a /metrics answer with the Prometheus text parser.
func scrape(t *testing.T, url, bearer string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	return fams
}

// value is the value of the family's series with these labels (counter, gauge, or a histogram's count).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.Truef(t, ok, "no metric %s", name)
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no series of %s with %v", name, labels)
	return 0
}

func TestMetricsAreScrapedAndParsed(t *testing.T) {
	srv, hs, call := tokenServer(t, Config{})
	const vin = "WDD00000000000001"
	st, b := call("PUT", "/api/v1/vehicles/"+vin, "")
	require.Equal(t, http.StatusNoContent, st, "%s", b)
	st, b = call("POST", "/api/v1/vehicles/"+vin+"/token", "")
	require.Equal(t, http.StatusOK, st, "%s", b)
	devTok := strings.Split(strings.Split(string(b), `"token":"`)[1], `"`)[0]
	for i := 0; i < 7; i++ {
		req, _ := http.NewRequest("GET", hs.URL+"/api/v1/vehicle_updates/"+vin, nil)
		req.Header.Set("Authorization", "Bearer "+devTok)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	st, b = call("PUT", "/api/v1/packages/nav/1.0.0", `{}`)
	require.Equal(t, http.StatusOK, st, "%s", b)
	st, b = call("POST", "/api/v1/resolve/dry-run", `{"package":{"name":"nav","version":"1.0.0"},"expression":"vin_matches \"^WDD\""}`)
	require.Equal(t, http.StatusOK, st, "%s", b)
	call("GET", "/api/v1/vehicles/NOTAVIN", "")

	_, err := srv.auth.CreateAccount("olga", testPassword, auth.RoleOperator)
	require.NoError(t, err)
	opTok, _, err := srv.auth.CreateToken("olga", "prometheus")
	require.NoError(t, err)
	fams := scrape(t, hs.URL+"/metrics", opTok)

	assert.Equal(t, 7.0, value(t, fams, "sota_device_polls_total", map[string]string{"protocol": "sota"}))
	assert.Equal(t, 7.0, value(t, fams, "sota_http_requests_total", map[string]string{"route": "/api/v1/vehicle_updates/:vin", "method": "GET", "status": "200"}))
	assert.Equal(t, 7.0, value(t, fams, "sota_http_request_duration_seconds", map[string]string{"route": "/api/v1/vehicle_updates/:vin"}))
	assert.Equal(t, dto.MetricType_HISTOGRAM, fams["sota_http_request_duration_seconds"].GetType())
	assert.Equal(t, 1.0, value(t, fams, "sota_http_requests_total", map[string]string{"route": "/api/v1/vehicles/:vin", "status": "400"}))
	assert.Equal(t, 1.0, value(t, fams, "sota_resolve_duration_seconds", map[string]string{"kind": "dry_run"}))
	assert.Greater(t, value(t, fams, "sota_store_size_bytes", nil), 0.0)
	assert.Equal(t, 0.0, value(t, fams, "sota_updates", map[string]string{"status": "pending"}))
	assert.Greater(t, value(t, fams, "go_goroutines", nil), 0.0)
	assert.Contains(t, fams, "process_resident_memory_bytes")
	assert.Contains(t, fams, "sota_chunks_served_total")

	// the main listener serves /metrics to operators and admins only
	_, err = srv.auth.CreateAccount("vic", testPassword, auth.RoleViewer)
	require.NoError(t, err)
	viewer, _, err := srv.auth.CreateToken("vic", "v")
	require.NoError(t, err)
	for tok, want := range map[string]int{"": http.StatusUnauthorized, viewer: http.StatusForbidden} {
		req, _ := http.NewRequest("GET", hs.URL+"/metrics", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, want, res.StatusCode)
	}
}

// With --metrics-listen the main listener has no /metrics and MetricsHandler serves without auth.
func TestMetricsOnASeparateListener(t *testing.T) {
	srv, _, call := tokenServer(t, Config{MetricsSeparate: true})
	st, _ := call("GET", "/metrics", "")
	assert.Equal(t, http.StatusNotFound, st)
	call("GET", "/api/v1/vehicles", "")
	ms := httptest.NewServer(srv.MetricsHandler())
	t.Cleanup(ms.Close)
	fams := scrape(t, ms.URL, "")
	assert.Equal(t, 1.0, value(t, fams, "sota_http_requests_total", map[string]string{"route": "/api/v1/vehicles", "status": "200"}))
}

// A staged campaign's launch shows in the scrape: campaigns by status, and its groups' vehicles by
// update status (the first group released and pending, the later one not yet released); a
// campaign not under way (created) has no group series.
func TestMetricsCampaignGroups(t *testing.T) {
	e := newCoreEnv(t)
	rolloutFleet(e, 20)
	var cp map[string]any
	resp := e.do("POST", "/api/v1/campaigns", map[string]any{"name": "staged", "packageId": pkgID("nav", "2.0.0"),
		"groups": []map[string]any{{"name": "canary", "percent": 25}}, "successThreshold": 100}, &cp)
	require.Equal(t, 200, resp.StatusCode, "%v", cp)
	id := cp["id"].(string)
	var idle map[string]any
	e.do("POST", "/api/v1/campaigns", map[string]any{"name": "idle", "packageId": pkgID("radio", "1.0.0")}, &idle)
	var l map[string]any
	require.Equal(t, 200, e.do("POST", "/api/v1/campaigns/"+id+"/launch", nil, &l).StatusCode, "%v", l)
	c := e.campaign(id)
	require.Len(t, c.Groups, 2)
	canary := c.Groups[0].Vehicles
	require.Greater(t, canary, 0)
	require.Less(t, canary, 20)

	fams := scrape(t, e.srv.URL+"/metrics", "")
	assert.Equal(t, 1.0, value(t, fams, "sota_campaigns", map[string]string{"status": "running"}))
	assert.Equal(t, 1.0, value(t, fams, "sota_campaigns", map[string]string{"status": "created"}))
	g := func(group, status string) float64 {
		return value(t, fams, "sota_campaign_group_vehicles", map[string]string{"campaign": id, "group": group, "status": status})
	}
	assert.Equal(t, float64(canary), g("canary", "pending"))
	assert.Equal(t, 0.0, g("canary", "finished"))
	assert.Equal(t, 0.0, g("rest", "pending"), "a group not released yet has no updates")
	assert.Equal(t, dto.MetricType_GAUGE, fams["sota_campaign_group_vehicles"].GetType())
	for _, m := range fams["sota_campaign_group_vehicles"].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "campaign" {
				assert.Equal(t, id, lp.GetValue(), "only running and paused campaigns have group series")
			}
		}
	}
	assert.Len(t, fams["sota_campaign_group_vehicles"].GetMetric(), 2*5)
}
