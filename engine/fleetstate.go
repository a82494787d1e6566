package engine

import (
	"errors"
	"sort"
	"time"

	"sota/resolver"
	"sota/store"
)

// The engine owns the status of every update and every vehicle's last contact; the filter language's
// update_status and seen_within read them from the resolver's fleet index, which the engine feeds
// through resolver.SetUpdateStatuses and SetContacts: once at start (the status of every vehicle's
// updates, request by request in creation order, so that the most recent update of a package version
// wins; every stored contact) and after each transaction that changes them.

// engineTx is a transaction of the engine's: it collects what to do once it has committed.
type engineTx struct {
	store.Txn
	after []func()
	// polls is the cache whose entries the transaction's writes drop after the commit
	// (pollcache.go); dropped, the vehicles already dropped
	polls   *pollCache
	dropped map[string]bool
}

// afterCommit runs f once t, an engineTx, has committed.
func (s *Service) afterCommit(t store.Txn, f func()) {
	if !onCommit(t, f) {
		f() // not an engine transaction (none is): the caller commits it before anyone reads the index
	}
}

// resUpdate runs fn in one transaction with the resolver: fn changes the engine's records through t
// and the resolver's through x's typed operations (a store.Part, so that neither domain gets the
// other's transaction); what fn leaves for after the commit runs after the resolver's own index
// changes. It runs again when the transaction conflicted with a concurrent one.
func (s *Service) resUpdate(fn func(t *engineTx, x *resolver.Tx) error) error {
	op := store.NewPart(func(raw store.Txn) func(*resolver.Tx) error {
		return func(x *resolver.Tx) error { return s.inResolverTx(raw, x, func(t *engineTx) error { return fn(t, x) }) }
	})
	var err error
	for i := 0; i < 20; i++ {
		err = s.res.Update(op)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	return err
}

// inResolverTx runs fn over raw, the store transaction under x, as an engine transaction whose
// after-commit work runs once x has committed.
func (s *Service) inResolverTx(raw store.Txn, x *resolver.Tx, fn func(t *engineTx) error) error {
	t := &engineTx{Txn: raw, polls: &s.polls}
	if err := fn(t); err != nil {
		return err
	}
	x.AfterCommit(func() {
		for _, f := range t.after {
			f()
		}
	})
	return nil
}

// noteStatus feeds the index with the new status of vin's update of request req once t commits.
func (s *Service) noteStatus(t store.Txn, vin, req string, to Status) {
	r, ok := s.request(req)
	if !ok || r.PackageID == nil {
		return
	}
	c := resolver.UpdateChange{VIN: vin, Package: *r.PackageID, Status: string(to)}
	s.afterCommit(t, func() { s.res.SetUpdateStatuses([]resolver.UpdateChange{c}) })
}

// loadFleetState feeds the index with the status of every stored update.
func (s *Service) loadFleetState() error {
	s.mu.RLock()
	reqs := make([]*UpdateRequest, 0, len(s.reqs))
	for _, r := range s.reqs {
		if r.PackageID != nil {
			reqs = append(reqs, r)
		}
	}
	s.mu.RUnlock()
	sort.Slice(reqs, func(i, j int) bool {
		if !reqs[i].CreatedAt.Equal(reqs[j].CreatedAt) {
			return reqs[i].CreatedAt.Before(reqs[j].CreatedAt)
		}
		return reqs[i].ID < reqs[j].ID
	})
	var batch []resolver.UpdateChange
	flush := func() {
		s.res.SetUpdateStatuses(batch)
		batch = batch[:0]
	}
	err := s.db.View(func(t store.Txn) error {
		for _, r := range reqs {
			for _, st := range Statuses {
				err := t.IterateKeys(rsPrefix(r.ID, st), func(key []byte) error {
					batch = append(batch, resolver.UpdateChange{VIN: lastPart(key), Package: *r.PackageID, Status: string(st)})
					if len(batch) == 4096 {
						flush()
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	flush()
	return err
}
