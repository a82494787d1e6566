package main

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
)

// A webhook delivery that the receiver refused survives a kill -9 of the real sotad binary and is
// delivered, with the same id and a valid signature, once the server is back and the receiver works.
func TestWebhookDeliverySurvivesKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the sotad binary")
	}
	const secret = "crash-webhook-secret"
	var mu sync.Mutex
	up := false
	var attempts []string // delivery ids seen
	var delivered []map[string]any
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !hmac.Equal([]byte(r.Header.Get("X-SOTA-Signature")), []byte(engine.Sign(secret, body))) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		attempts = append(attempts, r.Header.Get("X-SOTA-Delivery"))
		if !up {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		delivered = append(delivered, m)
	}))
	t.Cleanup(recv.Close)

	bin := buildSotad(t)
	data := t.TempDir()
	p := startSotad(t, bin, data)
	st, b, err := call("POST", p.url+"/api/v1/webhooks", map[string]any{"url": recv.URL, "events": []string{"vehicle.created"}, "secret": secret})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st, "%s", b)
	const vin = "WDD00000000000777"
	st, _, err = call("PUT", p.url+"/api/v1/vehicles/"+vin, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, st)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(attempts) >= 1 }, 20*time.Second, 20*time.Millisecond,
		"the first attempt reaches the receiver")
	p.kill()
	mu.Lock()
	first := attempts[0]
	up = true
	mu.Unlock()

	p = startSotad(t, bin, data)
	defer p.kill()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(delivered) == 1 }, 30*time.Second, 50*time.Millisecond,
		"the delivery is sent again after the restart:\n%s", p.logs)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, first, delivered[0]["id"], "the same delivery, so the receiver can drop duplicates")
	assert.Equal(t, "vehicle.created", delivered[0]["event"])
	assert.Equal(t, vin, delivered[0]["data"].(map[string]any)["vin"])
}
