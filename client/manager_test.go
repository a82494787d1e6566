package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/client"
	"sota/engine"
	"sota/resolver"
	"sota/wire"
)

func newManager(t *testing.T, srv *server, vin string) *client.Manager {
	return &client.Manager{Dir: t.TempDir(), Client: &client.Client{Server: srv.url(), VIN: vin, Token: srv.token(vin),
		Backoff: client.Backoff{Base: time.Millisecond, Max: 10 * time.Millisecond, Attempts: 3}}}
}

func smallFleet(t *testing.T, srv *server) (resolver.PackageID, []byte) {
	id := resolver.PackageID{Name: "radio", Version: "1.0.0"}
	b := randomBytes(seeded(), 3000)
	srv.upload(id, b)
	srv.admin("POST", "/filters", map[string]any{"name": "all", "expression": "TRUE"}, nil)
	srv.admin("PUT", "/packages/radio/1.0.0/filter/all", nil, nil)
	srv.admin("PUT", "/vehicles/"+vinOf(1), nil, nil)
	return id, b
}

// A configured decline is reported as USER_DECLINED: the update fails and nothing is installed.
func TestManagerDeclines(t *testing.T) {
	srv := newServer(t, 1024)
	smallFleet(t, srv)
	srv.admin("POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": "radio", "version": "1.0.0"}}, nil)
	m := newManager(t, srv, vinOf(1))
	m.Decline = true
	out, err := m.RunOnce(context.Background())
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, wire.ResultUserDeclined, out[0].Code)
	assert.Equal(t, "radio-1.0.0 failed", out[0].Message)
	var hist []struct {
		Status     string
		ResultCode int
	}
	srv.admin("GET", "/vehicles/"+vinOf(1)+"/history", nil, &hist)
	require.Len(t, hist, 1)
	assert.Equal(t, "failed", hist[0].Status)
	assert.Equal(t, 13, hist[0].ResultCode)
	installed, err := m.Installed()
	require.NoError(t, err)
	assert.Empty(t, installed)
}

// The manager installs, then answers get-all-packages with what it installed.
func TestManagerInstallsAndAnswersGetAllPackages(t *testing.T) {
	srv := newServer(t, 1024)
	id, b := smallFleet(t, srv)
	srv.admin("POST", "/update_requests", map[string]any{"packageId": id}, nil)
	m := newManager(t, srv, vinOf(1))
	var last int64
	m.Progress = func(_ string, done, total int64) {
		assert.GreaterOrEqual(t, done, last)
		assert.EqualValues(t, 3000, total)
		last = done
	}
	out, err := m.RunOnce(context.Background())
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, "radio-1.0.0 success", out[0].Message)
	assert.EqualValues(t, 3000, last)
	got, err := os.ReadFile(m.PackagePath(id))
	require.NoError(t, err)
	assert.Equal(t, b, got)

	// the server forgets the vehicle's packages; get-all-packages brings them back from the device
	srv.admin("PUT", "/vehicles/"+vinOf(1)+"/packages", map[string]any{"packages": []any{}}, nil)
	srv.admin("POST", "/vehicles/"+vinOf(1)+"/get_all_packages", nil, nil)
	out, err = m.RunOnce(context.Background())
	require.NoError(t, err)
	assert.Empty(t, out)
	var pkgs []resolver.PackageID
	srv.admin("GET", "/vehicles/"+vinOf(1)+"/package", nil, &pkgs)
	assert.Equal(t, []resolver.PackageID{id}, pkgs)
}

// DEV_WAKEUP: a wake-up signed by the server makes Run connect at once; a forged one, or one for
// another vehicle, is ignored.
func TestManagerWakeups(t *testing.T) {
	srv := newServer(t, 1024)
	id, _ := smallFleet(t, srv)
	m := newManager(t, srv, vinOf(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, time.Hour) }() // the first round finds nothing; then only a wake-up helps

	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	forged := engine.Wakeup{VIN: vinOf(1), Nonce: "00", IssuedAt: time.Now().UTC().Format(time.RFC3339)}
	forged.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(forger, wire.WakeupMessage(forged.VIN, forged.Nonce, forged.IssuedAt)))
	assert.False(t, m.Wakeup(ctx, forged), "a forged wake-up is ignored")
	genuine := srv.engine().SignWakeup(vinOf(1))
	tampered := genuine
	tampered.Nonce = "ff"
	assert.False(t, m.Wakeup(ctx, tampered), "a tampered wake-up is ignored")
	other := srv.engine().SignWakeup(vinOf(2))
	assert.False(t, m.Wakeup(ctx, other), "another vehicle's wake-up is ignored")

	// the first round has polled (the server saw the vehicle) before the update is queued
	require.Eventually(t, func() bool {
		var v struct{ LastSeen *time.Time }
		srv.admin("GET", "/vehicles/"+vinOf(1), nil, &v)
		return v.LastSeen != nil
	}, 10*time.Second, 5*time.Millisecond)
	srv.admin("POST", "/update_requests", map[string]any{"packageId": id}, nil)
	time.Sleep(50 * time.Millisecond)
	installed, _ := m.Installed()
	assert.Empty(t, installed, "nothing happens without a valid wake-up")
	require.True(t, m.Wakeup(ctx, genuine))
	require.Eventually(t, func() bool {
		installed, _ := m.Installed()
		return len(installed) == 1
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}

// An update that requests confirmation asks Confirm; one that does not is installed without asking.
func TestManagerAsksForConfirmation(t *testing.T) {
	srv := newServer(t, 1024)
	id, _ := smallFleet(t, srv)
	srv.admin("POST", "/update_requests", map[string]any{"packageId": id, "requestConfirmation": true}, nil)
	m := newManager(t, srv, vinOf(1))
	var asked []string
	m.Confirm = func(ua engine.UpdateAvailable) bool {
		asked = append(asked, ua.UpdateID)
		return false
	}
	out, err := m.RunOnce(context.Background())
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, []string{out[0].UpdateID}, asked)
	assert.Equal(t, wire.ResultUserDeclined, out[0].Code)

	other := resolver.PackageID{Name: "maps", Version: "1.0.0"}
	srv.upload(other, randomBytes(seeded(), 500))
	srv.admin("PUT", "/packages/maps/1.0.0/filter/all", nil, nil)
	srv.admin("POST", "/update_requests", map[string]any{"packageId": other}, nil)
	out, err = m.RunOnce(context.Background())
	require.NoError(t, err)
	require.Len(t, out, 1)
	assert.Equal(t, wire.ResultOK, out[0].Code)
	assert.Len(t, asked, 1, "not asked again")
}
