package engine

import (
	"sort"

	"sota/resolver"
	"sota/store"
)

// The engine owns the status of every update; the filter language's update_status reads it from the
// resolver's fleet index, which the engine feeds through resolver.SetUpdateStatuses: once at start
// (the status of every vehicle's updates, request by request in creation order, so that the most
// recent update of a package version wins) and after each transaction that changes a status.

// engineTx is a transaction of Service.update: it collects what to do once it has committed.
type engineTx struct {
	store.Txn
	after []func()
}

// afterCommit runs f once t has committed: t from Service.update, or from the resolver's Update (a
// hook's or resUpdate's transaction).
func (s *Service) afterCommit(t store.Txn, f func()) {
	if x, ok := t.(*engineTx); ok {
		x.after = append(x.after, f)
		return
	}
	if resolver.AfterCommit(t, f) != nil {
		f() // a transaction of neither: the caller commits it before anyone reads the index
	}
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
