package engine

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
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
func (s *Service) SignWakeup(vin string) Wakeup {
	n := make([]byte, 16)
	if _, err := rand.Read(n); err != nil {
		panic(err)
	}
	return wire.SignWakeup(s.key, vin, hex.EncodeToString(n), s.now().Format(time.RFC3339Nano))
}

// Contact records that the vehicle's device talked to the server now (it counts as connected for
// Options.ConnectedWindow). The device API calls it on every request.
func (s *Service) Contact(vin string) {
	s.contactMu.Lock()
	s.lastSeen[vin] = s.now()
	s.contactMu.Unlock()
}

// Disconnect records DEV_DISCONNECT: the vehicle is not connected and is not woken again within its
// reconnect interval.
func (s *Service) Disconnect(vin string) {
	s.contactMu.Lock()
	delete(s.lastSeen, vin)
	s.lastWake[vin] = s.now()
	s.contactMu.Unlock()
}

// Connected reports whether the vehicle contacted the server within Options.ConnectedWindow.
func (s *Service) Connected(vin string) bool {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	t, ok := s.lastSeen[vin]
	return ok && s.now().Sub(t) < s.opt.ConnectedWindow
}

func (s *Service) recentlyWoken(vin string, now time.Time) bool {
	s.contactMu.Lock()
	defer s.contactMu.Unlock()
	t, ok := s.lastWake[vin]
	return ok && now.Sub(t) < s.opt.ReconnectInterval
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
// returns how many were woken.
func (s *Service) Xmit(ctx context.Context) (int, error) {
	woken, _, err := s.xmit(ctx)
	return woken, err
}

// xmit is Xmit that also returns how many wake-ups were not delivered.
func (s *Service) xmit(ctx context.Context) (woken, failed int, err error) {
	s.xmitMu.Lock() // one run at a time, so that a vehicle is not woken twice by overlapping runs
	defer s.xmitMu.Unlock()
	vins, err := s.vehiclesWithWork()
	if err != nil {
		return 0, 0, err
	}
	now := s.now()
	for _, vin := range vins {
		if woken >= s.opt.MaxWakeups || ctx.Err() != nil {
			break
		}
		if s.Connected(vin) || s.recentlyWoken(vin, now) {
			continue
		}
		_, ok, _, err := s.NextUpdate(vin)
		if err != nil {
			return woken, failed, err
		}
		if !ok {
			continue
		}
		if err := s.sendWakeup(ctx, s.SignWakeup(vin)); err != nil {
			s.log.Debug("wake-up not delivered", "vin", vin, "err", err) // counted in the round's summary
			failed++
			continue
		}
		s.contactMu.Lock()
		s.lastWake[vin] = now
		s.contactMu.Unlock()
		woken++
	}
	return woken, failed, nil
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

// Scheduler runs purge, wake-ups and blob collection on a ticker.
type Scheduler struct {
	s        *Service
	interval time.Duration
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	runs     int
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

// RunOnce does one round: purge, then wake-ups, then campaigns (retries, late joiners, gates), then
// blob collection. It logs one summary line (at info when the round did something, else at debug),
// and errors.
func (sc *Scheduler) RunOnce(ctx context.Context) {
	s := sc.s
	start := time.Now()
	purged, err := s.Purge()
	if err != nil {
		s.log.Error("scheduler: purge", "err", err)
	}
	woken, failed, err := s.xmit(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Error("scheduler: wake-ups", "err", err)
	}
	if err := s.RunCampaigns(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("scheduler: campaigns", "err", err)
	}
	blobs, err := s.CollectBlobs()
	if err != nil {
		s.log.Error("scheduler: blob collection", "err", err)
	}
	level := slog.LevelDebug
	if purged+woken+failed+blobs > 0 {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "scheduler round", "purged", purged, "woken", woken, "wakeupsFailed", failed,
		"blobsRemoved", blobs, "ms", time.Since(start).Milliseconds())
	sc.mu.Lock()
	sc.runs++
	sc.mu.Unlock()
}

// Runs is the number of completed rounds.
func (sc *Scheduler) Runs() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.runs
}

// Stop ends the scheduler and waits for a round in progress to finish.
func (sc *Scheduler) Stop() {
	sc.cancel()
	sc.wg.Wait()
}
