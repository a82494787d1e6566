package engine

// Resends of unacknowledged chunks, for a transport on which the server sends a chunk and learns of
// its arrival only from a later message of the vehicle's (RVI: "chunk" out, "ack" in). The wait for
// an ack is a record in the store, not a timer in the sending process, so that any replica resends a
// chunk whose ack did not come in time, also when the replica that sent it has died:
//
//	core/await/<vin>/<updateID>   awaitRec: the chunk sent, how often it was sent again, and when
//	                              (Unix ns, by the sending replica's clock) its ack is due
//
// NextChunkAwaitingAck serves the lowest unacknowledged chunk and writes the record in the same
// transaction (one record per transfer: the next chunk's replaces it). The resends are leased work
// (job/resends): every poll the holder of the lease claims the records that are due, each in a
// transaction that finds it still due and moves its due time on (or removes it), so that a due chunk
// is sent again once even when a paused holder and its successor overlap. A record whose chunk was
// acknowledged meanwhile stands for a replica that died between the ack and sending the next chunk:
// the claim sends the next chunk (or, with every chunk acknowledged, has the transfer finished).

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"sota/errs"
	"sota/store"
)

const (
	pAwait       = "core/await/"
	leaseResends = "job/resends"
)

func awaitKey(vin, id string) []byte { return []byte(pAwait + vin + "/" + id) }

// awaitRec is a chunk waiting for its ack.
type awaitRec struct {
	Index   int   // the chunk sent
	Resends int   // how often it was sent again
	Due     int64 // Unix ns: when its ack is due
}

func encodeAwait(r awaitRec) []byte {
	b := binary.AppendUvarint(nil, uint64(r.Index))
	b = binary.AppendUvarint(b, uint64(r.Resends))
	return binary.BigEndian.AppendUint64(b, uint64(r.Due))
}

func decodeAwait(b []byte) (awaitRec, error) {
	var r awaitRec
	i, n := binary.Uvarint(b)
	if n <= 0 {
		return r, errors.New("engine: corrupt ack wait record")
	}
	b = b[n:]
	k, n := binary.Uvarint(b)
	if n <= 0 || len(b[n:]) != 8 {
		return r, errors.New("engine: corrupt ack wait record")
	}
	r.Index, r.Resends, r.Due = int(i), int(k), int64(binary.BigEndian.Uint64(b[n:]))
	return r, nil
}

// Resend is what the resends hand the transport for a transfer whose ack did not come in time.
type Resend struct {
	VIN, UpdateID string
	// Index is the chunk to send: the one whose ack is overdue, or the next one when that was
	// acknowledged but the next was never sent; 0 when every chunk is acknowledged and the transfer
	// was never finished (finalize it and tell the vehicle).
	Index int
	// Attempt is how often Index has been sent again with this one (0: its first send).
	Attempt int
	// Abort: Index went unacknowledged through every resend; the transport gives the transfer up
	// (its session stays for a later start).
	Abort bool
}

// NextChunkAwaitingAck is NextChunk for such a transport: in the same transaction it records that
// the chunk's ack is due within timeout, after which StartResends sends it again. With every chunk
// acknowledged ok is false and nothing is awaited any more.
func (s *Service) NextChunkAwaitingAck(vin, id string, timeout time.Duration) (Chunk, bool, error) {
	if timeout <= 0 {
		timeout = time.Nanosecond
	}
	return s.serveChunk(vin, id, 0, timeout)
}

// StopAwaiting drops what the transfer of the update waits for (its install report arrived).
func (s *Service) StopAwaiting(vin, id string) error {
	return s.update(func(t store.Txn) error { return t.Delete(awaitKey(vin, id)) })
}

// ResendOptions set the resends of StartResends.
type ResendOptions struct {
	Timeout time.Duration // an ack is due this long after its chunk was sent
	Resends int           // a chunk is sent again at most this often, then the transfer is aborted
	// Poll is how often the holder of job/resends looks for due acks; default Timeout/5, between
	// 10 ms and 1 s.
	Poll time.Duration
}

