package api

import (
	"bytes"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
)

// wakeups records the VINs the server wakes (the SMS gateway we do not own).
type wakeups struct {
	mu   sync.Mutex
	vins []string
}

func (w *wakeups) got(vin string) { w.mu.Lock(); w.vins = append(w.vins, vin); w.mu.Unlock() }

// take returns the VINs woken since the last call, sorted.
func (w *wakeups) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := append([]string{}, w.vins...)
	w.vins = nil
	sort.Strings(out)
	return out
}

// xmit runs QUEUE_INITIATE_XMIT and returns the woken VINs; the answer's count must agree.
func (e *coreEnv) xmit(w *wakeups) []string {
	e.t.Helper()
	var out map[string]any
	resp := e.do("POST", "/api/v1/update_requests/xmit", nil, &out)
	require.Equal(e.t, 200, resp.StatusCode)
	vins := w.take()
	require.Equal(e.t, float64(len(vins)), out["woken"])
	return vins
}

func (e *coreEnv) purge() float64 {
	e.t.Helper()
	var out map[string]any
	resp := e.do("POST", "/api/v1/update_requests/purge", nil, &out)
	require.Equal(e.t, 200, resp.StatusCode)
	return out["purged"].(float64)
}

// onlyFor registers packages whose one filter selects just vin.
func (e *coreEnv) onlyFor(vin string, names ...string) {
	e.t.Helper()
	filter := "only" + vin[len(vin)-4:]
	e.ok("POST", "/api/v1/filters", map[string]any{"name": filter, "expression": `vin_matches "^` + vin + `$"`})
	for _, n := range names {
		e.ok("PUT", "/api/v1/packages/"+n+"/1.0.0", map[string]any{})
		e.binaries(pkgID(n, "1.0.0"))
		e.ok("PUT", "/api/v1/packages/"+n+"/1.0.0/filter/"+filter, nil)
	}
}

func (e *coreEnv) queueOne(name string, extra map[string]any) string {
	e.t.Helper()
	body := map[string]any{"packageId": pkgID(name, "1.0.0")}
	for k, v := range extra {
		body[k] = v
	}
	out := e.queueReq(body)
	require.Equal(e.t, 1.0, out["vehicles"], name)
	return out["id"].(string)
}

func names(q []map[string]any) []string {
	out := []string{}
	for _, u := range q {
		out = append(out, u["packageId"].(map[string]any)["name"].(string)+":"+u["status"].(string))
	}
	return out
}

// Delivery order through the real queue: in flight first, then pending by priority (lower first,
// default 10), then creation time.
func TestCoreDeliveryOrder(t *testing.T) {
	c := &testClock{t: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	e := newCoreEnvWith(t, engine.Options{Now: c.Now})
	vin := testVIN(1)
	e.ok("PUT", "/api/v1/vehicles/"+vin, nil)
	e.onlyFor(vin, "low", "old-high", "default-early", "new-high", "default-late", "urgent")

	e.queueOne("low", map[string]any{"priority": 20})
	c.Add(time.Second)
	e.queueOne("old-high", map[string]any{"priority": 1})
	c.Add(time.Second)
	e.queueOne("default-early", nil)
	c.Add(time.Second)
	e.queueOne("new-high", map[string]any{"priority": 1})
	c.Add(time.Second)
	late := e.queueOne("default-late", map[string]any{"priority": 10})

	q := e.vehicleQueue(vin)
	assert.Equal(t, []string{"old-high:pending", "new-high:pending", "default-early:pending", "default-late:pending", "low:pending"}, names(q))
	assert.Equal(t, []any{1.0, 1.0, 10.0, 10.0, 20.0}, []any{q[0]["priority"], q[1]["priority"], q[2]["priority"], q[3]["priority"], q[4]["priority"]})
	assert.Equal(t, "2025-06-01T08:00:01Z", q[0]["createdAt"])
	assert.Equal(t, "2025-06-01T08:00:03Z", q[1]["createdAt"])
	assert.Equal(t, []any{pkgID("old-high", "1.0.0")}, q[0]["install"])

	// An update in flight comes first whatever its priority; a newer urgent one waits behind it.
	var lateUpd string
	for _, u := range q {
		if u["requestId"] == late {
			lateUpd = u["updateId"].(string)
		}
	}
	e.setStatus(vin, lateUpd, engine.InFlight)
	c.Add(time.Second)
	e.queueOne("urgent", map[string]any{"priority": 0})
	q = e.vehicleQueue(vin)
	assert.Equal(t, []string{"default-late:inFlight", "urgent:pending", "old-high:pending", "new-high:pending", "default-early:pending", "low:pending"}, names(q))
	next, ok, _, err := e.deps.Engine.NextUpdate(vin)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, lateUpd, next.ID, "QUEUE_GET_NEXT_SOFTWARE_UPDATE returns the in-flight update")

	// Finished, it leaves the queue (and stays in the history).
	e.finish(vin, lateUpd, engine.Finished, 0, "ok")
	q = e.vehicleQueue(vin)
	assert.Equal(t, []string{"urgent:pending", "old-high:pending", "new-high:pending", "default-early:pending", "low:pending"}, names(q))
	next, _, _, err = e.deps.Engine.NextUpdate(vin)
	require.NoError(t, err)
	assert.Equal(t, "urgent", next.PackageID.Name)
	var h []map[string]any
	e.do("GET", "/api/v1/vehicles/"+vin+"/history", nil, &h)
	assert.Len(t, h, 6)
}

