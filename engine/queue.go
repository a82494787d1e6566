package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// Status is the state of one vehicle's update; the device sees it in its poll (wire.UpdateStatus).
type Status = wire.UpdateStatus

// The states of an update (wire's): pending → inFlight → finished or failed; pending → canceled or
// failed (expired); inFlight → canceled (by the device).
const (
	Pending  = wire.Pending
	InFlight = wire.InFlight
	Finished = wire.Finished
	Failed   = wire.Failed
	Canceled = wire.Canceled
)

// Statuses lists every status in the order counts and lists use.
var Statuses = []Status{Pending, InFlight, Finished, Failed, Canceled}

// ParseStatus accepts one of Statuses.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", errs.InvalidEntity("status must be one of pending, inFlight, finished, failed, canceled; not %q", s)
}

// Kinds of update requests.
const (
	KindInstall        = "install"
	KindGetAllPackages = "getAllPackages"
)

// States of an update request.
const (
	StateQueuing  = "queuing"  // updates are being written
	StateQueued   = "queued"   // every update is written
	StateCanceled = "canceled" // canceled: its pending updates were canceled
	StateAborted  = "aborted"  // the server stopped while queuing; what was written is canceled
)

// DefaultPriority is the priority of a request that gives none. Lower numbers are delivered first.
const DefaultPriority = 10

// MaxPriority bounds the priority a request may give.
const MaxPriority = 1000

// UpdateRequest is one request to install a package on the vehicles its filters select (or, for
// KindGetAllPackages, to ask one vehicle for its installed packages).
type UpdateRequest struct {
	ID                  string              `json:"id"`
	Kind                string              `json:"kind"`
	PackageID           *resolver.PackageID `json:"packageId,omitempty"`
	Priority            int                 `json:"priority"`
	PeriodOfValidity    string              `json:"periodOfValidity,omitempty"`
	ValidFrom           *time.Time          `json:"validFrom,omitempty"`
	ValidUntil          *time.Time          `json:"validUntil,omitempty"`
	Description         string              `json:"description"`
	RequestConfirmation bool                `json:"requestConfirmation"`
	CampaignID          string              `json:"campaignId,omitempty"`
	Group               string              `json:"group,omitempty"` // the campaign group it releases
	CreatedAt           time.Time           `json:"createdAt"`
	State               string              `json:"state"`
	Vehicles            int                 `json:"vehicles"`
	Skipped             int                 `json:"skipped"`
	Counts              *Counts             `json:"counts,omitempty"`
}

// Counts are a request's updates per status.
type Counts struct {
	Pending  int `json:"pending"`
	InFlight int `json:"inFlight"`
	Finished int `json:"finished"`
	Failed   int `json:"failed"`
	Canceled int `json:"canceled"`
}

func (c *Counts) add(st Status, n int) {
	switch st {
	case Pending:
		c.Pending += n
	case InFlight:
		c.InFlight += n
	case Finished:
		c.Finished += n
	case Failed:
		c.Failed += n
	case Canceled:
		c.Canceled += n
	}
}

// Update is one vehicle's update: what it installs, in install order, and where it stands.
type Update struct {
	ID                  string               `json:"updateId"`
	RequestID           string               `json:"requestId"`
	VIN                 string               `json:"vin"`
	Kind                string               `json:"kind"`
	PackageID           *resolver.PackageID  `json:"packageId"`
	Install             []resolver.PackageID `json:"install"`
	Status              Status               `json:"status"`
	Priority            int                  `json:"priority"`
	Description         string               `json:"description,omitempty"`
	RequestConfirmation bool                 `json:"requestConfirmation"`
	ValidFrom           *time.Time           `json:"validFrom,omitempty"`
	ValidUntil          *time.Time           `json:"validUntil,omitempty"`
	CreatedAt           time.Time            `json:"createdAt"`
	UpdatedAt           time.Time            `json:"updatedAt"`
	ResultCode          *int                 `json:"resultCode,omitempty"`
	ResultText          string               `json:"resultText,omitempty"`
	// ActionID is the decimal id hawkBit DDI devices know the update by (0 until one asked; actions.go).
	ActionID uint64 `json:"actionId,omitempty"`
	// CancelRequested: an operator canceled the update in flight and the device has not answered yet.
	CancelRequested bool `json:"cancelRequested,omitempty"`
	// Confirmed: the device confirmed an update that asked for confirmation.
	Confirmed bool `json:"confirmed,omitempty"`
}

// VehicleStatus is one row of a request's per-status vehicle list.
type VehicleStatus struct {
	VIN        string    `json:"vin"`
	UpdateID   string    `json:"updateId"`
	Status     Status    `json:"status"`
	UpdatedAt  time.Time `json:"updatedAt"`
	ResultCode *int      `json:"resultCode,omitempty"`
	ResultText string    `json:"resultText,omitempty"`
}

