package engine

// Webhooks: subscriptions to events, and their deliveries. An event is emitted in the transaction of
// the change it reports (emit), as one delivery record per subscribed webhook, so that a change and
// its deliveries commit together and survive a kill -9. The dispatcher (StartWebhooks) POSTs due
// deliveries, signed with the webhook's secret, and retries a failure with backoff for 24 h; a
// delivery is at least once (a crash between the POST and recording it sends it again; its id lets
// the receiver drop the duplicate).
//
// Replicas. Every attempt is claimed in the store before it is sent: one transaction finds the
// delivery due (nextAt reached) and moves its nextAt to the end of the claim (now +
// webhookClaimTTL, longer than the POST may take), counting the attempt. Whoever else looks at the
// delivery meanwhile (a replica that took the job/webhooks lease while this one stalled) finds it
// not due and leaves it alone, so no delivery is sent by two processes at once; a process killed
// after its claim leaves the delivery due again when the claim expires, and the next round of any
// replica sends it again. The attempt's result is written only while the record still carries the
// claim (its attempt count). The subscriptions are kept in memory for emit and follow the other
// replicas' changes through the store's change feed (feed.go).
//
// Keys:
//
//	core/wh/<id>                        webhook {id, url, events, secret, createdAt}
//	core/whd/<webhook id>/<delivery id> delivery {id, webhook, event, at, body, state, attempts, nextAt, ...}
//	core/whp/<delivery id>              <webhook id>: the pending deliveries

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"sota/errs"
	"sota/store"
)

// Events a webhook may subscribe to.
var Events = []string{"update.finished", "update.failed", "update.canceled", "campaign.released",
	"campaign.paused", "campaign.finished", "campaign.aborted", "vehicle.created", "vehicle.deleted"}

// WebhookRetryFor is how long a failing delivery is retried.
const WebhookRetryFor = 24 * time.Hour

// webhookBackoff are the waits after the 1st, 2nd, … failed attempt (the last repeats).
var webhookBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}

// DefaultWebhookTimeout is Options.WebhookTimeout when none is given.
const DefaultWebhookTimeout = 10 * time.Second

// webhookClaimTTL is how long a claimed attempt keeps others from sending the same delivery: the
// POST's timeout, and as much again (at least a second) for the time between the claim's commit and
// the request leaving.
func webhookClaimTTL(timeout time.Duration) time.Duration { return timeout + max(timeout, time.Second) }

const (
	pWebhook  = "core/wh/"
	pDelivery = "core/whd/"
	pPending  = "core/whp/"
)

// Webhook is a subscription. Its secret signs the deliveries and is never shown again.
type Webhook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Delivery is one event sent (or to send) to one webhook.
type Delivery struct {
	ID         string          `json:"id"`
	Webhook    string          `json:"webhook"`
	Event      string          `json:"event"`
	At         time.Time       `json:"at"`
	State      string          `json:"state"` // pending, delivered, failed (gave up after 24 h)
	Attempts   int             `json:"attempts"`
	NextAt     *time.Time      `json:"nextAt,omitempty"`
	LastStatus int             `json:"lastStatus,omitempty"`
	LastError  string          `json:"lastError,omitempty"`
	Body       json.RawMessage `json:"body"`
}

// webhooks keeps the subscriptions in memory (they are few and every emit reads them).
type webhooks struct {
	mu    sync.RWMutex
	byID  map[string]Webhook
	nudge chan struct{}
	// client posts the deliveries: Options.HTTPClient without its own timeout (each POST has
	// Options.WebhookTimeout)
	client *http.Client
	// Delivered, when set, is called after each attempt (metrics): result is delivered, retry or gave_up.
	observe func(result string)
}