// The validity period: an update is not delivered (nor its vehicle woken) before its start; after its
// end the purge marks it failed with "expired" and the purge time; a period already over is refused
// (400) and queues nothing.
func TestCoreValidityPeriodAndPurge(t *testing.T) {
	c := &testClock{t: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	w := &wakeups{}
	e := newCoreEnvWith(t, engine.Options{Now: c.Now, WakeupURL: newWakeupReceiver(t, w.got)})
	v1, v2, v3 := testVIN(1), testVIN(2), testVIN(3)
	for _, v := range []string{v1, v2, v3} {
		e.ok("PUT", "/api/v1/vehicles/"+v, nil)
	}
	e.onlyFor(v1, "tomorrow")
	e.onlyFor(v2, "now")
	e.onlyFor(v3, "bygone")

	tomorrow := e.queueOne("tomorrow", map[string]any{"periodOfValidity": "2025-06-02T08:00:00Z/2025-06-03T08:00:00Z"})
	now := e.queueOne("now", map[string]any{"periodOfValidity": "2025-06-01T00:00:00Z/2025-06-01T09:00:00Z"})
	d := e.failure("POST", "/api/v1/update_requests", map[string]any{"packageId": pkgID("bygone", "1.0.0"),
		"periodOfValidity": "2025-05-01T00:00:00Z/2025-05-02T00:00:00Z"}, 400, "invalid_entity")
	assert.Equal(t, "period of validity has already ended (2025-05-02T00:00:00Z)", d)
	d = e.failure("POST", "/api/v1/update_requests", map[string]any{"packageId": pkgID("bygone", "1.0.0"),
		"periodOfValidity": "2025-05-01T00:00:00Z/2025-06-01T08:00:00Z"}, 400, "invalid_entity")
	assert.Contains(t, d, "already ended", "a period that ends now is over")
	assert.Empty(t, e.vehicleQueue(v3), "nothing was queued")
	var r map[string]any
	e.do("GET", "/api/v1/update_requests/"+tomorrow, nil, &r)
	assert.Equal(t, "2025-06-02T08:00:00Z/2025-06-03T08:00:00Z", r["periodOfValidity"])
	assert.Equal(t, "2025-06-02T08:00:00Z", r["validFrom"])
	assert.Equal(t, "2025-06-03T08:00:00Z", r["validUntil"])

	// Only the update inside its period is deliverable now.
	assert.Equal(t, []string{v2}, e.xmit(w))
	_, ok, _, err := e.deps.Engine.NextUpdate(v1)
	require.NoError(t, err)
	assert.False(t, ok, "not before the period starts")
	assert.Len(t, e.vehicleQueue(v1), 1, "but it is queued")

	c.Add(time.Minute)
	assert.Equal(t, 0.0, e.purge(), "no period is over yet")

	// In flight when its period ends, an update is not purged.
	q := e.vehicleQueue(v2)
	require.Len(t, q, 1)
	e.setStatus(v2, q[0]["updateId"].(string), engine.InFlight)
	c.Add(24 * time.Hour) // 2025-06-02T08:01
	assert.Equal(t, 0.0, e.purge())
	assert.Equal(t, cnt(0, 0, 0, 1, 0), e.counts(now))
	assert.Equal(t, []string{v1, v2}, e.xmit(w), "v1's update is inside its period now; v2 is woken to go on with its in-flight update")
	c.Add(24 * time.Hour) // 2025-06-03T08:01
	assert.Equal(t, 1.0, e.purge())
	failed := e.requestVehicles(tomorrow, "failed")
	require.Len(t, failed, 1)
	assert.Equal(t, map[string]any{"vin": v1, "updateId": failed[0]["updateId"], "status": "failed", "updatedAt": "2025-06-03T08:01:00Z", "resultText": "expired"}, failed[0])
	assert.Equal(t, "2025-06-03T08:01:00Z", failed[0]["updatedAt"], "the failure time is the purge time")
	var h []map[string]any
	e.do("GET", "/api/v1/vehicles/"+v1+"/history", nil, &h)
	require.Len(t, h, 1)
	assert.Equal(t, "failed", h[0]["status"])
	assert.Equal(t, "expired", h[0]["resultText"])
	assert.Equal(t, 0.0, e.purge(), "purging again finds nothing")
}

// An update larger than the remaining bytes of the vehicle's active billing cycle is skipped (the
// vehicle is not woken for it) until a new cycle with room becomes active.
func TestCoreOversizeUpdateWaitsForANewBillingCycle(t *testing.T) {
	c := &testClock{t: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	w := &wakeups{}
	e := newCoreEnvWith(t, engine.Options{Now: c.Now, WakeupURL: newWakeupReceiver(t, w.got), ReconnectInterval: time.Minute})
	vin := testVIN(1)
	e.ok("PUT", "/api/v1/vehicles/"+vin, nil)
	st, _ := e.upload("/api/v1/packages/big/1.0.0", "file", bytes.Repeat([]byte("B"), 1500))
	require.Equal(t, 204, st)
	st, _ = e.upload("/api/v1/packages/small/1.0.0", "file", bytes.Repeat([]byte("s"), 300))
	require.Equal(t, 204, st)
	e.onlyFor(vin) // the filter
	e.ok("PUT", "/api/v1/packages/big/1.0.0/filter/only0001", nil)
	e.ok("PUT", "/api/v1/packages/small/1.0.0/filter/only0001", nil)
	e.ok("POST", "/api/v1/data_plans", map[string]any{"id": "basic"})
	e.ok("POST", "/api/v1/data_plans/basic/billing_cycles", map[string]any{"start": "2025-06-01T00:00:00Z", "poolBytes": 1000})
	e.ok("POST", "/api/v1/data_plans/basic/billing_cycles", map[string]any{"start": "2025-07-01T00:00:00Z", "poolBytes": 2000})
	e.ok("PUT", "/api/v1/vehicles/"+vin+"/data_plan", map[string]any{"id": "basic"})

	big := e.queueOne("big", map[string]any{"priority": 1})
	c.Add(time.Second)
	e.queueOne("small", map[string]any{"priority": 5})
	assert.Equal(t, []string{"big:pending", "small:pending"}, names(e.vehicleQueue(vin)), "the queue lists both in priority order")

	// 1500 bytes do not fit in the 1000 of the cycle: the smaller, later one goes first.
	next, ok, oversize, err := e.deps.Engine.NextUpdate(vin)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "small", next.PackageID.Name)
	assert.True(t, oversize)
	assert.Equal(t, []string{vin}, e.xmit(w))

	// With 900 bytes used nothing fits: the vehicle is not woken, the big update stays pending.
	e.ok("POST", "/api/v1/vehicles/"+vin+"/traffic", map[string]any{"bytes": 900})
	c.Add(2 * time.Minute)
	assert.Empty(t, e.xmit(w))
	assert.Equal(t, 0.0, e.purge())
	assert.Equal(t, cnt(1, 0, 0, 0, 0), e.counts(big))

	// The new cycle becomes active: the big update is delivered first.
	c.Set(time.Date(2025, 7, 1, 0, 0, 1, 0, time.UTC))
	assert.Equal(t, []string{vin}, e.xmit(w))
	next, ok, oversize, err = e.deps.Engine.NextUpdate(vin)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "big", next.PackageID.Name)
	assert.False(t, oversize)
}
