package engine

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// clock is an injectable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestService(t testing.TB, o Options) (*Service, *clock) {
	t.Helper()
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	o.DataDir = dir
	o.Now = c.Now
	res, err := resolver.New(db)
	require.NoError(t, err)
	s, err := New(db, res, o)
	require.NoError(t, err)
	return s, c
}

func pkg(name, version string) resolver.PackageID {
	return resolver.PackageID{Name: name, Version: version}
}

// queueDirect persists a request for the given VINs (each installing just the package).
func queueDirect(t testing.TB, s *Service, p resolver.PackageID, priority int, until *time.Time, vins ...string) *UpdateRequest {
	t.Helper()
	r := &UpdateRequest{ID: newUUIDs(1)[0], Kind: KindInstall, PackageID: &p, Priority: priority, ValidUntil: until, CreatedAt: s.now()}
	var ts []resolver.Target
	for _, v := range vins {
		ts = append(ts, resolver.Target{VIN: v, Install: []resolver.PackageID{p}})
	}
	require.NoError(t, s.persist(r, ts))
	return r
}

const vinA = "WDD11111111111111"
const vinB = "WDD22222222222222"

func packagesOf(us []Update) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.PackageID.String()+":"+string(u.Status))
	}
	return out
}

func TestDeliveryOrderInFlightThenPriorityThenCreation(t *testing.T) {
	s, c := newTestService(t, Options{})
	queueDirect(t, s, pkg("low", "1.0.0"), 20, nil, vinA)
	c.Add(time.Second)
	queueDirect(t, s, pkg("old-high", "1.0.0"), 1, nil, vinA)
	c.Add(time.Second)
	queueDirect(t, s, pkg("default-early", "1.0.0"), DefaultPriority, nil, vinA)
	c.Add(time.Second)
	queueDirect(t, s, pkg("new-high", "1.0.0"), 1, nil, vinA)
	c.Add(time.Second)
	queueDirect(t, s, pkg("default-late", "1.0.0"), DefaultPriority, nil, vinA)
	c.Add(time.Second)
	running := queueDirect(t, s, pkg("running", "1.0.0"), 50, nil, vinA)

	us, err := s.Queue(vinA)
	require.NoError(t, err)
	assert.Equal(t, []string{"running-1.0.0:pending", "old-high-1.0.0:pending", "new-high-1.0.0:pending",
		"default-early-1.0.0:pending", "default-late-1.0.0:pending", "low-1.0.0:pending"}[1:], packagesOf(us)[:5], "pending: priority, then creation time")

	// The lowest-priority update goes in flight: it is delivered first from now on.
	var id string
	for _, u := range us {
		if u.RequestID == running.ID {
			id = u.ID
		}
	}
	require.NoError(t, s.db.Update(func(tx store.Txn) error {
		_, err := s.setStatus(tx, vinA, id, InFlight, nil, "")
		return err
	}))
	us, err = s.Queue(vinA)
	require.NoError(t, err)
	assert.Equal(t, []string{"running-1.0.0:inFlight", "old-high-1.0.0:pending", "new-high-1.0.0:pending",
		"default-early-1.0.0:pending", "default-late-1.0.0:pending", "low-1.0.0:pending"}, packagesOf(us))
	next, ok, _, err := s.NextUpdate(vinA)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "running", next.PackageID.Name)

	// A finished update leaves the queue but stays in the history.
	require.NoError(t, s.db.Update(func(tx store.Txn) error {
		_, err := s.setStatus(tx, vinA, id, Finished, new(int), "ok")
		return err
	}))
	next, ok, _, err = s.NextUpdate(vinA)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "old-high", next.PackageID.Name)
	h, err := s.History(vinA)
	require.NoError(t, err)
	assert.Len(t, h, 6)
	assert.Equal(t, "low", h[0].PackageID.Name, "history is oldest first")
	assert.Equal(t, Finished, h[5].Status)
}

