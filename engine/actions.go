package engine

// What the hawkBit DDI transport (api/ddi.go) needs of the queue beyond the device API's calls: decimal
// action ids, cancels of updates in flight, confirmations, artifact downloads and the configuration a
// vehicle reports about itself. Delivery order, data plans, validity windows and install reports are
// the same calls the device API makes (NextUpdate, CountDownload, InstallReport).
//
// Action ids: a DDI device knows an update by a decimal number. One is assigned to an update the first
// time a device is offered it (NextAction), from a counter leased actionLease ids at a time
// (core/seq/action), and kept in the update record (update → id) and under core/act/<id> (id →
// update), so it is stable across restarts. Updates never offered to a DDI device have none.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"sota/errs"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// Error codes of actions, cancels in flight, confirmations and artifacts.
const (
	CodeMissingAction           = "missing_action"
	CodeUpdateCanceled          = "update_canceled"
	CodeConfirmationRequired    = "confirmation_required"
	CodeNoCancelRequested       = "no_cancel_requested"
	CodeNoConfirmationRequested = "no_confirmation_requested"
	CodeMissingArtifact         = "missing_artifact"
)

// actionLease is how many action ids one write of core/seq/action leases to this process; ids leased
// and not used before a restart are skipped.
const actionLease = 1024

type actionSeq struct {
	mu         sync.Mutex
	next, last uint64 // ids next..last are leased and unused; next > last: none
}

func actKey(n uint64) []byte      { return []byte(pAct + strconv.FormatUint(n, 10)) }
func devCfgKey(vin string) []byte { return []byte(pDevCfg + vin) }

