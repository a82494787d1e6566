package policy

import (
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func seconds(ds ...int) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d) * time.Second
	}
	return out
}

func TestScheduleReading(t *testing.T) {
	attempts, giveUp := Schedule(60*time.Second, seconds(1, 5, 25, 125, 625))
	assert.Equal(t, seconds(0, 61, 126, 211, 396, 1081), attempts)
	assert.Equal(t, 1141*time.Second, giveUp)

	timeout, retries := Timing(PreloadedTable())
	assert.Equal(t, 60*time.Second, timeout)
	assert.Equal(t, seconds(1, 5, 25, 125, 625), retries)
}

// recorder runs a Sequence over the preloaded table on a virtual clock and records what it does.
type recorder struct {
	clock    *VirtualClock
	seq      *Sequence
	sends    []time.Duration // when each snapshot went out, since t0
	urls     []string
	statuses []Status
	events   []Event
	lastPTS  Table
}

func newRecorder(t *testing.T, answer func(r *recorder, attempt int)) *recorder {
	r := &recorder{clock: NewVirtualClock(t0)}
	r.seq = NewSequence(PreloadedTable(), SequenceConfig{
		Clock: r.clock,
		AppID: "123",
		Info:  SnapshotInfo{VIN: "WDD1234567890ABCD", Apps: []string{"123"}},
		Send: func(attempt int, url string, pts Table) {
			r.sends = append(r.sends, r.clock.Now().Sub(t0))
			r.urls = append(r.urls, url)
			r.lastPTS = pts
			if answer != nil {
				answer(r, attempt)
			}
		},
		Observe: func(e Event) {
			r.events = append(r.events, e)
			if e.Kind == EventStatus {
				r.statuses = append(r.statuses, e.Status)
			}
		},
	})
	return r
}