func TestOversizeUpdateWaitsForACycleWithRoom(t *testing.T) {
	s, c := newTestService(t, Options{})
	require.NoError(t, s.db.Update(func(tx store.Txn) error {
		require.NoError(t, s.setBinary(tx, Binary{Name: "big", Version: "1.0.0", SHA256: "aa", Size: 1500}))
		return s.setBinary(tx, Binary{Name: "small", Version: "1.0.0", SHA256: "bb", Size: 300})
	}))
	_, err := s.AddDataPlan("fleet-basic")
	require.NoError(t, err)
	_, err = s.AddBillingCycle("fleet-basic", c.Now().Add(-time.Hour), 1000)
	require.NoError(t, err)
	require.NoError(t, s.db.Update(func(tx store.Txn) error { _, err := s.setVehiclePlan(tx, vinA, "FLEET-basic"); return err }))

	queueDirect(t, s, pkg("big", "1.0.0"), 1, nil, vinA)
	c.Add(time.Second)
	queueDirect(t, s, pkg("small", "1.0.0"), 5, nil, vinA)

	next, ok, oversize, err := s.NextUpdate(vinA)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "small", next.PackageID.Name, "the higher-priority update does not fit in 1000 bytes and is skipped")
	assert.True(t, oversize)

	// 900 bytes used: nothing fits any more.
	require.NoError(t, s.db.Update(func(tx store.Txn) error { _, err := s.addTraffic(tx, vinA, 900, c.Now(), false); return err }))
	_, ok, oversize, err = s.NextUpdate(vinA)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.True(t, oversize)
	n, err := s.Xmit(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, n, "a vehicle whose updates are all oversize is not woken")

	// A new cycle with room becomes active: the big update is delivered first again.
	_, err = s.AddBillingCycle("fleet-basic", c.Now().Add(24*time.Hour), 2000)
	require.NoError(t, err)
	c.Add(25 * time.Hour)
	next, ok, _, err = s.NextUpdate(vinA)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "big", next.PackageID.Name)
}

func TestPurgeFailsExpiredPendingUpdatesOnly(t *testing.T) {
	s, c := newTestService(t, Options{BatchSize: 3})
	end := c.Now().Add(time.Hour)
	vins := []string{vinA, vinB, "WDD33333333333333", "WDD44444444444444", "WDD55555555555555"}
	r := queueDirect(t, s, pkg("nav", "2.0.0"), 10, &end, vins...)
	queueDirect(t, s, pkg("radio", "1.0.0"), 10, nil, vinA)
	us, err := s.Queue(vinB)
	require.NoError(t, err)
	require.NoError(t, s.db.Update(func(tx store.Txn) error {
		_, err := s.setStatus(tx, vinB, us[0].ID, InFlight, nil, "")
		return err
	}))

	n, err := s.Purge()
	require.NoError(t, err)
	assert.Equal(t, 0, n, "inside the validity period nothing is purged")

	c.Add(2 * time.Hour)
	_, ok, _, err := s.NextUpdate(vinA)
	require.NoError(t, err)
	require.True(t, ok)
	n, err = s.Purge()
	require.NoError(t, err)
	assert.Equal(t, 4, n, "the four pending updates expired; the in-flight one is untouched")
	got, err := s.Request(r.ID)
	require.NoError(t, err)
	assert.Equal(t, Counts{InFlight: 1, Failed: 4}, *got.Counts)
	failed, total, err := s.RequestVehicles(r.ID, Failed, Page{})
	require.NoError(t, err)
	assert.Equal(t, 4, total)
	for _, f := range failed {
		assert.Equal(t, "expired", f.ResultText)
		assert.Equal(t, c.Now(), f.UpdatedAt, "failure time is the purge time")
	}
	n, err = s.Purge()
	require.NoError(t, err)
	assert.Equal(t, 0, n)
	q, err := s.Queue(vinA)
	require.NoError(t, err)
	assert.Equal(t, []string{"radio-1.0.0:pending"}, packagesOf(q))
}