var errMissingRequest = errs.New(errs.NotFound, "missing_update_request", "Update request does not exist")

func errMissingUpdate() error {
	return errs.New(errs.NotFound, "missing_update", "Update does not exist for this vehicle")
}

// newUUIDs returns n random (version 4) UUIDs.
func newUUIDs(n int) []string {
	buf := make([]byte, 16*n)
	if _, err := rand.Read(buf); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	out := make([]string, n)
	for i := range out {
		b := buf[16*i : 16*i+16]
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		out[i] = formatUUID(b)
	}
	return out
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		default:
			return false
		}
	}
	return true
}

func (s *Service) request(id string) (*UpdateRequest, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.reqs[id]
	return r, ok
}

// knownRequest is request for a caller outside a transaction that answers 404 missing_update_request
// for an unknown id: a request this process has not cached is read from the store (another replica
// may have queued it a moment ago; the cache learns of it from the change feed).
func (s *Service) knownRequest(id string) (*UpdateRequest, error) {
	if r, ok := s.request(id); ok {
		return r, nil
	}
	var r UpdateRequest
	err := s.db.View(func(t store.Txn) error { return getRecord(t, reqKey(id), &r) })
	if errors.Is(err, store.ErrNotFound) {
		return nil, errMissingRequest
	}
	if err != nil {
		return nil, err
	}
	r.Counts = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.reqs[id]; ok { // the feed brought it meanwhile, maybe newer
		return cur, nil
	}
	s.reqs[id] = &r
	return &r, nil
}

// requestIn is request, reading the store through t when this process has not cached the request
// yet: an update written by another replica may reach this one before the change feed has brought
// its request (an update record without an install list is the request's package, so its view needs
// the request). What it reads is cached unless the feed got there first. A nil t reads it in a
// transaction of its own (knownRequest).
func (s *Service) requestIn(t store.Txn, id string) (*UpdateRequest, bool) {
	if r, ok := s.request(id); ok {
		return r, true
	}
	if t == nil {
		r, err := s.knownRequest(id)
		return r, err == nil
	}
	v, err := t.Get(reqKey(id))
	if err != nil {
		return nil, false
	}
	var r UpdateRequest
	if decode(v, &r) != nil {
		return nil, false
	}
	r.Counts = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.reqs[id]; ok {
		return cur, true
	}
	s.reqs[id] = &r
	return &r, true
}

func (s *Service) cacheRequest(r UpdateRequest) {
	r.Counts = nil
	s.mu.Lock()
	s.reqs[r.ID] = &r
	s.mu.Unlock()
}

func (s *Service) loadRequests() error {
	var queuing []string
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pReq), func(_, v []byte) error {
			var r UpdateRequest
			if err := decode(v, &r); err != nil {
				return err
			}
			s.reqs[r.ID] = &r
			if r.State == StateQueuing {
				queuing = append(queuing, r.ID)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	held, err := s.abortQueuing(context.Background(), queuing)
	for _, id := range held {
		go s.awaitQueuing(id)
	}
	return err
}

// awaitQueuing watches a request found "queuing" at start whose lease another process held: once the
// lease expires (that process died) the request is aborted; once it is no longer queuing (the other
// process finished) there is nothing to do.
func (s *Service) awaitQueuing(id string) {
	for {
		time.Sleep(s.opt.QueueLeaseTTL / 4)
		var r UpdateRequest
		err := s.db.View(func(t store.Txn) error {
			v, err := t.Get(reqKey(id))
			if err != nil {
				return err
			}
			return decode(v, &r)
		})
		if err != nil || r.State != StateQueuing {
			return
		}
		held, err := s.abortQueuing(context.Background(), []string{id})
		if err != nil {
			s.log.Error("abort an update request left queuing", "request", id, "err", err)
			return
		}
		if len(held) == 0 {
			return
		}
	}
}

// recoverQueuing aborts the requests left "queuing" by a process that stopped (the scheduler's
// job/purge round: a replica that died mid-queue is not restarted by anyone).
func (s *Service) recoverQueuing(ctx context.Context) error {
	var queuing []string
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pReq), func(_, v []byte) error {
			var r UpdateRequest
			if err := decode(v, &r); err != nil {
				return err
			}
			if r.State == StateQueuing {
				queuing = append(queuing, r.ID)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	_, err = s.abortQueuing(ctx, queuing)
	return err
}

// abortQueuing cancels the pending updates of those of the requests (found "queuing") whose queuing
// lease has expired, and sets them "aborted"; a request whose lease a live process holds is being
// queued and is left alone (returned in held).
func (s *Service) abortQueuing(ctx context.Context, ids []string) (held []string, err error) {
	for _, id := range ids {
		name := leaseQueue + id
		ls, err := s.db.Leases(ctx, name)
		if err != nil {
			return held, err
		}
		if len(ls) > 0 {
			s.log.Info("update request is being queued by another process; it is aborted if that process stops renewing its lease", "request", id, "holder", ls[0].Holder)
			held = append(held, id)
			continue
		}
		ok, err := s.db.TryLease(ctx, name, s.holder, s.opt.QueueLeaseTTL)
		if err != nil {
			return held, err
		}
		if !ok {
			held = append(held, id)
			continue
		}
		n, err := s.cancelRequest(id, StateAborted)
		aborted := false
		if err == nil {
			aborted, err = s.countAborted(id)
		}
		if rerr := s.db.ReleaseLeases(ctx, s.holder, name); err == nil {
			err = rerr
		}
		if err != nil {
			return held, err
		}
		if !aborted { // it finished queuing since the list was read
			continue
		}
		s.log.Warn("update request was interrupted while queuing; its pending updates are canceled", "request", id, "canceled", n)
	}
	return held, nil
}

// renewLease renews the lease every quarter of Options.QueueLeaseTTL until stop is called; lost
// reports whether a renewal found the lease taken by another holder.
func (s *Service) renewLease(lease, holder string) (lost func() bool, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var gone atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(s.opt.QueueLeaseTTL / 4)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				ok, err := s.db.TryLease(ctx, lease, holder, s.opt.QueueLeaseTTL)
				if err == nil && !ok {
					gone.Store(true)
					return
				}
			}
		}
	}()
	return gone.Load, func() { cancel(); <-done }
}