func (r *recorder) kinds(k EventKind) []Event {
	var out []Event
	for _, e := range r.events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func validPTUPayload(t *testing.T) []byte {
	return []byte(base64.StdEncoding.EncodeToString(readTestdata(t, validPTUFile)))
}

func TestSequenceTimesOutAndRetriesOnSchedule(t *testing.T) {
	r := newRecorder(t, nil)
	r.seq.Trigger()
	r.clock.Advance(2000 * time.Second)

	assert.Equal(t, seconds(0, 61, 126, 211, 396, 1081), r.sends)
	assert.Equal(t, []Status{
		UpdateNeeded,
		Updating, UpdateNeeded, Updating, UpdateNeeded, Updating, UpdateNeeded,
		Updating, UpdateNeeded, Updating, UpdateNeeded, Updating, UpdateNeeded,
	}, r.statuses)
	var timeouts, retries []time.Duration
	for _, e := range r.kinds(EventTimeout) {
		timeouts = append(timeouts, e.At.Sub(t0))
	}
	for _, e := range r.kinds(EventRetry) {
		retries = append(retries, e.Next.Sub(t0))
	}
	assert.Equal(t, seconds(60, 121, 186, 271, 456, 1141), timeouts)
	assert.Equal(t, seconds(61, 126, 211, 396, 1081), retries, "each retry is announced with the time of the next attempt")
	giveUp := r.kinds(EventGiveUp)
	require.Len(t, giveUp, 1)
	assert.Equal(t, 1141*time.Second, giveUp[0].At.Sub(t0))
	assert.False(t, r.seq.Active())
	assert.Equal(t, UpdateNeeded, r.seq.Status())
	for _, u := range r.urls {
		assert.Equal(t, "http://x.x.x.x:3000/api/1/policies/proprietary", u, "app 123 has no endpoint of its own: default")
	}
	_, hasMessages := r.lastPTS.Section("consumer_friendly_messages")["messages"]
	assert.False(t, hasMessages)
}

func TestValidPTUStopsTheSequence(t *testing.T) {
	r := newRecorder(t, nil)
	r.seq.Trigger()
	r.clock.Advance(130 * time.Second) // third attempt went out at 126 s
	require.Equal(t, seconds(0, 61, 126), r.sends)

	rep := r.seq.Receive(validPTUPayload(t))
	require.True(t, rep.Valid, "%v", rep.Errors)
	assert.Equal(t, UpToDate, r.seq.Status())
	assert.False(t, r.seq.Active())

	r.clock.Advance(5000 * time.Second)
	assert.Equal(t, seconds(0, 61, 126), r.sends, "no attempt after a valid PTU")
	assert.Empty(t, r.kinds(EventGiveUp))
	assert.Equal(t, UpToDate, r.statuses[len(r.statuses)-1])
	applied := r.kinds(EventApplied)
	require.Len(t, applied, 1)
	assert.Equal(t, 130*time.Second, applied[0].At.Sub(t0))

	local := r.seq.Local()
	assert.Equal(t, json.Number("20"), local.Section("module_config")["exchange_after_x_days"], "module_config replaced by the PTU's")
	assert.Contains(t, local.Section("app_policies"), "123456")
}

func TestInvalidPTUIsDiscardedAndTheNextAttemptFollows(t *testing.T) {
	r := newRecorder(t, nil)
	r.seq.Trigger()
	r.clock.Advance(10 * time.Second)
	before := string(r.seq.Local().MarshalIndent())

	rep := r.seq.Receive(readTestdata(t, invalidPTUFile))
	assert.False(t, rep.Valid)
	assert.Contains(t, rep.Errors, Problem{"policy_table.module_config.seconds_between_retries", "is required in PT_UPDATE but missing"})
	assert.Equal(t, UpdateNeeded, r.seq.Status())
	assert.Equal(t, before, string(r.seq.Local().MarshalIndent()), "an invalid PTU changes nothing")
	require.Len(t, r.kinds(EventRejected), 1)

	r.clock.Advance(100 * time.Second)
	// the rejected answer ended attempt 1 at 10 s; attempt 2 follows 1 s later and times out at 71 s,
	// attempt 3 follows at 76 s
	assert.Equal(t, seconds(0, 11, 76), r.sends)

	rep = r.seq.Receive([]byte("%%% not a table"))
	assert.False(t, rep.Valid)
	assert.Equal(t, UpdateNeeded, r.seq.Status())
}

func TestSynchronousAnswerInsideSend(t *testing.T) {
	r := newRecorder(t, func(r *recorder, attempt int) {
		ptu, err := BuildPTU(DefaultMaster(), r.lastPTS)
		require.NoError(t, err)
		rep := r.seq.Receive(ptu.MarshalIndent())
		require.True(t, rep.Valid, "%v", rep.Errors)
	})
	r.seq.Trigger()
	r.clock.Advance(time.Hour)
	assert.Equal(t, seconds(0), r.sends)
	assert.Equal(t, []Status{UpdateNeeded, Updating, UpToDate}, r.statuses)
	assert.Equal(t, "default", r.seq.Local().Section("app_policies")["123"])
}

func TestTriggerDuringASequenceIsIgnored(t *testing.T) {
	r := newRecorder(t, nil)
	r.seq.Trigger()
	r.seq.Trigger()
	assert.Equal(t, seconds(0), r.sends)
}

// TestSequenceOnTheSystemClock runs the sequence with real timers and an answer arriving from
// another goroutine while the timeout fires (run with -race). Whether the PTU beats the timeout or
// comes after the last retry gave up, a valid PTU ends at UP_TO_DATE.
func TestSequenceOnTheSystemClock(t *testing.T) {
	local := PreloadedTable()
	mc := local.Section("module_config")
	mc["timeout_after_x_seconds"] = json.Number("0") // the wait runs out at once
	mc["seconds_between_retries"] = []any{json.Number("1")}
	ptu := validPTUPayload(t)

	var answered sync.WaitGroup
	answered.Add(1)
	var seq *Sequence
	seq = NewSequence(local, SequenceConfig{
		Send: func(attempt int, url string, pts Table) {
			if attempt == 2 {
				go func() {
					defer answered.Done()
					seq.Receive(ptu) // races the zero timeout
				}()
			}
		},
	})
	seq.Trigger()
	waited := make(chan struct{})
	go func() { answered.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("no second attempt")
	}
	assert.False(t, seq.Active())
	assert.Equal(t, UpToDate, seq.Status())
	assert.Contains(t, seq.Local().Section("app_policies"), "123456")
}