func newWebhookID() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ObserveWebhooks sets a function called after each delivery attempt with its result (delivered,
// retry or gave_up).
func (s *Service) ObserveWebhooks(f func(result string)) { s.wh.observe = f }

// loadWebhooks reads every subscription (at start, and when the change feed cannot tell what
// changed).
func (s *Service) loadWebhooks() error {
	byID := map[string]Webhook{}
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pWebhook), func(_, v []byte) error {
			var w Webhook
			if err := json.Unmarshal(v, &w); err != nil {
				return err
			}
			byID[w.ID] = w
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.wh.mu.Lock()
	s.wh.byID = byID
	s.wh.mu.Unlock()
	return nil
}

// refreshWebhooks reads again the subscriptions another process added or deleted (the change feed
// named their keys).
func (s *Service) refreshWebhooks(ids []string) error {
	got := map[string]*Webhook{}
	err := s.db.View(func(t store.Txn) error {
		for _, id := range ids {
			var w Webhook
			b, err := t.Get([]byte(pWebhook + id))
			if errors.Is(err, store.ErrNotFound) {
				got[id] = nil
				continue
			}
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &w); err != nil {
				return err
			}
			got[id] = &w
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.wh.mu.Lock()
	for id, w := range got {
		if w == nil {
			delete(s.wh.byID, id)
		} else {
			s.wh.byID[id] = *w
		}
	}
	s.wh.mu.Unlock()
	return nil
}

// AddWebhook subscribes url to events, signing deliveries with secret (8 or more characters).
func (s *Service) AddWebhook(rawURL string, events []string, secret string) (Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Webhook{}, errs.InvalidEntity("url must be an absolute http or https URL, not %q", rawURL)
	}
	if len(secret) < 8 || len(secret) > 256 {
		return Webhook{}, errs.InvalidEntity("secret must be 8 to 256 characters")
	}
	if len(events) == 0 {
		return Webhook{}, errs.InvalidEntity("events must name at least one of: %s", strings.Join(Events, ", "))
	}
	seen := map[string]bool{}
	for _, e := range events {
		known := false
		for _, k := range Events {
			known = known || k == e
		}
		if !known {
			return Webhook{}, errs.InvalidEntity("unknown event %q: one of %s", e, strings.Join(Events, ", "))
		}
		seen[e] = true
	}
	evs := make([]string, 0, len(seen))
	for e := range seen {
		evs = append(evs, e)
	}
	sort.Strings(evs)
	w := Webhook{ID: newWebhookID(), URL: rawURL, Events: evs, Secret: secret, CreatedAt: s.now()}
	b, _ := json.Marshal(w)
	if err := s.update(func(t store.Txn) error { return t.Set([]byte(pWebhook+w.ID), b) }); err != nil {
		return Webhook{}, err
	}
	s.wh.mu.Lock()
	s.wh.byID[w.ID] = w
	s.wh.mu.Unlock()
	return w, nil
}

// Webhooks lists the subscriptions by creation time, without their secrets.
func (s *Service) Webhooks() []Webhook {
	s.wh.mu.RLock()
	out := make([]Webhook, 0, len(s.wh.byID))
	for _, w := range s.wh.byID {
		w.Secret = ""
		out = append(out, w)
	}
	s.wh.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		return out[i].CreatedAt.Before(out[j].CreatedAt) || out[i].CreatedAt.Equal(out[j].CreatedAt) && out[i].ID < out[j].ID
	})
	return out
}

func errMissingWebhook() error {
	return errs.New(errs.NotFound, "missing_webhook", "Webhook does not exist")
}

// DeleteWebhook removes a subscription with its deliveries (pending ones are not sent).
func (s *Service) DeleteWebhook(id string) error {
	err := s.update(func(t store.Txn) error {
		if ok, err := t.Has([]byte(pWebhook + id)); err != nil {
			return err
		} else if !ok {
			return errMissingWebhook()
		}
		var keys [][]byte
		err := t.Iterate([]byte(pDelivery+id+"/"), func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := t.Delete([]byte(pPending + string(k[len(pDelivery)+len(id)+1:]))); err != nil {
				return err
			}
			if err := t.Delete(k); err != nil {
				return err
			}
		}
		return t.Delete([]byte(pWebhook + id))
	})
	if err == nil {
		s.wh.mu.Lock()
		delete(s.wh.byID, id)
		s.wh.mu.Unlock()
	}
	return err
}

// Deliveries returns a webhook's deliveries, newest first, at most limit.
func (s *Service) Deliveries(id string, limit int) ([]Delivery, error) {
	s.wh.mu.RLock()
	_, ok := s.wh.byID[id]
	s.wh.mu.RUnlock()
	if !ok {
		return nil, errMissingWebhook()
	}
	var out []Delivery
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pDelivery+id+"/"), func(_, v []byte) error {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	// ids start with the emission time, so key order is time order
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []Delivery{}
	}
	return out, err
}