// errQueueLeaseLost: the request's queuing lease expired and another process took it (and aborts the
// request): this process stopped for longer than QueueLeaseTTL between two chunks.
var errQueueLeaseLost = errors.New("engine: the request stayed without its queuing lease for too long and was aborted")

// persist writes one update per target in chunks of Options.BatchSize vehicles (one transaction
// each), skipping the vehicles that already have r's package version pending or in flight. r is
// stored first as StateQueuing and last as StateQueued with its counts; a cancel in between stops the
// writing. A request for a package is queued under the package version's lock (lockPackage; the
// caller holds it, or no other writer can queue the package: tests).
func (s *Service) persist(r *UpdateRequest, targets []resolver.Target) error {
	return s.persistWith(r, targets, nil, nil)
}

// persistWith is persist with final run in the transaction that marks r queued (a campaign records
// its request there, so that a crash cannot split the two), and every transaction fenced by lk, the
// package version's lock (locks.go), when it is not nil. The vehicles that have the package version
// active are read after lk was taken, so they include every update that another writer of the
// package, on any replica, wrote under the lock before.
func (s *Service) persistWith(r *UpdateRequest, targets []resolver.Target, lk *heldLock, final func(t store.Txn, cur *UpdateRequest) error) error {
	active := map[string]bool{}
	if r.PackageID != nil {
		var err error
		if active, err = s.activeFor(*r.PackageID); err != nil {
			return err
		}
	}
	r.State = StateQueuing
	// the queuing lease first: a request found "queuing" without one is aborted (abortQueuing)
	lease := leaseQueue + r.ID
	if ok, err := s.db.TryLease(context.Background(), lease, s.holder, s.opt.QueueLeaseTTL); err != nil || !ok {
		if err == nil {
			err = errQueueLeaseLost
		}
		return err
	}
	lost, stop := s.renewLease(lease, s.holder)
	defer func() {
		stop()
		if err := s.db.ReleaseLeases(context.Background(), s.holder, lease); err != nil {
			s.log.Warn("release a queuing lease", "request", r.ID, "err", err)
		}
	}()
	err := s.update(func(t store.Txn) error {
		if err := lk.check(t); err != nil {
			return err
		}
		if r.Kind == KindGetAllPackages {
			// in the transaction: a vehicle created on another replica a moment ago, or deleted
			check := resolver.VehicleCheck().In(t)
			for _, tg := range targets {
				if err := check(tg.VIN); err != nil {
					return err
				}
			}
		}
		if r.PackageID != nil {
			// the packages this request installs, which cannot be deleted while it has updates pending:
			// those of the vehicles it queues (not of the ones skipped)
			seen := map[resolver.PackageID]bool{*r.PackageID: true}
			for _, tg := range targets {
				if active[tg.VIN] {
					continue
				}
				for _, p := range tg.Install {
					seen[p] = true
				}
			}
			for p := range seen {
				if err := t.Set(pkgReqKey(p, r.ID), nil); err != nil {
					return err
				}
			}
		}
		return t.Set(reqKey(r.ID), encode(r))
	})
	if err != nil {
		return err
	}
	s.cacheRequest(*r)

	queued, skipped := 0, 0
	now := nanos(r.CreatedAt)
	batch := s.opt.BatchSize
	for start := 0; start < len(targets); {
		size := min(batch, len(targets)-start)
		if lost() {
			return errQueueLeaseLost
		}
		n, sk, stopped, err := s.writeChunk(r, targets[start:start+size], active, now, lk)
		if errors.Is(err, store.ErrTooBig) && size > 1 {
			batch = max(size/2, 1) // the store's transactions are smaller than configured
			continue
		}
		if err != nil {
			return err
		}
		queued += n
		skipped += sk
		if stopped {
			break
		}
		start += size
	}

	var cur UpdateRequest
	err = s.update(func(t store.Txn) error {
		if err := lk.check(t); err != nil {
			return err
		}
		v, err := t.Get(reqKey(r.ID))
		if err != nil {
			return err
		}
		if err := decode(v, &cur); err != nil {
			return err
		}
		if cur.State == StateQueuing {
			cur.State = StateQueued
		}
		cur.Vehicles, cur.Skipped = queued, skipped
		if err := t.Set(reqKey(r.ID), encode(&cur)); err != nil {
			return err
		}
		if final != nil {
			return final(t, &cur)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*r = cur
	s.cacheRequest(cur)
	return nil
}

// writeChunk writes the updates of one chunk of targets in one transaction, unless the request
// stopped queuing (canceled or aborted, on any replica): the transaction reads the request's record
// and writes it again, so that the store orders it with a cancel's (which writes the record too),
// and a cancel sees either none or all of the chunk. lk fences it (locks.go).
func (s *Service) writeChunk(r *UpdateRequest, chunk []resolver.Target, active map[string]bool, now int64, lk *heldLock) (n, skipped int, stopped bool, err error) {
	err = s.update(func(t store.Txn) error {
		n, skipped, stopped = 0, 0, false
		if err := lk.check(t); err != nil {
			return err
		}
		v, err := t.Get(reqKey(r.ID))
		if errors.Is(err, store.ErrNotFound) {
			stopped = true
			return nil
		}
		if err != nil {
			return err
		}
		var cur UpdateRequest
		if err := decode(v, &cur); err != nil {
			return err
		}
		if cur.State != StateQueuing {
			stopped = true
			return nil
		}
		if err := t.Set(reqKey(r.ID), bytes.Clone(v)); err != nil {
			return err
		}
		for _, tg := range chunk {
			if active[tg.VIN] {
				skipped++
				continue
			}
			rec := updRec{Req: r.ID, Status: Pending, Created: now, Updated: now}
			if !(len(tg.Install) == 1 && r.PackageID != nil && tg.Install[0] == *r.PackageID) {
				rec.Install = tg.Install
			}
			if err := t.Set(updKey(tg.VIN, updateIDFor(r.ID, tg.VIN)), encodeUpd(&rec)); err != nil {
				return err
			}
			if err := t.Set(rsKey(r.ID, Pending, tg.VIN), nil); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil || stopped {
		return 0, 0, stopped, err
	}
	if r.PackageID != nil {
		changes := make([]resolver.UpdateChange, 0, n)
		for _, tg := range chunk {
			if !active[tg.VIN] {
				changes = append(changes, resolver.UpdateChange{VIN: tg.VIN, Package: *r.PackageID, Status: string(Pending)})
			}
		}
		s.res.SetUpdateStatuses(changes)
	}
	s.addCount(r.ID, Pending, n)
	return n, skipped, false, nil
}

// activeFor returns the VINs that have an update of the package version pending or in flight, as the
// store has them now (not as this process's request cache has them: a request queued on another
// replica may not have reached it yet).
func (s *Service) activeFor(id resolver.PackageID) (map[string]bool, error) {
	active := map[string]bool{}
	err := s.db.View(func(t store.Txn) error {
		var reqs []string
		err := t.IterateKeys(pkgReqPrefix(id), func(k []byte) error {
			reqs = append(reqs, lastPart(k))
			return nil
		})
		if err != nil {
			return err
		}
		for _, req := range reqs {
			var r UpdateRequest
			if err := getRecord(t, reqKey(req), &r); errors.Is(err, store.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
			if r.PackageID == nil || !strings.EqualFold(r.PackageID.Name, id.Name) || r.PackageID.Version != id.Version {
				continue // a request that installs the package as a dependency
			}
			for _, st := range []Status{Pending, InFlight} {
				pfx := rsPrefix(req, st)
				err := t.IterateKeys(pfx, func(k []byte) error {
					active[string(k[len(pfx):])] = true
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	return active, err
}

// view builds the domain view of a stored update; a request this process has not cached is read
// through t (nil: in a transaction of its own).
func (s *Service) view(t store.Txn, vin, id string, rec *updRec) Update {
	u := Update{
		ID: id, RequestID: rec.Req, VIN: vin, Status: rec.Status,
		CreatedAt: fromNanos(rec.Created), UpdatedAt: fromNanos(rec.Updated),
		ResultCode: rec.ResultCode, ResultText: rec.ResultText, Install: rec.Install,
		Priority: DefaultPriority, Kind: KindInstall, ActionID: rec.Action,
		CancelRequested: rec.Flags&flagCancelRequested != 0, Confirmed: rec.Flags&flagConfirmed != 0,
	}
	if r, ok := s.requestIn(t, rec.Req); ok {
		u.Kind, u.Priority, u.PackageID = r.Kind, r.Priority, r.PackageID
		u.Description, u.RequestConfirmation = r.Description, r.RequestConfirmation
		u.ValidFrom, u.ValidUntil = r.ValidFrom, r.ValidUntil
		if u.Install == nil && r.PackageID != nil {
			u.Install = []resolver.PackageID{*r.PackageID}
		}
	}
	if u.Install == nil {
		u.Install = []resolver.PackageID{}
	}
	return u
}

func (s *Service) loadUpdate(t store.Txn, vin, id string) (*updRec, error) {
	v, err := t.Get(updKey(vin, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errMissingUpdate()
	}
	if err != nil {
		return nil, err
	}
	var rec updRec
	if err := decodeUpd(v, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

var allowed = map[Status][]Status{
	Pending:  {InFlight, Canceled, Failed},
	InFlight: {Finished, Failed, Canceled},
}

// SetStatus moves one vehicle's update to status to, in one transaction, and keeps the indexes in
// step. Allowed moves: pending → inFlight, canceled, failed; inFlight → finished, failed, canceled.
// Anything else is 409 invalid_transition; a repeated move to the current status is a no-op. 404
// missing_update.
func (s *Service) SetStatus(vin, updateID string, to Status, resultCode *int, resultText string) (Update, error) {
	var out Update
	err := s.update(func(t store.Txn) (err error) {
		out, err = s.setStatus(t, vin, updateID, to, resultCode, resultText)
		return err
	})
	return out, err
}

// setStatus is SetStatus in t.
func (s *Service) setStatus(t store.Txn, vin, updateID string, to Status, resultCode *int, resultText string) (Update, error) {
	if !validUUID(updateID) {
		return Update{}, errMissingUpdate()
	}
	rec, err := s.loadUpdate(t, vin, updateID)
	if err != nil {
		return Update{}, err
	}
	if rec.Status == to && to.Active() {
		return s.view(t, vin, updateID, rec), nil
	}
	if err := s.transition(t, vin, updateID, rec, to, resultCode, resultText, s.now()); err != nil {
		return Update{}, err
	}
	return s.view(t, vin, updateID, rec), nil
}

func (s *Service) transition(t store.Txn, vin, id string, rec *updRec, to Status, code *int, text string, now time.Time) error {
	ok := false
	for _, st := range allowed[rec.Status] {
		ok = ok || st == to
	}
	if !ok {
		return errs.New(errs.Conflict, "invalid_transition", "Update is %s and cannot become %s", rec.Status, to)
	}
	if err := t.Delete(rsKey(rec.Req, rec.Status, vin)); err != nil {
		return err
	}
	if err := t.Set(rsKey(rec.Req, to, vin), nil); err != nil {
		return err
	}
	s.countMove(t, rec.Req, rec.Status, to)
	rec.Status, rec.Updated, rec.ResultCode, rec.ResultText = to, nanos(now), code, text
	if !to.Active() { // a final update has no cancel left to answer
		rec.Flags &^= flagCancelRequested
	}
	if err := t.Set(updKey(vin, id), encodeUpd(rec)); err != nil {
		return err
	}
	s.noteStatus(t, vin, rec.Req, to)
	if ev, ok := updateEvents[to]; ok {
		data := map[string]any{"vin": vin, "updateId": id, "requestId": rec.Req, "status": to}
		if code != nil {
			data["resultCode"] = *code
		}
		if text != "" {
			data["resultText"] = text
		}
		return s.emit(t, ev, data)
	}
	return nil
}

// updateEvents are the webhook events of an update's final statuses.
var updateEvents = map[Status]string{Finished: "update.finished", Failed: "update.failed", Canceled: "update.canceled"}

// scanVehicle returns the stored updates of one vehicle; activeOnly: those pending or in flight
// that may be delivered (a paused campaign's pending updates are held back, see held).
func (s *Service) scanVehicle(t store.Txn, vin string, activeOnly bool) ([]Update, error) {
	type found struct {
		id  string
		rec updRec
	}
	var recs []found
	err := t.Iterate(updPrefix(vin), func(k, v []byte) error {
		var rec updRec
		if err := decodeUpd(v, &rec); err != nil {
			return err
		}
		if activeOnly && !rec.Status.Active() {
			return nil
		}
		recs = append(recs, found{lastPart(k), rec})
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Update
	for i := range recs { // after the scan: a view may read its request in t
		u := s.view(t, vin, recs[i].id, &recs[i].rec)
		if activeOnly && s.held(&u) {
			continue
		}
		out = append(out, u)
	}
	return out, nil
}

// SortDelivery puts updates in delivery order: in flight first, then by priority (lower first), then
// by creation time, then by id.
func SortDelivery(us []Update) {
	sort.SliceStable(us, func(i, j int) bool {
		a, b := us[i], us[j]
		if (a.Status == InFlight) != (b.Status == InFlight) {
			return a.Status == InFlight
		}
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		return a.ID < b.ID
	})
}

// Queue returns the vehicle's pending and in-flight updates in delivery order.
func (s *Service) Queue(vin string) ([]Update, error) {
	var us []Update
	err := s.db.View(func(t store.Txn) error {
		var err error
		us, err = s.scanVehicle(t, vin, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	SortDelivery(us)
	if us == nil {
		us = []Update{}
	}
	return us, nil
}

// History returns every update of the vehicle, oldest first.
func (s *Service) History(vin string) ([]Update, error) {
	var us []Update
	err := s.db.View(func(t store.Txn) error {
		var err error
		us, err = s.scanVehicle(t, vin, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(us, func(i, j int) bool {
		if !us[i].CreatedAt.Equal(us[j].CreatedAt) {
			return us[i].CreatedAt.Before(us[j].CreatedAt)
		}
		return us[i].ID < us[j].ID
	})
	if us == nil {
		us = []Update{}
	}
	return us, nil
}

// NextUpdate is QUEUE_GET_NEXT_SOFTWARE_UPDATE: the vehicle's in-flight update, else the first pending
// one in delivery order that is inside its validity period and fits in the remaining bytes of the
// active billing cycle of the vehicle's data plan (an update that does not fit is skipped until a
// cycle has room). ok is false when there is nothing to deliver now; oversize then tells whether
// something was held back by the billing cycle.
func (s *Service) NextUpdate(vin string) (u Update, ok, oversize bool, err error) {
	return s.nextUpdate(vin, false)
}

// nextUpdate is NextUpdate; installsOnly passes over get-all-packages requests (a hawkBit DDI device
// has no way to answer them).
func (s *Service) nextUpdate(vin string, installsOnly bool) (u Update, ok, oversize bool, err error) {
	now := s.now()
	err = s.db.View(func(t store.Txn) error {
		us, err := s.scanVehicle(t, vin, true)
		if err != nil {
			return err
		}
		SortDelivery(us)
		u, ok, oversize, err = s.pickNext(t, vin, us, installsOnly, now)
		return err
	})
	return u, ok, oversize, err
}

// pickNext is NextUpdate's choice among us, the vehicle's active updates in delivery order; t reads
// the data plan's billing cycle and the binaries' sizes when the first candidate needs them (nil:
// the vehicle is known to have no data plan).
func (s *Service) pickNext(t store.Txn, vin string, us []Update, installsOnly bool, now time.Time) (u Update, ok, oversize bool, err error) {
	var remaining int64
	limited := false
	checked := t == nil
	for _, c := range us {
		if installsOnly && c.Kind != KindInstall {
			continue
		}
		if c.Status == InFlight {
			return c, true, oversize, nil
		}
		if c.ValidFrom != nil && now.Before(*c.ValidFrom) {
			continue
		}
		if c.ValidUntil != nil && !now.Before(*c.ValidUntil) {
			continue
		}
		if !checked {
			remaining, limited, err = s.remainingBytes(t, vin, now)
			if err != nil {
				return u, false, false, err
			}
			checked = true
		}
		if limited {
			size, err := s.installSize(t, c.Install)
			if err != nil {
				return u, false, false, err
			}
			if size > remaining {
				oversize = true
				continue
			}
		}
		return c, true, oversize, nil
	}
	return u, false, oversize, nil
}

// installSize is the sum of the recorded binary sizes of the packages (0 for one without a binary).
func (s *Service) installSize(t store.Txn, ids []resolver.PackageID) (int64, error) {
	var n int64
	for _, id := range ids {
		b, ok, err := s.binary(t, id)
		if err != nil {
			return 0, err
		}
		if ok {
			n += b.Size
		}
	}
	return n, nil
}

// Purge is QUEUE_PURGE: every pending update whose validity period has ended is marked failed with
// result text "expired" and the current time. It returns how many were purged.
func (s *Service) Purge() (int, error) {
	now := s.now()
	s.mu.RLock()
	var reqs []string
	for _, r := range s.reqs {
		if r.ValidUntil != nil && !now.Before(*r.ValidUntil) {
			reqs = append(reqs, r.ID)
		}
	}
	s.mu.RUnlock()
	sort.Strings(reqs)
	total := 0
	for _, req := range reqs {
		n, err := s.movePending(req, Failed, "expired", now)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// movePending moves every pending update of the request to status to, Options.BatchSize per
// transaction, and returns how many moved. The pending VINs are listed by one scan of the status
// index and then moved batch by batch (rescanning from the start for every batch would step over
// the deletions of the batches before it again and again); another scan catches updates a request
// still queuing wrote meanwhile.
func (s *Service) movePending(req string, to Status, text string, now time.Time) (int, error) {
	total := 0
	pfx := rsPrefix(req, Pending)
	for {
		var vins []string
		err := s.db.View(func(t store.Txn) error {
			return t.IterateKeys(pfx, func(k []byte) error {
				vins = append(vins, string(k[len(pfx):]))
				return nil
			})
		})
		if err != nil {
			return total, err
		}
		if len(vins) == 0 {
			return total, nil
		}
		for start := 0; start < len(vins); start += s.opt.BatchSize {
			n, err := s.moveBatch(req, vins[start:min(start+s.opt.BatchSize, len(vins))], to, text, now)
			total += n
			if err != nil {
				return total, err
			}
		}
	}
}

// moveBatch moves the pending updates of req of these vehicles to status to in one transaction.
func (s *Service) moveBatch(req string, vins []string, to Status, text string, now time.Time) (int, error) {
	n := 0
	err := s.update(func(t store.Txn) error {
		n = 0
		for _, vin := range vins {
			id := updateIDFor(req, vin)
			rec, err := s.loadUpdate(t, vin, id)
			if errs.Is(err, "missing_update") { // a dangling index entry
				if err := t.Delete(rsKey(req, Pending, vin)); err != nil {
					return err
				}
				onCommit(t, func() { s.addCount(req, Pending, -1) })
				continue
			}
			if err != nil {
				return err
			}
			if rec.Status != Pending { // a stale index entry: moves keep the index in step
				if err := t.Delete(rsKey(req, Pending, vin)); err != nil {
					return err
				}
				onCommit(t, func() { s.addCount(req, Pending, -1) })
				continue
			}
			if err := s.transition(t, vin, id, rec, to, nil, text, now); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

var errStop = errors.New("stop")

// Cancel is QUEUE_REQUEST_CANCEL: the request's pending updates become canceled; in-flight and finished
// ones are untouched. It returns how many were canceled.
func (s *Service) Cancel(reqID string) (int, error) {
	return s.cancelRequest(reqID, StateCanceled) // 404 in its transaction, not by this process's cache
}

// cancelRequest sets the request's state (canceled or aborted) in a transaction that reads and writes
// its record, as every chunk of its queuing does (writeChunk): the store orders the two, so the pending
// updates moved afterwards include every chunk written before, and none is written after.
func (s *Service) cancelRequest(reqID, state string) (int, error) {
	stale := false
	err := s.update(func(t store.Txn) error {
		v, err := t.Get(reqKey(reqID))
		if errors.Is(err, store.ErrNotFound) {
			return errMissingRequest
		}
		if err != nil {
			return err
		}
		var r UpdateRequest
		if err := decode(v, &r); err != nil {
			return err
		}
		// an abort is of a request still queuing: one found so in an older read may have finished
		if stale = state == StateAborted && r.State != StateQueuing; stale {
			return nil
		}
		r.State = state
		if err := t.Set(reqKey(reqID), encode(&r)); err != nil {
			return err
		}
		s.cacheRequest(r)
		return nil
	})
	if err != nil || stale {
		return 0, err
	}
	return s.movePending(reqID, Canceled, "", s.now())
}

// countAborted sets an aborted request's vehicles to the updates it wrote before the server stopped
// (the count is otherwise stored only when queuing completes, so an aborted request said 0 while its
// canceled updates were many).
func (s *Service) countAborted(id string) (aborted bool, err error) {
	err = s.update(func(t store.Txn) error {
		n := 0
		for _, st := range Statuses {
			if err := t.IterateKeys(rsPrefix(id, st), func([]byte) error { n++; return nil }); err != nil {
				return err
			}
		}
		v, err := t.Get(reqKey(id))
		if err != nil {
			return err
		}
		var r UpdateRequest
		if err := decode(v, &r); err != nil {
			return err
		}
		if aborted = r.State == StateAborted; !aborted {
			return nil
		}
		r.Vehicles = n
		if err := t.Set(reqKey(id), encode(&r)); err != nil {
			return err
		}
		s.cacheRequest(r)
		return nil
	})
	return aborted, err
}

// cancelVehicle cancels every pending update of one vehicle in the caller's transaction.
func (s *Service) cancelVehicle(t store.Txn, vin string) error {
	type item struct {
		id  string
		rec updRec
	}
	var items []item
	err := t.Iterate(updPrefix(vin), func(k, v []byte) error {
		var rec updRec
		if err := decodeUpd(v, &rec); err != nil {
			return err
		}
		if rec.Status == Pending {
			items = append(items, item{lastPart(k), rec})
		}
		return nil
	})
	if err != nil {
		return err
	}
	now := s.now()
	for i := range items {
		if err := s.transition(t, vin, items[i].id, &items[i].rec, Canceled, nil, "vehicle deleted", now); err != nil {
			return err
		}
	}
	return nil
}

// Requests lists the update requests, oldest first.
func (s *Service) Requests(p Page) ([]UpdateRequest, int, error) {
	if err := p.Check(); err != nil {
		return nil, 0, err
	}
	s.mu.RLock()
	all := make([]UpdateRequest, 0, len(s.reqs))
	for _, r := range s.reqs {
		all = append(all, *r)
	}
	s.mu.RUnlock()
	sort.Slice(all, func(i, j int) bool {
		if !all[i].CreatedAt.Equal(all[j].CreatedAt) {
			return all[i].CreatedAt.Before(all[j].CreatedAt)
		}
		return all[i].ID < all[j].ID
	})
	return window(all, p), len(all), nil
}

// Request returns one update request with its counts per status.
func (s *Service) Request(id string) (UpdateRequest, error) {
	r, err := s.knownRequest(id)
	if err != nil {
		return UpdateRequest{}, err
	}
	out := *r
	c, err := s.requestCounts(id)
	out.Counts = &c
	return out, err
}

// RequestVehicles lists the request's vehicles with one status (every status when st is empty),
// sorted by status then VIN, and the total before paging.
func (s *Service) RequestVehicles(id string, st Status, p Page) ([]VehicleStatus, int, error) {
	if err := p.Check(); err != nil {
		return nil, 0, err
	}
	if _, err := s.knownRequest(id); err != nil {
		return nil, 0, err
	}
	sts := Statuses
	if st != "" {
		sts = []Status{st}
	}
	var out []VehicleStatus
	total := 0
	err := s.db.View(func(t store.Txn) error {
		type ref struct{ vin, id string }
		var refs []ref
		for _, st := range sts {
			pfx := rsPrefix(id, st)
			err := t.IterateKeys(pfx, func(k []byte) error {
				if total >= p.Offset && len(refs) < p.Limit {
					vin := string(k[len(pfx):])
					refs = append(refs, ref{vin, updateIDFor(id, vin)})
				}
				total++
				return nil
			})
			if err != nil {
				return err
			}
		}
		for _, r := range refs {
			rec, err := s.loadUpdate(t, r.vin, r.id)
			if err != nil {
				return err
			}
			out = append(out, VehicleStatus{VIN: r.vin, UpdateID: r.id, Status: rec.Status,
				UpdatedAt: fromNanos(rec.Updated), ResultCode: rec.ResultCode, ResultText: rec.ResultText})
		}
		return nil
	})
	if out == nil {
		out = []VehicleStatus{}
	}
	return out, total, err
}

// UpdateCounts counts every update of every request by status (one pass over the per-status index;
// the metrics collector calls it, not the request path).
func (s *Service) UpdateCounts() (Counts, error) {
	var c Counts
	err := s.db.View(func(t store.Txn) error {
		return t.IterateKeys([]byte(pRS), func(k []byte) error {
			// core/rs/<request>/<status>/<vin>
			rest := k[len(pRS):]
			i := bytes.IndexByte(rest, '/')
			if i < 0 {
				return nil
			}
			rest = rest[i+1:]
			j := bytes.IndexByte(rest, '/')
			if j < 0 {
				return nil
			}
			c.add(Status(rest[:j]), 1)
			return nil
		})
	})
	return c, err
}
