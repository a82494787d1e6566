package engine

// Replicas. With several sotad processes on one PostgreSQL store, the engine state this process
// keeps in memory follows what the others write through the store's change feed
// (store/changes.go), within its poll interval:
//
//	core/req/<id>                   the update request is read again (requests are kept in memory)
//	core/camp/<id>                  the campaign is read again (campaigns are kept in memory)
//	core/seen/<vin>                 the vehicle's last contact reaches the fleet index (seen_within)
//	                                and the vehicle counts as connected here too (Connected)
//	core/rs/<req>/<status>/<vin>    an update's new status reaches the fleet index (update_status),
//	                                and the request's counts are recounted at their next read
//	core/devcfg/<vin>               the cached "configuration reported" answer is dropped
//	core/wh/<id>                    the webhook subscription is read again (emit reads them in memory)
//	core/upd/<vin>/<id>, core/vplan/<vin>  the vehicle's poll-cache entry is dropped (pollcache.go)
//
// Campaign preview, launch, resume and release catch up with the feed first (store.DB.CatchUp), so
// a campaign created or changed on another replica is known; queueing does through its resolve.
//
// Not followed yet (each process keeps its own): the scheduler's wake-up bookkeeping and the device
// "connected" state: see docs/scale-out.md. Queuing a package version and changing a campaign take
// locks that hold across replicas (locks.go).

import (
	"errors"
	"strings"

	"sota/resolver"
	"sota/store"
)

// follow subscribes to core/ (contacts included); called at the start of New, whose end calls
// s.feed.Ready.
func (s *Service) follow() {
	s.feed = s.db.Follow("core/", s.applyFeed)
}

// applyFeed reads again what other processes changed (everything the engine keeps, with reload).
func (s *Service) applyFeed(keys [][]byte, reload bool) error {
	if reload {
		return s.reloadAll()
	}
	var reqs, camps, seen, rs, hooks []string
	for _, k := range keys {
		key := string(k)
		switch {
		case strings.HasPrefix(key, pReq):
			reqs = append(reqs, key[len(pReq):])
		case strings.HasPrefix(key, pCamp):
			camps = append(camps, key[len(pCamp):])
		case strings.HasPrefix(key, pSeen):
			seen = append(seen, key[len(pSeen):])
		case strings.HasPrefix(key, pRS):
			rs = append(rs, key)
			if req, _, ok := strings.Cut(key[len(pRS):], "/"); ok {
				// another process moved one of its updates: recount at the next read
				s.counts.mu.Lock()
				s.counts.dirty[req] = true
				s.counts.mu.Unlock()
			}
		case strings.HasPrefix(key, pDevCfg):
			s.forgetReported(key[len(pDevCfg):])
		case strings.HasPrefix(key, pWebhook):
			hooks = append(hooks, key[len(pWebhook):])
		}
		if vin := pollKeyVIN(k); vin != "" {
			s.polls.drop(vin) // an update record or data-plan link another process wrote
		}
	}
	if len(hooks) > 0 {
		if err := s.refreshWebhooks(hooks); err != nil {
			return err
		}
	}
	if len(reqs)+len(camps)+len(seen)+len(rs) == 0 {
		return nil
	}
	var contacts []resolver.Contact
	var statuses []resolver.UpdateChange
	err := s.db.View(func(t store.Txn) error {
		contacts, statuses = contacts[:0], statuses[:0]
		for _, id := range reqs {
			var r UpdateRequest
			if err := getRecord(t, reqKey(id), &r); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			s.cacheRequest(r)
		}
		for _, id := range camps {
			var c Campaign
			if err := getRecord(t, campKey(id), &c); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			s.cacheCampaign(c)
		}
		for _, vin := range seen {
			at, err := lastSeen(t, vin)
			if err != nil {
				return err
			}
			contacts = append(contacts, resolver.Contact{VIN: vin, At: at})
			if at.IsZero() {
				s.storedSeen.Delete(vin)
			} else {
				s.storedSeen.Store(vin, at) // another replica's contact: connected here too (Connected)
			}
		}
		for _, key := range rs {
			parts := strings.Split(key[len(pRS):], "/") // request, status, vin
			if len(parts) != 3 {
				continue
			}
			if ok, err := t.Has([]byte(key)); err != nil {
				return err
			} else if !ok {
				continue // the status it left; the new one is a key of the same transaction
			}
			if r, ok := s.request(parts[0]); ok && r.PackageID != nil {
				statuses = append(statuses, resolver.UpdateChange{VIN: parts[2], Package: *r.PackageID, Status: parts[1]})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.res.SetContacts(contacts)
	s.res.SetUpdateStatuses(statuses)
	return nil
}

// reloadAll reads again every request, campaign, contact and update status (the feed could not
// tell what changed).
func (s *Service) reloadAll() error {
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pReq), func(_, v []byte) error {
			var r UpdateRequest
			if err := decode(v, &r); err != nil {
				return err
			}
			s.cacheRequest(r)
			return nil
		})
	})
	if err != nil {
		return err
	}
	err = s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pCamp), func(_, v []byte) error {
			var c Campaign
			if err := decode(v, &c); err != nil {
				return err
			}
			s.cacheCampaign(c)
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.reportedMu.Lock()
	s.reportedGen++
	s.reported.Clear()
	s.reportedMu.Unlock()
	s.storedSeen.Clear()
	if err := s.loadWebhooks(); err != nil {
		return err
	}
	s.polls.clear()
	if err := s.loadFleetState(); err != nil {
		return err
	}
	return s.loadContacts()
}

// getRecord reads and decodes the record under key.
func getRecord(t store.Txn, key []byte, v any) error {
	b, err := t.Get(key)
	if err != nil {
		return err
	}
	return decode(b, v)
}
