package engine

// Webhooks: subscriptions to events, and their deliveries. An event is emitted in the transaction of
// the change it reports (emit), as one delivery record per subscribed webhook, so that a change and
// its deliveries commit together and survive a kill -9. The dispatcher (StartWebhooks) POSTs due
// deliveries, signed with the webhook's secret, and retries a failure with backoff for 24 h; a
// delivery is at least once (a crash between the POST and recording it sends it again; its id lets
// the receiver drop the duplicate).
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

func (s *Service) loadWebhooks() error {
	s.wh.byID = map[string]Webhook{}
	s.wh.nudge = make(chan struct{}, 1)
	return s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pWebhook), func(_, v []byte) error {
			var w Webhook
			if err := json.Unmarshal(v, &w); err != nil {
				return err
			}
			s.wh.byID[w.ID] = w
			return nil
		})
	})
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
// an event is emitted. With several processes on one store only the holder of the job/webhooks lease
// (leases.go) delivers, so that a delivery is not sent by two of them at once. The returned function
// stops it, waits for a round in progress and releases the lease.
func (s *Service) StartWebhooks(interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			if s.lease(ctx, leaseWebhooks, leaseTTL(interval)) {
				if _, err := s.DeliverWebhooks(ctx); err != nil && ctx.Err() == nil {
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
	type due struct{ hook, id string }
	var list []due
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pPending), func(k, v []byte) error {
			list = append(list, due{hook: string(v), id: string(k[len(pPending):])})
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	delivered, failed, gaveUp := 0, 0, 0
	for _, d := range list {
		if ctx.Err() != nil {
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

// attempt sends one delivery if it is due; it returns "" when it was not due.
func (s *Service) attempt(ctx context.Context, hook, id string) (string, error) {
	key := []byte(pDelivery + hook + "/" + id)
	var d Delivery
	err := s.db.View(func(t store.Txn) error {
		b, err := t.Get(key)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &d)
	})
	if errors.Is(err, store.ErrNotFound) { // the webhook was deleted meanwhile
		return "", s.update(func(t store.Txn) error { return t.Delete([]byte(pPending + id)) })
	}
	if err != nil {
		return "", err
	}
	now := s.now()
	if d.State != "pending" || d.NextAt != nil && d.NextAt.After(now) {
		return "", nil
	}
	s.wh.mu.RLock()
	w, ok := s.wh.byID[hook]
	s.wh.mu.RUnlock()
	if !ok {
		return "", nil
	}
	status, sendErr := s.post(ctx, w, d)
	d.Attempts++
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
	b, _ := json.Marshal(d)
	return result, s.update(func(t store.Txn) error {
		if ok, err := t.Has(key); err != nil || !ok {
			return err // deleted meanwhile
		}
		if err := t.Set(key, b); err != nil {
			return err
		}
		if d.State != "pending" {
			return t.Delete([]byte(pPending + id))
		}
		return nil
	})
}

func (s *Service) post(ctx context.Context, w Webhook, d Delivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sotad-webhooks")
	req.Header.Set("X-SOTA-Event", d.Event)
	req.Header.Set("X-SOTA-Delivery", d.ID)
	req.Header.Set("X-SOTA-Signature", Sign(w.Secret, d.Body))
	res, err := s.opt.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return res.StatusCode, nil
}