func (o *ResendOptions) defaults() {
	if o.Poll <= 0 {
		o.Poll = min(max(o.Timeout/5, 10*time.Millisecond), time.Second)
	}
}

// StartResends runs the resends of overdue acks as leased work until stop is called: every Poll the
// replica holding job/resends claims the due records and calls send for each (send runs in the
// loop: a slow one delays the next poll). stop waits for a poll in progress and releases the lease.
func (s *Service) StartResends(o ResendOptions, send func(Resend)) (stop func()) {
	o.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(o.Poll)
		defer tk.Stop()
		for {
			if _, err := s.runResends(ctx, o, send); err != nil && ctx.Err() == nil {
				s.log.Error("resends", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rcancel()
		if err := s.db.ReleaseLeases(rctx, s.holder, leaseResends); err != nil {
			s.log.Warn("resends: release the lease", "err", err)
		}
	}
}

// runResends is one poll: with job/resends held, it claims every due ack and sends what each claim
// says; it returns how many it handed to send.
func (s *Service) runResends(ctx context.Context, o ResendOptions, send func(Resend)) (int, error) {
	o.defaults()
	if !s.lease(ctx, leaseResends, leaseTTL(o.Poll)) {
		return 0, nil
	}
	now := s.now()
	type due struct{ vin, id string }
	var list []due
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pAwait), func(k, v []byte) error {
			r, err := decodeAwait(v)
			if err != nil {
				return err
			}
			if r.Due <= now.UnixNano() {
				vin, id, _ := strings.Cut(string(k[len(pAwait):]), "/")
				list = append(list, due{vin, id})
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, d := range list {
		if ctx.Err() != nil {
			break
		}
		r, ok, err := s.claimResend(d.vin, d.id, o)
		if err != nil {
			return sent, err
		}
		if ok {
			send(r)
			sent++
		}
	}
	return sent, nil
}

// claimResend decides, in one transaction, what an overdue ack calls for, and records it: the chunk
// again (its due time moved on), the next chunk, the end of the transfer, or its abort. ok is false
// when the record is no longer due (another replica claimed it, or an ack came) or its update
// ended.
func (s *Service) claimResend(vin, id string, o ResendOptions) (out Resend, ok bool, err error) {
	err = s.update(func(t store.Txn) error {
		out, ok = Resend{VIN: vin, UpdateID: id}, false
		v, err := t.Get(awaitKey(vin, id))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		r, err := decodeAwait(v)
		if err != nil {
			return err
		}
		now := s.now()
		if r.Due > now.UnixNano() {
			return nil
		}
		drop := func() error { return t.Delete(awaitKey(vin, id)) }
		rec, err := s.loadUpdate(t, vin, id)
		if errs.Is(err, "missing_update") {
			return drop()
		}
		if err != nil {
			return err
		}
		if !rec.Status.Active() {
			return drop()
		}
		x, err := s.loadXfer(t, vin, id)
		if errs.Is(err, "transfer_not_started") {
			return drop() // no session (cannot happen while a chunk is awaited)
		}
		if err != nil {
			return err
		}
		gap := x.firstGap()
		switch {
		case gap == 0:
			out.Index, ok = 0, true
			return drop()
		case gap != r.Index: // acknowledged, and the next chunk was never sent
			r = awaitRec{Index: gap}
		case r.Resends >= o.Resends:
			out.Index, out.Attempt, out.Abort, ok = gap, r.Resends, true, true
			return drop()
		default:
			r.Resends++
		}
		r.Due = now.Add(o.Timeout).UnixNano()
		out.Index, out.Attempt, ok = r.Index, r.Resends, true
		return t.Set(awaitKey(vin, id), encodeAwait(r))
	})
	return out, ok, err
}
