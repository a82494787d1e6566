package engine

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"sota/store"
	"sota/wire"
)

// Wakeup is the signed shoulder tap POSTed to --wakeup-url (package wire: wire.VerifyWakeup checks it).
type Wakeup = wire.Wakeup

// PublicKey is the server's wake-up verification key (generated once, kept in the store).
func (s *Service) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// SignWakeup builds a signed wake-up for vin issued now.
func (s *Service) SignWakeup(vin string) Wakeup { return s.signWakeupAt(vin, s.now()) }

// signWakeupAt builds a signed wake-up for vin issued at (the time its last-wake record says).
func (s *Service) signWakeupAt(vin string, at time.Time) Wakeup {
	n := make([]byte, 16)
	if _, err := rand.Read(n); err != nil {
		panic(err)
	}
	return wire.SignWakeup(s.key, vin, hex.EncodeToString(n), at.Format(time.RFC3339Nano))
}

// Contact records that the vehicle's device talked to this replica now (it counts as connected here
// for Options.ConnectedWindow, and on the other replicas by its stored lastSeen, Seen). The device
// API calls it on every request.
func (s *Service) Contact(vin string) {
	s.contactMu.Lock()
	s.lastSeen[vin] = s.now()
	s.contactMu.Unlock()
}

// Disconnect records DEV_DISCONNECT: the vehicle is not connected and is not woken again within its
// reconnect interval (by any replica: the time goes into its last-wake record).
func (s *Service) Disconnect(vin string) {
	now := s.now()
	s.contactMu.Lock()
	delete(s.lastSeen, vin)
	s.lastWake[vin] = now
	s.contactMu.Unlock()
	s.storedSeen.Delete(vin) // not connected by its stored contact either (the next Seen reads it again)
	err := s.update(func(t store.Txn) error { return t.Set(wakeKey(vin), encodeSeen(now)) })
	if err != nil {
		s.log.Error("record a disconnect", "vin", vin, "err", err)
	}
}

// Connected reports whether the vehicle contacted this replica within Options.ConnectedWindow, or any
// replica by its stored lastSeen (written by whichever replica it polls, at most seenResolution
// stale, and followed through the change feed) within the window plus that resolution: a vehicle
// that keeps polling replica A is not woken by the replica holding its wake-up shard. A vehicle that
// stopped polling counts as connected elsewhere for up to the resolution longer than here.
func (s *Service) Connected(vin string) bool {
	now := s.now()
	s.contactMu.Lock()
	t, ok := s.lastSeen[vin]
	s.contactMu.Unlock()
	if ok && now.Sub(t) < s.opt.ConnectedWindow {
		return true
	}
	v, ok := s.storedSeen.Load(vin)
	return ok && now.Sub(v.(time.Time)) < s.opt.ConnectedWindow+s.seenResolution()
}

// recentlyWoken reports whether this process woke the vehicle (or heard it disconnect) within the
// reconnect interval: a hint that spares reading its queue; the vehicle's last-wake record decides.
func (s *Service) recentlyWoken(vin string, now time.Time) bool {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	t, ok := s.lastWake[vin]
	return ok && now.Sub(t) < s.opt.ReconnectInterval
}

func wakeKey(vin string) []byte { return []byte(pWake + vin) }

// claimWakes records now as the last wake-up of those of vins (a batch) not woken within the
// reconnect interval by any process, in one transaction, and returns them with their previous
// record (nil: none). Two processes claiming the same vehicle at once conflict, and the one that runs
// again finds the other's wake-up: a vehicle is woken at most once per reconnect interval even when a
// wake-up shard changed hands mid-round.
func (s *Service) claimWakes(vins []string, now time.Time) (claimed []string, prev map[string][]byte, err error) {
	err = s.update(func(t store.Txn) error {
		claimed, prev = claimed[:0], map[string][]byte{}
		for _, vin := range vins {
			v, err := t.Get(wakeKey(vin))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err == nil {
				at, err := decodeSeen(v)
				if err != nil {
					return err
				}
				if now.Sub(at) < s.opt.ReconnectInterval {
					continue
				}
			}
			prev[vin] = v
			claimed = append(claimed, vin)
			if err := t.Set(wakeKey(vin), encodeSeen(now)); err != nil {
				return err
			}
		}
		return nil
	})
	return claimed, prev, err
}

