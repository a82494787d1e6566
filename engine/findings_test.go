package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

// Finding 10: a request interrupted while queuing was aborted at the next start with "vehicles": 0,
// though the updates it had written (here 300) were canceled. Its vehicles are now those updates.
func TestAbortedRequestCountsTheVehiclesItWrote(t *testing.T) {
	dir := t.TempDir()
	open := func() (*store.DB, *Service) {
		db, err := storetest.OpenDir(t, dir+"/db")
		require.NoError(t, err)
		res, err := resolver.New(db)
		require.NoError(t, err)
		s, err := New(db, res, Options{DataDir: dir, BatchSize: 64})
		require.NoError(t, err)
		return db, s
	}
	db, s := open()
	var vins []string
	for i := 0; i < 300; i++ {
		vins = append(vins, fmt.Sprintf("WDD%014d", i))
	}
	r := queueDirect(t, s, pkg("nav", "1.0.0"), 0, nil, vins...)
	// the request as the store holds it while its batches are being written: queuing, no count yet
	require.NoError(t, db.Update(func(tx store.Txn) error {
		v, err := tx.Get(reqKey(r.ID))
		require.NoError(t, err)
		var rec UpdateRequest
		require.NoError(t, decode(v, &rec))
		rec.State, rec.Vehicles = StateQueuing, 0
		return tx.Set(reqKey(r.ID), encode(&rec))
	}))
	require.NoError(t, db.Close())

	db, s = open()
	defer db.Close()
	got, err := s.Request(r.ID)
	require.NoError(t, err)
	assert.Equal(t, StateAborted, got.State)
	assert.Equal(t, 300, got.Vehicles)
	assert.Equal(t, 300, got.Counts.Canceled)
	assert.Equal(t, 0, got.Counts.Pending)
}

// Finding 5: traffic of 2^63-1 bytes twice wrapped the cycle's used bytes to -2.
func TestTrafficThatWouldOverflowIsRefused(t *testing.T) {
	s, _ := newTestService(t, Options{})
	require.NoError(t, s.res.PutVehicle(vinA))
	_, err := s.AddDataPlan("basic")
	require.NoError(t, err)
	_, err = s.AddBillingCycle("basic", s.now().AddDate(0, -1, 0), 1000)
	require.NoError(t, err)
	_, err = s.SetDataPlan(vinA, "basic")
	require.NoError(t, err)
	tr, err := s.AddTraffic(vinA, math.MaxInt64)
	require.NoError(t, err)
	require.NotNil(t, tr.UsedBytes)
	assert.Equal(t, int64(math.MaxInt64), *tr.UsedBytes)
	_, err = s.AddTraffic(vinA, math.MaxInt64)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "traffic_overflow")
	tr, err = s.AddTraffic(vinA, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(math.MaxInt64), *tr.UsedBytes, "nothing changed")
}

// The scheduler logs one summary line per round, not one line per vehicle.
func TestSchedulerLogsOneSummaryLinePerRound(t *testing.T) {
	var buf bytes.Buffer
	s, _ := newTestService(t, Options{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	var vins []string
	for i := 0; i < 5; i++ {
		vins = append(vins, fmt.Sprintf("WDD%014d", i))
	}
	queueDirect(t, s, pkg("nav", "1.0.0"), 0, nil, vins...)
	buf.Reset()
	sc := &Scheduler{s: s}
	sc.RunOnce(t.Context())
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1, buf.String())
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	assert.Equal(t, "scheduler round", rec["msg"])
	assert.Equal(t, 5.0, rec["woken"])
	buf.Reset()
	sc.RunOnce(t.Context()) // nothing to do: the summary is at debug
	assert.Empty(t, buf.String())
}