func TestCancelAndSkipDuplicates(t *testing.T) {
	s, _ := newTestService(t, Options{BatchSize: 2})
	p := pkg("nav", "2.0.0")
	r1 := queueDirect(t, s, p, 10, nil, vinA, vinB, "WDD33333333333333")
	q, err := s.Queue(vinA)
	require.NoError(t, err)
	require.NoError(t, s.db.Update(func(tx store.Txn) error {
		_, err := s.setStatus(tx, vinA, q[0].ID, InFlight, nil, "")
		return err
	}))
	r2 := queueDirect(t, s, p, 10, nil, vinA, vinB, "WDD44444444444444")
	assert.Equal(t, 1, r2.Vehicles)
	assert.Equal(t, 2, r2.Skipped, "vehicles with this version pending or in flight are skipped")

	n, err := s.Cancel(r1.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	got, err := s.Request(r1.ID)
	require.NoError(t, err)
	assert.Equal(t, Counts{InFlight: 1, Canceled: 2}, *got.Counts)
	assert.Equal(t, StateCanceled, got.State)

	r3 := queueDirect(t, s, p, 10, nil, vinA, vinB)
	assert.Equal(t, 1, r3.Vehicles, "after the cancel vinB can be queued again; vinA is still in flight")
	_, err = s.Cancel("9b2f8f0e-0000-4000-8000-000000000000")
	assert.ErrorContains(t, err, "missing_update_request")
}

func TestWakeupsAreSignedAndRespectContactAndReconnectInterval(t *testing.T) {
	var mu sync.Mutex
	var got []Wakeup
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var wk Wakeup
		if json.Unmarshal(b, &wk) == nil {
			mu.Lock()
			got = append(got, wk)
			mu.Unlock()
		}
	}))
	defer recv.Close()
	s, c := newTestService(t, Options{WakeupURL: recv.URL, ReconnectInterval: 10 * time.Minute})
	queueDirect(t, s, pkg("nav", "2.0.0"), 10, nil, vinA, vinB, "WDD33333333333333")
	s.Contact(vinB)

	n, err := s.Xmit(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the connected vehicle is skipped")
	require.Len(t, got, 2)
	assert.ElementsMatch(t, []string{vinA, "WDD33333333333333"}, []string{got[0].VIN, got[1].VIN}, "sent at once, in any order")
	for _, w := range got {
		assert.True(t, wire.VerifyWakeup(s.PublicKey(), w))
		assert.Len(t, w.Nonce, 32)
	}
	forged := got[0]
	forged.VIN = vinB
	assert.False(t, wire.VerifyWakeup(s.PublicKey(), forged), "the signature covers the VIN")

	n, err = s.Xmit(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 0, n, "woken within the reconnect interval")
	c.Add(11 * time.Minute)
	n, err = s.Xmit(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, n, "after the reconnect interval, and vinB's contact is old")
}

func TestWakeupKeyIsKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	res, err := resolver.New(db)
	require.NoError(t, err)
	s1, err := New(db, res, Options{DataDir: dir})
	require.NoError(t, err)
	k1 := append(ed25519.PublicKey(nil), s1.PublicKey()...)
	require.NoError(t, db.Close())
	db, err = storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	defer db.Close()
	res, err = resolver.New(db)
	require.NoError(t, err)
	s2, err := New(db, res, Options{DataDir: dir})
	require.NoError(t, err)
	assert.Equal(t, k1, s2.PublicKey())
}

func TestUpdateRecordCodecRoundTrip(t *testing.T) {
	code := 3
	for _, r := range []updRec{
		{Req: newUUIDs(1)[0], Status: Pending, Created: 1, Updated: 2},
		{Req: newUUIDs(1)[0], Status: Failed, Created: -5, Updated: 1 << 62, ResultCode: &code, ResultText: "flash write failed",
			Install: []resolver.PackageID{{Name: "maps", Version: "1.0.0"}, {Name: "nav", Version: "2.0.0-rc.1+b7"}}},
	} {
		b := encodeUpd(&r)
		var got updRec
		require.NoError(t, decodeUpd(b, &got))
		assert.Equal(t, r, got)
		for i := 0; i < len(b); i++ {
			var bad updRec
			assert.Errorf(t, decodeUpd(b[:i], &bad), "truncated at %d", i)
		}
	}
}

func TestUpdateIDsAreNameBasedUUIDs(t *testing.T) {
	req := "3f1c0a52-5d7e-4c4e-9a39-2f9a1b7c0d11"
	a := updateIDFor(req, vinA)
	assert.Equal(t, a, updateIDFor(req, vinA), "derived, so the status index needs no value")
	assert.NotEqual(t, a, updateIDFor(req, vinB))
	assert.NotEqual(t, a, updateIDFor("3f1c0a52-5d7e-4c4e-9a39-2f9a1b7c0d12", vinA))
	assert.True(t, validUUID(a))
	assert.Equal(t, byte('5'), a[14], "version 5")
}

// TestUploadsLeftByAKilledServerAreRemovedAtStart: an upload cut short by kill -9 leaves its
// temporary file; the next start removes it and keeps the stored binaries.
func TestUploadsLeftByAKilledServerAreRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	db, err := storetest.OpenDir(t, dir+"/db")
	require.NoError(t, err)
	defer db.Close()
	res, err := resolver.New(db)
	require.NoError(t, err)
	s, err := New(db, res, Options{DataDir: dir})
	require.NoError(t, err)
	sum, _, err := s.put(strings.NewReader("kept"), "", 1<<20)
	require.NoError(t, err)
	left := filepath.Join(dir, "blobs", "tmp", "upload-123")
	require.NoError(t, os.WriteFile(left, []byte("half an upload"), 0o600))

	_, err = New(db, res, Options{DataDir: dir})
	require.NoError(t, err)
	assert.NoFileExists(t, left)
	assert.FileExists(t, filepath.Join(dir, "blobs", "sha256", sum.sha256[:2], sum.sha256), "stored binaries stay")
}
