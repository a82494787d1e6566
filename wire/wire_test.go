package wire

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A device accepts a wake-up only when the server's key signed exactly that vehicle, nonce and time.
func TestWakeupVerifiesOnlyWhatTheServerSigned(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	otherPub, otherKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	w := SignWakeup(key, "WDD1234567890", "c0ffee", "2026-12-06T09:00:00Z")
	assert.True(t, VerifyWakeup(pub, w))
	assert.False(t, VerifyWakeup(otherPub, w), "another server's key")
	assert.False(t, VerifyWakeup(pub, SignWakeup(otherKey, w.VIN, w.Nonce, w.IssuedAt)), "signed by another key")
	for name, change := range map[string]func(*Wakeup){
		"vin":       func(w *Wakeup) { w.VIN = "WDD1234567891" },
		"nonce":     func(w *Wakeup) { w.Nonce = "c0ffef" },
		"issuedAt":  func(w *Wakeup) { w.IssuedAt = "2026-12-06T09:00:01Z" },
		"signature": func(w *Wakeup) { w.Signature = "not base64!" },
		"empty":     func(w *Wakeup) { w.Signature = "" },
	} {
		forged := w
		change(&forged)
		assert.Falsef(t, VerifyWakeup(pub, forged), "changed %s", name)
	}
	assert.False(t, VerifyWakeup(pub[:10], w), "a truncated key")

	// the JSON a device receives round-trips and still verifies
	b, err := json.Marshal(w)
	require.NoError(t, err)
	var got Wakeup
	require.NoError(t, json.Unmarshal(b, &got))
	assert.True(t, VerifyWakeup(pub, got))
	assert.JSONEq(t, `{"vin":"WDD1234567890","nonce":"c0ffee","issuedAt":"2026-12-06T09:00:00Z","signature":"`+w.Signature+`"}`, string(b))
}

// Codes 0 and 1 are success, every other code fails an update; each code has its original name.
func TestResultCodesAndNames(t *testing.T) {
	require.Len(t, ResultNames, ResultGeneralError+1)
	assert.Equal(t, "OK", ResultNames[ResultOK])
	assert.Equal(t, "USER_DECLINED", ResultNames[ResultUserDeclined])
	assert.Equal(t, "GENERAL_ERROR", ResultNames[ResultGeneralError])
	for code := range ResultNames {
		assert.Equalf(t, code == ResultOK || code == ResultAlreadyProcessed, ResultSuccess(code), "code %d", code)
	}
}

// Only pending and in-flight updates are still to be delivered.
func TestUpdateStatusActive(t *testing.T) {
	for st, active := range map[UpdateStatus]bool{Pending: true, InFlight: true, Finished: false, Failed: false, Canceled: false} {
		assert.Equalf(t, active, st.Active(), "%s", st)
	}
}