// emit records event with data for every webhook subscribed to it, in t: the transaction of the change
// the event reports. Without subscribers it writes nothing.
func (s *Service) emit(t store.Txn, event string, data any) error {
	s.wh.mu.RLock()
	var targets []string
	for id, w := range s.wh.byID {
		for _, e := range w.Events {
			if e == event {
				targets = append(targets, id)
				break
			}
		}
	}
	s.wh.mu.RUnlock()
	if len(targets) == 0 {
		return nil
	}
	sort.Strings(targets)
	now := s.now()
	for _, hook := range targets {
		id := fmt.Sprintf("%020d-%s", now.UnixNano(), newWebhookID()[:12])
		body, err := json.Marshal(map[string]any{"id": id, "event": event, "at": now, "data": data})
		if err != nil {
			return err
		}
		d := Delivery{ID: id, Webhook: hook, Event: event, At: now, State: "pending", NextAt: &now, Body: body}
		b, _ := json.Marshal(d)
		if err := t.Set([]byte(pDelivery+hook+"/"+id), b); err != nil {
			return err
		}
		if err := t.Set([]byte(pPending+id), []byte(hook)); err != nil {
			return err
		}
	}
	select {
	case s.wh.nudge <- struct{}{}:
	default:
	}
	return nil
}

// Sign is the X-SOTA-Signature of body with secret: sha256=<hex HMAC-SHA256>.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// StartWebhooks runs the dispatcher: due deliveries are sent at least every interval, and soon after
// an event is emitted. With several processes on one store the holder of the job/webhooks lease
// (leases.go) delivers, renewing it during a long round and stopping when it lost it; each attempt is
// also claimed in the store (claimDelivery), so that a holder that stalled past its lease and the next
// one never send the same delivery at once. The returned function stops it, waits for a round in
// progress and releases the lease.
func (s *Service) StartWebhooks(interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	ttl := leaseTTL(interval)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			if s.lease(ctx, leaseWebhooks, ttl) {
				renewed := time.Now()
				keep := func() bool { // renew the lease a third of the way into it
					if time.Since(renewed) < ttl/3 {
						return true
					}
					renewed = time.Now()
					return s.lease(ctx, leaseWebhooks, ttl)
				}
				if _, err := s.deliverWebhooks(ctx, keep); err != nil && ctx.Err() == nil {
					s.log.Error("webhooks", "err", err)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			case <-s.wh.nudge:
				time.Sleep(20 * time.Millisecond) // let the emitting transaction commit
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer rcancel()
		if err := s.db.ReleaseLeases(rctx, s.holder, leaseWebhooks); err != nil {
			s.log.Warn("webhooks: release the lease", "err", err)
		}
	}
}

// DeliverWebhooks sends every due pending delivery once and returns how many were delivered.
func (s *Service) DeliverWebhooks(ctx context.Context) (int, error) {
	return s.deliverWebhooks(ctx, nil)
}

// deliverWebhooks is DeliverWebhooks that stops early when keep (if set) answers false before an
// attempt (the dispatcher lost its lease).
func (s *Service) deliverWebhooks(ctx context.Context, keep func() bool) (int, error) {
	type due struct{ hook, id string }
	var list []due
	now := s.now()
	err := s.db.View(func(t store.Txn) error {
		list = list[:0]
		var pending []due
		err := t.Iterate([]byte(pPending), func(k, v []byte) error {
			pending = append(pending, due{hook: string(v), id: string(k[len(pPending):])})
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range pending { // only the due ones: the others cost no transaction
			var rec Delivery
			b, err := t.Get([]byte(pDelivery + d.hook + "/" + d.id))
			if err == nil && json.Unmarshal(b, &rec) == nil && rec.State == "pending" && rec.NextAt != nil && rec.NextAt.After(now) {
				continue
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			list = append(list, d) // due, or to be cleaned up by attempt
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	delivered, failed, gaveUp := 0, 0, 0
	for _, d := range list {
		if ctx.Err() != nil || keep != nil && !keep() {
			break
		}
		res, err := s.attempt(ctx, d.hook, d.id)
		if err != nil {
			return delivered, err
		}
		switch res {
		case "delivered":
			delivered++
		case "retry":
			failed++
		case "gave_up":
			gaveUp++
		}
		if res != "" && s.wh.observe != nil {
			s.wh.observe(res)
		}
	}
	if delivered+failed+gaveUp > 0 {
		s.log.Info("webhook round", "delivered", delivered, "failed", failed, "gaveUp", gaveUp)
	}
	return delivered, nil
}

// claimDelivery claims the delivery's next attempt if it is due, in one transaction: its nextAt
// moves to until (the end of the claim) and its attempts count this one. It returns the claimed
// record and its webhook, ok false when it was not due (not yet, or claimed by another process). A
// delivery whose webhook was deleted meanwhile is removed.
func (s *Service) claimDelivery(hook, id string, now, until time.Time) (d Delivery, w Webhook, ok bool, err error) {
	key := []byte(pDelivery + hook + "/" + id)
	err = s.update(func(t store.Txn) error {
		ok = false
		b, err := t.Get(key)
		if errors.Is(err, store.ErrNotFound) { // the webhook was deleted meanwhile
			return t.Delete([]byte(pPending + id))
		}
		if err != nil {
			return err
		}
		wb, err := t.Get([]byte(pWebhook + hook))
		if errors.Is(err, store.ErrNotFound) { // deleted on another replica while this one emitted
			if err := t.Delete(key); err != nil {
				return err
			}
			return t.Delete([]byte(pPending + id))
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(wb, &w); err != nil {
			return err
		}
		d = Delivery{}
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		if d.State != "pending" {
			return t.Delete([]byte(pPending + id))
		}
		if d.NextAt != nil && d.NextAt.After(now) {
			return nil // not due, or another process's attempt is under way
		}
		d.Attempts++
		d.NextAt = &until
		nb, _ := json.Marshal(d)
		ok = true
		return t.Set(key, nb)
	})
	return d, w, ok, err
}

// attempt sends one delivery if it is due and not claimed by another process; it returns "" when it
// was not sent.
func (s *Service) attempt(ctx context.Context, hook, id string) (string, error) {
	now := s.now()
	timeout := s.opt.WebhookTimeout
	d, w, ok, err := s.claimDelivery(hook, id, now, now.Add(webhookClaimTTL(timeout)))
	if err != nil || !ok {
		return "", err
	}
	// the request is abandoned within the timeout of the claim's start, well before the claim ends
	pctx, cancel := context.WithDeadline(ctx, time.Now().Add(timeout-s.now().Sub(now)))
	status, sendErr := s.post(pctx, w, d)
	cancel()
	key := []byte(pDelivery + hook + "/" + id)
	if ctx.Err() != nil && sendErr != nil { // stopping: give the claim back for the next round
		return "", s.update(func(t store.Txn) error {
			var cur Delivery
			if err := getRecord(t, key, &cur); err != nil || cur.State != "pending" || cur.Attempts != d.Attempts {
				return nil
			}
			cur.NextAt = &now
			nb, _ := json.Marshal(cur)
			return t.Set(key, nb)
		})
	}
	d.LastStatus, d.LastError = status, ""
	result := "delivered"
	switch {
	case sendErr == nil && status/100 == 2:
		d.State, d.NextAt = "delivered", nil
	default:
		if sendErr != nil {
			d.LastError = sendErr.Error()
		} else {
			d.LastError = fmt.Sprintf("answered %d", status)
		}
		wait := webhookBackoff[min(d.Attempts-1, len(webhookBackoff)-1)]
		next := s.now().Add(wait)
		if next.Sub(d.At) > WebhookRetryFor {
			d.State, d.NextAt, result = "failed", nil, "gave_up"
		} else {
			d.NextAt, result = &next, "retry"
		}
	}
	return result, s.update(func(t store.Txn) error {
		b, err := t.Get(key)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		var cur Delivery
		if err := json.Unmarshal(b, &cur); err != nil {
			return err
		}
		if cur.State != "pending" {
			return nil // another process's attempt (after this one's claim expired) recorded it
		}
		rec := d
		if cur.Attempts != d.Attempts { // the claim expired and another attempt began
			if d.State != "delivered" {
				return nil // that attempt records its own result
			}
			rec = cur // it was delivered all the same
			rec.State, rec.NextAt, rec.LastStatus, rec.LastError = "delivered", nil, d.LastStatus, ""
		}
		nb, _ := json.Marshal(rec)
		if err := t.Set(key, nb); err != nil {
			return err
		}
		if rec.State != "pending" {
			return t.Delete([]byte(pPending + id))
		}
		return nil
	})
}

// post sends one delivery, within ctx's deadline.
func (s *Service) post(ctx context.Context, w Webhook, d Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sotad-webhooks")
	req.Header.Set("X-SOTA-Event", d.Event)
	req.Header.Set("X-SOTA-Delivery", d.ID)
	req.Header.Set("X-SOTA-Signature", Sign(w.Secret, d.Body))
	res, err := s.wh.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return res.StatusCode, nil
}