// unclaimWakes puts back the last-wake records of the vehicles whose wake-up claimed at now was not
// delivered (unless something recorded a newer one since), so that the next round tries again.
func (s *Service) unclaimWakes(vins []string, now time.Time, prev map[string][]byte) error {
	mine := encodeSeen(now)
	return s.update(func(t store.Txn) error {
		for _, vin := range vins {
			v, err := t.Get(wakeKey(vin))
			if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(v, mine) {
				continue
			}
			if err != nil {
				return err
			}
			if prev[vin] == nil {
				err = t.Delete(wakeKey(vin))
			} else {
				err = t.Set(wakeKey(vin), prev[vin])
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// vehiclesWithWork returns, sorted, the VINs with a pending or in-flight update.
func (s *Service) vehiclesWithWork() ([]string, error) {
	s.mu.RLock()
	ids := sortedKeys(s.reqs)
	s.mu.RUnlock()
	set := map[string]struct{}{}
	err := s.db.View(func(t store.Txn) error {
		for _, id := range ids {
			for _, st := range []Status{Pending, InFlight} {
				pfx := rsPrefix(id, st)
				err := t.IterateKeys(pfx, func(k []byte) error {
					set[string(k[len(pfx):])] = struct{}{}
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	return sortedKeys(set), err
}

// Xmit is QUEUE_INITIATE_XMIT: every vehicle with a pending or in-flight update that is not connected,
// was not woken (or disconnected) within the reconnect interval, and has an update to deliver now
// (QUEUE_GET_NEXT_SOFTWARE_UPDATE) gets a signed wake-up, at most Options.MaxWakeups per run. It
// returns how many were woken. It covers the whole fleet; the scheduler's rounds cover the wake-up
// shards this process holds (leases.go).
func (s *Service) Xmit(ctx context.Context) (int, error) {
	woken, _, err := s.xmit(ctx, nil)
	return woken, err
}

// wakeBatch is the number of vehicles whose wake-ups are claimed in one transaction and then sent at
// once (in parallel, so that a wake-up leaves about when its record says it did).
const wakeBatch = 16

// xmit is Xmit over the vehicles of the given wake-up shards (nil: all) that also returns how many
// wake-ups were not delivered.
func (s *Service) xmit(ctx context.Context, shards []int) (woken, failed int, err error) {
	s.xmitMu.Lock() // one run at a time in this process; the last-wake records order the others
	defer s.xmitMu.Unlock()
	vins, err := s.vehiclesWithWork()
	if err != nil {
		return 0, 0, err
	}
	var in [WakeupShards]bool
	for _, i := range shards {
		in[i] = true
	}
	now := s.now()
	var batch []string
	send := func() error {
		claimed, prev, err := s.claimWakes(batch, now)
		batch = batch[:0]
		if err != nil {
			return err
		}
		errs := make([]error, len(claimed))
		var wg sync.WaitGroup
		for i, vin := range claimed {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.sendWakeup(ctx, s.signWakeupAt(vin, now))
			}()
		}
		wg.Wait()
		var lost []string
		for i, vin := range claimed {
			if errs[i] != nil {
				s.log.Debug("wake-up not delivered", "vin", vin, "err", errs[i]) // counted in the round's summary
				failed++
				lost = append(lost, vin)
				continue
			}
			s.contactMu.Lock()
			s.lastWake[vin] = now
			s.contactMu.Unlock()
			woken++
		}
		if len(lost) > 0 {
			return s.unclaimWakes(lost, now, prev)
		}
		return nil
	}
	for _, vin := range vins {
		if woken+len(batch) >= s.opt.MaxWakeups || ctx.Err() != nil {
			break
		}
		if shards != nil && !in[wakeupShard(vin)] || s.Connected(vin) || s.recentlyWoken(vin, now) {
			continue
		}
		_, ok, _, err := s.NextUpdate(vin)
		if err != nil {
			return woken, failed, err
		}
		if !ok {
			continue
		}
		if batch = append(batch, vin); len(batch) == wakeBatch {
			if err := send(); err != nil {
				return woken, failed, err
			}
		}
	}
	if len(batch) > 0 && ctx.Err() == nil {
		err = send()
	}
	return woken, failed, err
}

func (s *Service) sendWakeup(ctx context.Context, w Wakeup) error {
	if s.opt.WakeupURL == "" {
		s.log.Debug("wake-up (no --wakeup-url, logged only)", "vin", w.VIN, "nonce", w.Nonce)
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opt.WakeupURL, bytes.NewReader(encode(w)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.opt.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", s.opt.WakeupURL, resp.Status)
	}
	return nil
}

// Scheduler runs purge, wake-ups, campaigns and blob collection on a ticker. With several processes
// on one store each round first takes the leases of its jobs (leases.go), so that each job runs once
// per interval cluster-wide and the wake-ups are split among the processes.
type Scheduler struct {
	s        *Service
	interval time.Duration
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	runs     int
	shards   []int // the wake-up shards held after the last round
	// collections counts the rounds that ran blob collection
	collections int
}

// StartScheduler starts the periodic work every interval; Stop ends it and waits for a run in
// progress.
func (s *Service) StartScheduler(interval time.Duration) *Scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	sc := &Scheduler{s: s, interval: interval, cancel: cancel}
	sc.wg.Add(1)
	go func() {
		defer sc.wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				sc.RunOnce(ctx)
			}
		}
	}()
	return sc
}

// RunOnce does one round: purge and the recovery of requests whose queuing stopped (job/purge
// lease), then the wake-ups of the shards held, then campaigns (retries, late joiners, gates;
// job/campaigns lease), then blob collection (job/blobs lease with the db blob store, which every
// replica shares; with local files every replica collects its own). It logs one summary line (at info when the round did
// something, else at debug), and errors.
func (sc *Scheduler) RunOnce(ctx context.Context) {
	s := sc.s
	start := time.Now()
	ttl := leaseTTL(sc.interval)
	purged := 0
	if s.lease(ctx, leasePurge, ttl) {
		var err error
		if purged, err = s.Purge(); err != nil {
			s.log.Error("scheduler: purge", "err", err)
		}
		if err := s.recoverQueuing(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("scheduler: requests left queuing", "err", err)
		}
	}
	sc.mu.Lock()
	before := sc.shards
	sc.mu.Unlock()
	shards, err := s.claimShards(ctx, ttl, before)
	if err != nil && ctx.Err() == nil {
		s.log.Error("scheduler: wake-up shards", "err", err)
	}
	woken, failed := 0, 0
	if len(shards) > 0 {
		woken, failed, err = s.xmit(ctx, shards)
		if err != nil && ctx.Err() == nil {
			s.log.Error("scheduler: wake-ups", "err", err)
		}
	}
	if s.lease(ctx, leaseCampaigns, ttl) {
		if err := s.RunCampaigns(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("scheduler: campaigns", "err", err)
		}
	}
	blobs, collected := 0, false
	if s.blob.Kind() != "db" || s.lease(ctx, leaseBlobs, ttl) { // local files: each replica its own
		collected = true
		if blobs, err = s.CollectBlobs(); err != nil {
			s.log.Error("scheduler: blob collection", "err", err)
		}
	}
	level := slog.LevelDebug
	if purged+woken+failed+blobs > 0 {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "scheduler round", "purged", purged, "woken", woken, "wakeupsFailed", failed,
		"blobsRemoved", blobs, "shards", len(shards), "ms", time.Since(start).Milliseconds())
	sc.mu.Lock()
	sc.runs++
	sc.shards = shards
	if collected {
		sc.collections++
	}
	sc.mu.Unlock()
}

// Collections is the number of rounds that ran blob collection: every round with a blob store of
// local files, only the rounds holding the job/blobs lease with the db blob store.
func (sc *Scheduler) Collections() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.collections
}

// Runs is the number of completed rounds.
func (sc *Scheduler) Runs() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.runs
}

// Shards is the wake-up shards this process held after its last round.
func (sc *Scheduler) Shards() []int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return slices.Clone(sc.shards)
}

// Stop ends the scheduler, waits for a round in progress to finish, and releases the scheduler's
// leases so that other processes take its work over at once.
func (sc *Scheduler) Stop() {
	sc.cancel()
	sc.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sc.s.releaseAll(ctx); err != nil {
		sc.s.log.Warn("scheduler: release leases", "err", err)
	}
}