// newActionID returns an action id no other update has or will get.
func (s *Service) newActionID() (uint64, error) {
	s.acts.mu.Lock()
	defer s.acts.mu.Unlock()
	if s.acts.next == 0 || s.acts.next > s.acts.last {
		var from uint64
		err := s.update(func(t store.Txn) error {
			from = 1
			v, err := t.Get([]byte(kActSeq))
			if err == nil && len(v) == 8 {
				from = binary.BigEndian.Uint64(v)
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return t.Set([]byte(kActSeq), binary.BigEndian.AppendUint64(nil, from+actionLease))
		})
		if err != nil {
			return 0, err
		}
		s.acts.next, s.acts.last = from, from+actionLease-1
	}
	n := s.acts.next
	s.acts.next++
	return n, nil
}

// assignAction gives the update an action id unless it has one, and returns it.
func (s *Service) assignAction(vin, id string) (uint64, error) {
	fresh, err := s.newActionID()
	if err != nil {
		return 0, err
	}
	var out uint64
	err = s.update(func(t store.Txn) error {
		rec, err := s.loadUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if out = rec.Action; out != 0 { // a concurrent poll assigned one first
			return nil
		}
		rec.Action, out = fresh, fresh
		if err := t.Set(actKey(fresh), []byte(vin+"/"+id)); err != nil {
			return err
		}
		return t.Set(updKey(vin, id), encodeUpd(rec))
	})
	return out, err
}

// NextAction is NextUpdate for a hawkBit DDI device: the next update in the vehicle's delivery order,
// passing over get-all-packages requests (DDI has no way to answer them), with its action id (assigned
// the first time). ok is false when there is nothing to deliver now. It records the contact (Seen).
func (s *Service) NextAction(vin string) (u Update, ok bool, err error) {
	fresh := s.pollsFresh()
	if err := s.Seen(vin); err != nil {
		return Update{}, false, err
	}
	if fresh {
		u, ok, err = s.nextCached(vin, true)
	} else {
		u, ok, _, err = s.nextUpdate(vin, true)
	}
	if err != nil || !ok {
		return Update{}, false, err
	}
	if u.ActionID == 0 {
		if u.ActionID, err = s.assignAction(vin, u.ID); err != nil {
			return Update{}, false, err
		}
	}
	return u, true, nil
}

func errMissingAction(action string) error {
	return errs.New(errs.NotFound, CodeMissingAction, "Action %s does not exist for this vehicle", action)
}

// ParseActionID reads a decimal action id; anything else is 404 missing_action (it names a resource).
func ParseActionID(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || len(s) > 20 {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return 0, errMissingAction(strconv.Quote(s))
	}
	return n, nil
}

// UpdateByAction returns the vehicle's update that the action id names: 404 missing_action for an
// unknown id and for another vehicle's.
func (s *Service) UpdateByAction(vin string, action uint64) (Update, error) {
	var u Update
	err := s.db.View(func(t store.Txn) error {
		v, err := t.Get(actKey(action))
		if errors.Is(err, store.ErrNotFound) {
			return errMissingAction(strconv.FormatUint(action, 10))
		}
		if err != nil {
			return err
		}
		owner, id, _ := strings.Cut(string(v), "/")
		if owner != vin {
			return errMissingAction(strconv.FormatUint(action, 10))
		}
		rec, err := s.loadUpdate(t, vin, id)
		if err != nil {
			return err
		}
		u = s.view(t, vin, id, rec)
		return nil
	})
	return u, err
}

func errUpdateCanceled(u Update) error {
	return errs.New(errs.Conflict, CodeUpdateCanceled, "%s was canceled", updateName(u))
}

func errConfirmationRequired(u Update) error {
	return errs.New(errs.Conflict, CodeConfirmationRequired, "%s waits for the device's confirmation", updateName(u))
}

// AwaitsConfirmation tells whether the update asks for a confirmation the device has not given.
func (u Update) AwaitsConfirmation() bool { return u.RequestConfirmation && !u.Confirmed }

// InWindow tells whether now is inside the update's validity period; limited is false for an update
// without one.
func (s *Service) InWindow(u Update) (open, limited bool) {
	if u.ValidFrom == nil && u.ValidUntil == nil {
		return true, false
	}
	now := s.now()
	open = (u.ValidFrom == nil || !now.Before(*u.ValidFrom)) && (u.ValidUntil == nil || now.Before(*u.ValidUntil))
	return open, true
}

// MarkInFlight records that the device started on an update (a DDI progress report, or the download of
// one of its artifacts): a pending update moves to in flight; one in flight stays. A note (the
// device's progress details) is added to the update's progress log, which is its result text while in
// flight (the last maxResultText bytes) and precedes the device's details when it fails. 409
// update_canceled or update_not_active for a final update; 409 confirmation_required for an update
// that asks for a confirmation the device has not given.
func (s *Service) MarkInFlight(vin, id, note string) (Update, error) {
	var out Update
	err := s.update(func(t store.Txn) error {
		rec, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if !u.Status.Active() {
			return errNotActive(u)
		}
		if u.AwaitsConfirmation() {
			return errConfirmationRequired(u)
		}
		if rec.Status == Pending {
			if err := s.transition(t, vin, id, rec, InFlight, nil, "", s.now()); err != nil {
				return err
			}
		}
		if note = strings.TrimSpace(note); note != "" {
			rec.ResultText = appendLog(rec.ResultText, note)
			rec.Updated = nanos(s.now())
			if err := t.Set(updKey(vin, id), encodeUpd(rec)); err != nil {
				return err
			}
		}
		out = s.view(t, vin, id, rec)
		return nil
	})
	return out, err
}

// appendLog adds a line to a progress log joined by "; ", keeping its last maxResultText bytes.
func appendLog(log, line string) string {
	if log != "" {
		log += "; "
	}
	log += line
	if len(log) > maxResultText {
		log = "…" + log[len(log)-maxResultText+len("…"):]
	}
	return log
}

// CancelInFlight is Cancel that also cancels the request's updates in flight. An update in flight that
// a DDI device was offered (it has an action id) gets a cancel request, which the device answers
// (AnswerCancel); any other becomes canceled at once, and its device's next call about it is 409
// update_canceled. It returns how many updates were canceled or asked to cancel, pending ones included.
func (s *Service) CancelInFlight(reqID string) (int, error) {
	n, err := s.Cancel(reqID)
	if err != nil {
		return n, err
	}
	pfx := rsPrefix(reqID, InFlight)
	var vins []string
	err = s.db.View(func(t store.Txn) error {
		return t.IterateKeys(pfx, func(k []byte) error {
			vins = append(vins, string(k[len(pfx):]))
			return nil
		})
	})
	if err != nil {
		return n, err
	}
	for start := 0; start < len(vins); start += s.opt.BatchSize {
		batch := vins[start:min(start+s.opt.BatchSize, len(vins))]
		m := 0
		err := s.update(func(t store.Txn) error {
			m = 0
			now := s.now()
			for _, vin := range batch {
				id := updateIDFor(reqID, vin)
				rec, err := s.loadUpdate(t, vin, id)
				if errs.Is(err, "missing_update") {
					continue
				}
				if err != nil {
					return err
				}
				if rec.Status != InFlight || rec.Flags&flagCancelRequested != 0 {
					continue
				}
				m++
				if rec.Action != 0 {
					rec.Flags |= flagCancelRequested
					if err := t.Set(updKey(vin, id), encodeUpd(rec)); err != nil {
						return err
					}
					continue
				}
				if err := s.transition(t, vin, id, rec, Canceled, nil, "canceled in flight", now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// AnswerCancel records the device's answer to a cancel request (CancelInFlight): accepted, the update
// becomes canceled (result text "canceled in flight", with the device's text); refused, the request is
// dropped and the update goes on. 409 no_cancel_requested when none is pending (a repeated acceptance
// of a canceled update is answered as it was).
func (s *Service) AnswerCancel(vin, id string, accepted bool, text string) (Update, error) {
	if len(text) > maxResultText {
		text = text[:maxResultText]
	}
	var out Update
	err := s.update(func(t store.Txn) error {
		rec, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if rec.Flags&flagCancelRequested == 0 {
			if accepted && rec.Status == Canceled {
				out = u
				return nil
			}
			return errs.New(errs.Conflict, CodeNoCancelRequested, "%s has no cancel request to answer", updateName(u))
		}
		if !accepted {
			rec.Flags &^= flagCancelRequested
			out = s.view(t, vin, id, rec)
			return t.Set(updKey(vin, id), encodeUpd(rec))
		}
		result := "canceled in flight"
		if text != "" {
			result += ": " + text
		}
		if err := s.transition(t, vin, id, rec, Canceled, nil, result, s.now()); err != nil {
			return err
		}
		out = s.view(t, vin, id, rec)
		return nil
	})
	return out, err
}

// Confirm records the device's answer to an update that asks for confirmation: confirmed, it is
// delivered like any other; denied, it fails with 13 USER_DECLINED and the device's text (as an install
// report would). 409 no_confirmation_requested for an update that did not ask; 409 update_canceled or
// update_not_active for a final one.
func (s *Service) Confirm(vin, id string, confirmed bool, text string) (Update, error) {
	if !confirmed {
		var u Update
		err := s.db.View(func(t store.Txn) (err error) {
			_, u, err = s.deviceUpdate(t, vin, id)
			return err
		})
		if err != nil {
			return Update{}, err
		}
		if !u.Status.Active() {
			return Update{}, errNotActive(u)
		}
		if !u.RequestConfirmation {
			return Update{}, errNoConfirmation(u)
		}
		out, _, err := s.InstallReport(vin, id, []OperationResult{{ID: id, ResultCode: wire.ResultUserDeclined, ResultText: text}})
		return out, err
	}
	var out Update
	err := s.update(func(t store.Txn) error {
		rec, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if !u.Status.Active() {
			return errNotActive(u)
		}
		if !u.RequestConfirmation {
			return errNoConfirmation(u)
		}
		rec.Flags |= flagConfirmed
		out = s.view(t, vin, id, rec)
		return t.Set(updKey(vin, id), encodeUpd(rec))
	})
	return out, err
}

func errNoConfirmation(u Update) error {
	return errs.New(errs.Conflict, CodeNoConfirmationRequested, "%s does not ask for confirmation", updateName(u))
}

// Artifact returns the binary record of a package version with its sha1 and md5, computing and
// recording them for a binary uploaded before they were, and its file name. 404 missing_binary.
func (s *Service) Artifact(id resolver.PackageID) (Binary, error) {
	b, ok, err := s.Binary(id)
	if err != nil {
		return b, err
	}
	if !ok {
		return b, errs.New(errs.NotFound, "missing_binary", "No binary uploaded for package %s", id)
	}
	if b.FileName == "" { // recorded before file names were
		b.FileName = FileNameOf(id, "")
	}
	if b.SHA1 != "" && b.MD5 != "" {
		return b, nil
	}
	sum, err := s.digest(b.SHA256)
	if err != nil {
		return b, err
	}
	if sum.sha256 != b.SHA256 {
		return b, errs.New(errs.Internal, "corrupt_binary", "The stored binary of %s does not match its sha256", id)
	}
	b.SHA1, b.MD5 = sum.sha1, sum.md5
	err = s.update(func(t store.Txn) error {
		cur, ok, err := s.binary(t, id)
		if err != nil || !ok || cur.SHA256 != b.SHA256 { // replaced or deleted meanwhile: leave it
			return err
		}
		cur.SHA1, cur.MD5 = sum.sha1, sum.md5
		return s.setBinary(t, cur)
	})
	return b, err
}

// VehicleArtifact returns a package's binary (as Artifact does) for a vehicle, with the first of the
// vehicle's pending or in-flight updates in delivery order whose install list has it: a vehicle gets
// only what it is to install (404 missing_artifact otherwise).
func (s *Service) VehicleArtifact(vin string, id resolver.PackageID) (Update, Binary, error) {
	us, err := s.Queue(vin)
	if err != nil {
		return Update{}, Binary{}, err
	}
	for _, u := range us {
		for _, p := range u.Install {
			if strings.EqualFold(p.Name, id.Name) && p.Version == id.Version {
				b, err := s.Artifact(p)
				return u, b, err
			}
		}
	}
	return Update{}, Binary{}, errs.New(errs.NotFound, CodeMissingArtifact, "No update of this vehicle installs %s", id)
}

// OpenArtifact opens a package's binary for a vehicle's download (VehicleArtifact); the update it
// belongs to moves to in flight (MarkInFlight: 409 confirmation_required while it waits for the
// device's confirmation). The caller closes the reader and counts the bytes it sent with CountDownload.
func (s *Service) OpenArtifact(vin string, id resolver.PackageID) (store.BlobReader, Binary, error) {
	u, b, err := s.VehicleArtifact(vin, id)
	if err != nil {
		return nil, b, err
	}
	if _, err := s.MarkInFlight(vin, u.ID, ""); err != nil {
		return nil, b, err
	}
	f, err := s.openBlob(b.SHA256)
	if err != nil {
		return nil, b, fmt.Errorf("binary of %s: %w", id, err)
	}
	return f, b, nil
}

// CountDownload adds bytes sent to a vehicle outside a transfer session (a DDI artifact download) to
// the active billing cycle of its data plan.
func (s *Service) CountDownload(vin string, n int64) error {
	if n <= 0 {
		return nil
	}
	return s.update(func(t store.Txn) error {
		_, err := s.addTraffic(t, vin, n, s.now(), false)
		return err
	})
}

// Modes of ReportConfig (hawkBit's configData modes).
const (
	ConfigMerge   = "merge"
	ConfigReplace = "replace"
	ConfigRemove  = "remove"
)

// ReportConfig stores what a vehicle reports about itself (hawkBit configData) as its attributes,
// usable in filters (attr "k"): merge adds or overwrites the keys, replace first removes every key the
// vehicle reported before (attributes an admin set stay), remove deletes the given keys. The keys the
// vehicle reported are remembered, and ConfigReported is true from then on. One transaction. 400 for
// an unknown mode or attributes beyond the limits; 404 missing_vehicle.
func (s *Service) ReportConfig(vin, mode string, data resolver.Attributes) (resolver.Attributes, error) {
	if mode == "" {
		mode = ConfigMerge
	}
	if mode != ConfigMerge && mode != ConfigReplace && mode != ConfigRemove {
		return nil, errs.InvalidEntity("mode must be merge, replace or remove, not %q", mode)
	}
	if err := resolver.ValidVIN(vin); err != nil {
		return nil, err
	}
	var out resolver.Attributes
	err := s.resUpdate(func(t *engineTx, x *resolver.Tx) error {
		reported := map[string]bool{}
		v, err := t.Get(devCfgKey(vin))
		if err == nil {
			var keys []string
			if err := decode(v, &keys); err != nil {
				return err
			}
			for _, k := range keys {
				reported[k] = true
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		out, err = x.ModifyAttributes(vin, func(a resolver.Attributes) (resolver.Attributes, error) {
			switch mode {
			case ConfigReplace:
				for k := range reported {
					delete(a, k)
				}
				reported = map[string]bool{}
				fallthrough
			case ConfigMerge:
				for k, v := range data {
					a[k] = v
					reported[k] = true
				}
			case ConfigRemove:
				for k := range data {
					delete(a, k)
					delete(reported, k)
				}
			}
			return a, nil
		})
		if err != nil {
			return err
		}
		keys := sortedKeys(reported)
		b, err := json.Marshal(keys)
		if err != nil {
			return err
		}
		return t.Set(devCfgKey(vin), b)
	})
	if err == nil {
		s.reportedMu.Lock()
		s.reportedGen++
		s.reported.Store(vin, true)
		s.reportedMu.Unlock()
	}
	return out, err
}

// forgetReported drops a deleted vehicle from the ConfigReported cache once the deletion committed.
func (s *Service) forgetReported(vin string) {
	s.reportedMu.Lock()
	s.reportedGen++
	s.reported.Delete(vin)
	s.reportedMu.Unlock()
}

// ConfigReported tells whether the vehicle ever reported its configuration (ReportConfig).
func (s *Service) ConfigReported(vin string) (bool, error) {
	if v, ok := s.reported.Load(vin); ok {
		return v.(bool), nil
	}
	s.reportedMu.Lock()
	gen := s.reportedGen
	s.reportedMu.Unlock()
	var ok bool
	err := s.db.View(func(t store.Txn) (err error) {
		ok, err = t.Has(devCfgKey(vin))
		return err
	})
	if err == nil {
		s.reportedMu.Lock()
		if gen == s.reportedGen {
			s.reported.Store(vin, ok)
		}
		s.reportedMu.Unlock()
	}
	return ok, err
}
