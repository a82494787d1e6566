package engine

// The poll cache: what the device poll (GET /vehicle_updates/:vin) and the DDI base poll read of a
// vehicle, kept in memory so that a poll reads nothing from the store when nothing changed: the
// vehicle's active (pending and in-flight) update records and its data-plan link. The request and
// campaign fields an answer also shows (package, priority, validity, a paused campaign's hold) come
// from the requests and campaigns the engine keeps in memory anyway, at the time of the poll.
//
// Freshness. An entry is dropped
//   - after every local transaction that wrote one of the vehicle's update records (core/upd/<vin>/)
//     or its data-plan link (core/vplan/<vin>), before the call that made the change returns
//     (engineTx.Set and Delete: every write of the engine's goes through one);
//   - when the change feed hands over such a key that another process wrote (feed.go), and all of
//     them when it cannot tell what changed.
//
// A poll first catches up with the change feed (store.DB.CatchUp: one round trip that concurrent
// polls share; nothing on Badger), so an update queued through any replica before the poll arrived
// is in its answer. A miss reads the store (one snapshot) and keeps what it read only when no
// change of the vehicle was dropped meanwhile (a generation per shard), so an entry never holds what
// a committed change replaced.
//
// Memory: an entry is about 100 bytes plus about 150 per active update; at most pollCacheMax
// vehicles are kept (beyond that a poll reads the store).

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"sota/store"
)

const (
	pollShards   = 64
	pollCacheMax = 1 << 21 // vehicles
)

type pollEntry struct {
	ids  []string
	recs []updRec
	plan string // data-plan id ("": none)
}

type pollShard struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]*pollEntry
}

type pollCache struct {
	seed   maphash.Seed
	shards [pollShards]pollShard
}

func (c *pollCache) shard(vin string) *pollShard {
	return &c.shards[maphash.String(c.seed, vin)%pollShards]
}

// get returns the vehicle's entry and, on a miss, the generation a load must find unchanged to keep
// what it read.
func (c *pollCache) get(vin string) (*pollEntry, uint64) {
	sh := c.shard(vin)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.m[vin], sh.gen
}

// put keeps e unless a change was dropped since gen (or the shard is full).
func (c *pollCache) put(vin string, gen uint64, e *pollEntry) {
	sh := c.shard(vin)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen != gen {
		return
	}
	if sh.m == nil {
		sh.m = map[string]*pollEntry{}
	}
	if len(sh.m) < pollCacheMax/pollShards {
		sh.m[vin] = e
	}
}

// drop forgets the vehicle's entry (a change committed).
func (c *pollCache) drop(vin string) {
	sh := c.shard(vin)
	sh.mu.Lock()
	sh.gen++
	delete(sh.m, vin)
	sh.mu.Unlock()
}

// clear forgets every entry.
func (c *pollCache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.gen++
		sh.m = nil
		sh.mu.Unlock()
	}
}

// pollKeyVIN is the VIN of a key whose change the poll cache must see (an update record or a
// data-plan link), "" for any other key.
func pollKeyVIN(key []byte) string {
	k := string(key)
	switch {
	case strings.HasPrefix(k, pUpd):
		vin, _, _ := strings.Cut(k[len(pUpd):], "/")
		return vin
	case strings.HasPrefix(k, pVPlan):
		return k[len(pVPlan):]
	}
	return ""
}

// Set writes through the transaction; a key the poll cache must see drops the vehicle's entry after
// the commit.
func (t *engineTx) Set(k, v []byte) error {
	t.notePoll(k)
	return t.Txn.Set(k, v)
}

// Delete deletes through the transaction, like Set.
func (t *engineTx) Delete(k []byte) error {
	t.notePoll(k)
	return t.Txn.Delete(k)
}

func (t *engineTx) notePoll(k []byte) {
	if t.polls == nil {
		return
	}
	if vin := pollKeyVIN(k); vin != "" {
		if t.dropped == nil {
			t.dropped = map[string]bool{}
		} else if t.dropped[vin] {
			return
		}
		t.dropped[vin] = true
		t.after = append(t.after, func() { t.polls.drop(vin) })
	}
}

// pollState returns the vehicle's active update records and data-plan link: from the cache, or read
// from the store (and kept).
func (s *Service) pollState(vin string) (*pollEntry, error) {
	e, gen := s.polls.get(vin)
	if e != nil {
		return e, nil
	}
	e = &pollEntry{}
	err := s.db.View(func(t store.Txn) error {
		e.ids, e.recs = e.ids[:0], e.recs[:0]
		err := t.Iterate(updPrefix(vin), func(k, v []byte) error {
			var rec updRec
			if err := decodeUpd(v, &rec); err != nil {
				return err
			}
			if rec.Status.Active() {
				e.ids = append(e.ids, lastPart(k))
				e.recs = append(e.recs, rec)
			}
			return nil
		})
		if err != nil {
			return err
		}
		e.plan, err = s.vehiclePlan(t, vin)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.polls.put(vin, gen, e)
	return e, nil
}

// activeUpdates is the vehicle's pending (not held) and in-flight updates in delivery order, from
// the poll cache, and its data-plan link.
func (s *Service) activeUpdates(vin string) ([]Update, string, error) {
	e, err := s.pollState(vin)
	if err != nil {
		return nil, "", err
	}
	us := make([]Update, 0, len(e.recs))
	for i := range e.recs {
		rec := e.recs[i] // view keeps pointers into the record: a copy, not the cached one
		u := s.view(nil, vin, e.ids[i], &rec)
		if s.held(&u) {
			continue
		}
		us = append(us, u)
	}
	SortDelivery(us)
	return us, e.plan, nil
}

// pollsFresh catches up with the change feed, so that the poll cache holds every change that any
// process committed before the poll arrived; false when the feed cannot be read now (the poll then
// reads the store).
func (s *Service) pollsFresh() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.db.CatchUp(ctx); err != nil {
		s.log.Debug("poll: the change feed cannot be read; reading the store", "err", err)
		return false
	}
	return true
}

// nextCached is nextUpdate from the poll cache; a vehicle with a data plan reads the store (its
// billing cycle decides what fits).
func (s *Service) nextCached(vin string, installsOnly bool) (Update, bool, error) {
	us, plan, err := s.activeUpdates(vin)
	if err != nil {
		return Update{}, false, err
	}
	if plan != "" {
		u, ok, _, err := s.nextUpdate(vin, installsOnly)
		return u, ok, err
	}
	u, ok, _, err := s.pickNext(nil, vin, us, installsOnly, s.now())
	return u, ok, err
}
