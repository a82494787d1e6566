package api

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/resolver"
)

// receiver is a local webhook receiver that checks every signature with the shared secret.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    []map[string]any
	events []string
	fail   map[string]int // event -> how many more deliveries to answer 500
	bad    int            // deliveries whose signature did not verify
	calls  int
}

func newReceiver(t *testing.T, secret string) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: secret, fail: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if !hmac.Equal([]byte(req.Header.Get("X-SOTA-Signature")), []byte(engine.Sign(r.secret, body))) {
			r.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ev := req.Header.Get("X-SOTA-Event")
		if r.fail[ev] > 0 {
			r.fail[ev]--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		assert.Equal(t, ev, m["event"])
		r.got = append(r.got, m)
		r.events = append(r.events, ev)
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func TestWebhooksAreSignedRetriedAndLogged(t *testing.T) {
	srv, _, call := tokenServer(t, Config{})
	stop := srv.deps.Engine.StartWebhooks(50 * time.Millisecond)
	t.Cleanup(stop)
	rec, rs := newReceiver(t, "shared-secret-1")
	rec.fail["vehicle.deleted"] = 1 // the first delivery of this event gets a 500

	st, b := call("POST", "/api/v1/webhooks", `{"url":"`+rs.URL+`/hook","events":["vehicle.created","vehicle.deleted","update.canceled"],"secret":"shared-secret-1"}`)
	require.Equal(t, http.StatusOK, st, "%s", b)
	assert.NotContains(t, string(b), "shared-secret-1", "the secret is not shown back")
	var wh struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &wh))
	// a second webhook with another secret, for another event, sees nothing of these
	other, os := newReceiver(t, "another-secret")
	st, _ = call("POST", "/api/v1/webhooks", `{"url":"`+os.URL+`","events":["update.finished"],"secret":"another-secret"}`)
	require.Equal(t, http.StatusOK, st)

	for _, bad := range []string{
		`{"url":"ftp://x","events":["vehicle.created"],"secret":"shared-secret-1"}`,
		`{"url":"` + rs.URL + `","events":["vehicle.exploded"],"secret":"shared-secret-1"}`,
		`{"url":"` + rs.URL + `","events":["vehicle.created"],"secret":"short"}`,
		`{"url":"` + rs.URL + `","events":[],"secret":"shared-secret-1"}`,
	} {
		st, _ = call("POST", "/api/v1/webhooks", bad)
		assert.Equal(t, http.StatusBadRequest, st, bad)
	}

	const vin = "WDD00000000000009"
	st, _ = call("PUT", "/api/v1/vehicles/"+vin, "")
	require.Equal(t, http.StatusNoContent, st)
	st, _ = call("DELETE", "/api/v1/vehicles/"+vin, "")
	require.Equal(t, http.StatusOK, st)

	require.Eventually(t, func() bool { return len(rec.received()) == 2 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"vehicle.created", "vehicle.deleted"}, rec.received())
	rec.mu.Lock()
	assert.Equal(t, 0, rec.bad, "every signature verified")
	assert.Equal(t, 3, rec.calls, "the 500 was retried once")
	data := rec.got[0]["data"].(map[string]any)
	assert.Equal(t, vin, data["vin"])
	assert.NotEmpty(t, rec.got[0]["id"])
	rec.mu.Unlock()
	assert.Empty(t, other.received())

	// the receiver has the delivery before the dispatcher records the answer: wait for the record
	var ds []engine.Delivery
	require.Eventually(t, func() bool {
		st, b := call("GET", "/api/v1/webhooks/"+wh.ID+"/deliveries", "")
		ds = nil
		return st == http.StatusOK && json.Unmarshal(b, &ds) == nil && len(ds) == 2 && ds[0].State != "pending"
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "vehicle.deleted", ds[0].Event, "newest first")
	assert.Equal(t, "delivered", ds[0].State)
	assert.Equal(t, 2, ds[0].Attempts)
	assert.Equal(t, 200, ds[0].LastStatus)
	assert.Equal(t, 1, ds[1].Attempts)

	st, b = call("GET", "/api/v1/webhooks", "")
	require.Equal(t, http.StatusOK, st)
	assert.NotContains(t, string(b), "shared-secret-1")
	st, _ = call("DELETE", "/api/v1/webhooks/"+wh.ID, "")
	require.Equal(t, http.StatusOK, st)
	st, _ = call("GET", "/api/v1/webhooks/"+wh.ID+"/deliveries", "")
	assert.Equal(t, http.StatusNotFound, st)
}

// Campaign events: launching a campaign releases its group (campaign.released); aborting it sends
// campaign.aborted.
func TestCampaignWebhookEvents(t *testing.T) {
	srv, _, call := tokenServer(t, Config{})
	stop := srv.deps.Engine.StartWebhooks(50 * time.Millisecond)
	t.Cleanup(stop)
	rec, rs := newReceiver(t, "campaign-secret")
	st, b := call("POST", "/api/v1/webhooks", `{"url":"`+rs.URL+`","events":["campaign.released","campaign.aborted","campaign.paused","campaign.finished"],"secret":"campaign-secret"}`)
	require.Equal(t, http.StatusOK, st, "%s", b)

	for _, c := range [][3]string{
		{"PUT", "/api/v1/vehicles/WDD00000000000001", ""},
		{"PUT", "/api/v1/vehicles/WDD00000000000002", ""},
		{"POST", "/api/v1/filters", `{"name":"everyone","expression":"vin_matches \"^WDD\""}`},
	} {
		st, b := call(c[0], c[1], c[2])
		require.Truef(t, st/100 == 2, "%v: %d %s", c, st, b)
	}
	st, b = call("PUT", "/api/v1/packages/nav/2.0.0", `{}`)
	require.Equal(t, http.StatusOK, st, "%s", b)
	_, err := srv.deps.Engine.UploadBinary(resolver.PackageID{Name: "nav", Version: "2.0.0"}, strings.NewReader("firmware"), engine.Upload{})
	require.NoError(t, err)
	st, b = call("PUT", "/api/v1/packages/nav/2.0.0/filter/everyone", "")
	require.Equal(t, http.StatusOK, st, "%s", b)
	st, b = call("POST", "/api/v1/campaigns", `{"name":"spring","packageId":{"name":"nav","version":"2.0.0"}}`)
	require.Equal(t, http.StatusOK, st, "%s", b)
	var cp struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &cp))
	st, b = call("POST", "/api/v1/campaigns/"+cp.ID+"/launch", "")
	require.Equal(t, http.StatusOK, st, "%s", b)
	require.Eventually(t, func() bool { return len(rec.received()) == 1 }, 10*time.Second, 20*time.Millisecond)
	st, b = call("POST", "/api/v1/campaigns/"+cp.ID+"/abort", "")
	require.Equal(t, http.StatusOK, st, "%s", b)
	require.Eventually(t, func() bool { return len(rec.received()) == 2 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"campaign.released", "campaign.aborted"}, rec.received())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, 0, rec.bad)
	data := rec.got[0]["data"].(map[string]any)
	assert.Equal(t, cp.ID, data["campaignId"])
	assert.Equal(t, 2.0, data["vehicles"])
}
