package policy

import (
	"sync"
	"time"
)

// Status is the policy update status SDL reports to the HMI with SDL.OnStatusUpdate.
type Status string

// The three update statuses.
const (
	UpToDate     Status = "UP_TO_DATE"
	UpdateNeeded Status = "UPDATE_NEEDED"
	Updating     Status = "UPDATING"
)

// EventKind says what happened in a PTU sequence.
type EventKind string

// Events of a PTU sequence, in the order they can occur.
const (
	EventStatus   EventKind = "status"   // OnStatusUpdate(Status) to the HMI
	EventSend     EventKind = "send"     // OnSystemRequest with the snapshot (Attempt, URL); the timeout starts
	EventTimeout  EventKind = "timeout"  // no PTU within timeout_after_x_seconds
	EventRetry    EventKind = "retry"    // the next attempt is scheduled at Next
	EventRejected EventKind = "rejected" // an invalid PTU was logged and discarded (Report)
	EventApplied  EventKind = "applied"  // a valid PTU was merged into the local table (Report)
	EventGiveUp   EventKind = "give_up"  // no retries left
)

// Event is one step of a PTU sequence.
type Event struct {
	At      time.Time
	Kind    EventKind
	Status  Status    // EventStatus
	Attempt int       // 1 for the first snapshot sent
	URL     string    // EventSend
	Next    time.Time // EventRetry
	Report  *Report   // EventRejected, EventApplied
}

// SequenceConfig wires a Sequence to its surroundings.
type SequenceConfig struct {
	Clock Clock        // SystemClock() when nil
	AppID string       // the app the snapshot travels through (selects the endpoint, requirement 4)
	Info  SnapshotInfo // added to each snapshot
	// Send delivers the snapshot of one attempt (OnSystemRequest). It is called without locks held
	// and may call Receive before it returns.
	Send func(attempt int, url string, pts Table)
	// Observe sees every event, in order, without locks held.
	Observe func(Event)
}

// Sequence is the head unit's side of the HTTP PTU sequence (specs/004, requirements 1-15): on a
// trigger it reports UPDATE_NEEDED, sends a snapshot and waits; a valid PTU makes it UP_TO_DATE
// and is merged into the local table; a timeout or an invalid PTU makes it UPDATE_NEEDED and the
// next attempt follows seconds_between_retries (see Schedule). It is safe for concurrent use.
type Sequence struct {
	cfg SequenceConfig

	mu       sync.Mutex
	local    Table
	status   Status
	active   bool
	attempt  int // attempts made in this sequence
	timeout  time.Duration
	retries  []time.Duration
	timer    Timer
	gen      int // invalidates timers of earlier attempts
	pending  []Event
	sendArgs *sendCall
}

type sendCall struct {
	attempt int
	url     string
	pts     Table
}

// NewSequence returns an idle sequence over the local table, status UP_TO_DATE.
func NewSequence(local Table, cfg SequenceConfig) *Sequence {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	return &Sequence{cfg: cfg, local: local.Clone(), status: UpToDate}
}

// Status returns the current update status.
func (s *Sequence) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Active reports whether a sequence is under way (waiting for a PTU or for a retry).
func (s *Sequence) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Local returns a copy of the local policy table.
func (s *Sequence) Local() Table {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local.Clone()
}

// Trigger starts a PTU sequence (requirement 1: UPDATE_NEEDED on any trigger) and sends the
// first snapshot at once. A trigger during a sequence is ignored.
func (s *Sequence) Trigger() {
	s.mu.Lock()
	if s.active {
		s.mu.Unlock()
		return
	}
	s.active = true
	s.attempt = 0
	s.timeout, s.retries = Timing(s.local)
	s.setStatus(UpdateNeeded)
	s.startAttempt()
	s.flush()
}

// Receive is the PTU arriving from the app (requirement 9: SystemRequest before the timeout). It
// stops the timeout, decodes (Base64 or JSON), validates and either merges the PTU (UP_TO_DATE,
// the sequence ends) or discards it (UPDATE_NEEDED, the next attempt follows the schedule). It
// returns the validation report.
func (s *Sequence) Receive(payload []byte) Report {
	var r Report
	ptu, err := Parse(payload)
	if err != nil {
		r = Report{Errors: []Problem{{Path: "", Message: err.Error()}}, Warnings: []Problem{}}
	}
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.gen++
	if err == nil {
		var merged Table
		merged, r = Merge(s.local, ptu)
		if r.Valid {
			s.local = merged
		}
	}
	if r.Valid {
		rc := r
		s.emit(Event{Kind: EventApplied, Attempt: s.attempt, Report: &rc})
		s.setStatus(UpToDate)
		s.active = false
	} else {
		rc := r
		s.emit(Event{Kind: EventRejected, Attempt: s.attempt, Report: &rc})
		s.setStatus(UpdateNeeded)
		if s.active {
			s.scheduleRetry()
		}
	}
	s.flush()
	return r
}

// startAttempt sends the next snapshot and starts its timeout (requirement 7). Locked.
func (s *Sequence) startAttempt() {
	s.attempt++
	s.gen++
	gen := s.gen
	urls := EndpointURLs(s.local, s.cfg.AppID)
	url := ""
	if len(urls) > 0 {
		url = urls[(s.attempt-1)%len(urls)]
	}
	pts := MakeSnapshot(s.local, s.cfg.Info)
	s.emit(Event{Kind: EventSend, Attempt: s.attempt, URL: url})
	s.setStatus(Updating) // the snapshot is out: UPDATING until a PTU, a timeout or a rejection
	s.timer = s.cfg.Clock.AfterFunc(s.timeout, func() { s.onTimeout(gen) })
	s.sendArgs = &sendCall{attempt: s.attempt, url: url, pts: pts}
}

func (s *Sequence) onTimeout(gen int) {
	s.mu.Lock()
	if gen != s.gen || !s.active {
		s.mu.Unlock()
		return
	}
	s.timer = nil
	s.emit(Event{Kind: EventTimeout, Attempt: s.attempt})
	s.setStatus(UpdateNeeded)
	s.scheduleRetry()
	s.flush()
}

// scheduleRetry plans the next attempt after seconds_between_retries[attempt-1], or gives up. Locked.
func (s *Sequence) scheduleRetry() {
	i := s.attempt - 1
	if i >= len(s.retries) {
		s.emit(Event{Kind: EventGiveUp, Attempt: s.attempt})
		s.active = false
		return
	}
	s.gen++
	gen := s.gen
	wait := s.retries[i]
	s.emit(Event{Kind: EventRetry, Attempt: s.attempt + 1, Next: s.cfg.Clock.Now().Add(wait)})
	s.timer = s.cfg.Clock.AfterFunc(wait, func() {
		s.mu.Lock()
		if gen != s.gen || !s.active {
			s.mu.Unlock()
			return
		}
		s.startAttempt()
		s.flush()
	})
}

func (s *Sequence) setStatus(st Status) {
	if s.status == st {
		return
	}
	s.status = st
	s.emit(Event{Kind: EventStatus, Status: st})
}

func (s *Sequence) emit(e Event) {
	e.At = s.cfg.Clock.Now()
	s.pending = append(s.pending, e)
}

// flush unlocks, then hands out the pending events and the pending send.
func (s *Sequence) flush() {
	events, send := s.pending, s.sendArgs
	s.pending, s.sendArgs = nil, nil
	s.mu.Unlock()
	if s.cfg.Observe != nil {
		for _, e := range events {
			s.cfg.Observe(e)
		}
	}
	if send != nil && s.cfg.Send != nil {
		s.cfg.Send(send.attempt, send.url, send.pts)
	}
}
