package engine

// Maintained per-request counts: GET /update_requests/:id and GET /campaigns/:id read them from
// memory instead of scanning a million status-index keys. They are counted from the status index
// once when the service opens, and from then on every status move adds its delta once its
// transaction has committed (a move inside a transaction the engine cannot watch marks the request
// for one recount instead).

import (
	"bytes"
	"sync"

	"sota/store"
)

type requestCounts struct {
	mu    sync.Mutex
	by    map[string]*Counts
	dirty map[string]bool
}

// onCommit runs f once t has committed, when t is the engine's (every transaction of Service.update,
// resUpdate and the resolver hooks is); ok is false for any other transaction.
func onCommit(t store.Txn, f func()) (ok bool) {
	x, is := t.(*engineTx)
	if is {
		x.after = append(x.after, f)
	}
	return is
}

// countMove records that one update of req moved from one status to another in t.
func (s *Service) countMove(t store.Txn, req string, from, to Status) {
	if onCommit(t, func() { s.addCount(req, from, -1); s.addCount(req, to, 1) }) {
		return
	}
	s.counts.mu.Lock()
	s.counts.dirty[req] = true
	s.counts.mu.Unlock()
}

// addCount adds n updates of status st to req's counts.
func (s *Service) addCount(req string, st Status, n int) {
	s.counts.mu.Lock()
	c := s.counts.by[req]
	if c == nil {
		c = &Counts{}
		s.counts.by[req] = c
	}
	c.add(st, n)
	s.counts.mu.Unlock()
}

// loadCounts counts every request's updates per status from the status index.
func (s *Service) loadCounts() error {
	s.counts.by, s.counts.dirty = map[string]*Counts{}, map[string]bool{}
	return s.db.View(func(t store.Txn) error {
		return t.IterateKeys([]byte(pRS), func(k []byte) error {
			rest := k[len(pRS):]
			i := bytes.IndexByte(rest, '/')
			if i < 0 {
				return nil
			}
			j := bytes.IndexByte(rest[i+1:], '/')
			if j < 0 {
				return nil
			}
			req, st := string(rest[:i]), Status(rest[i+1:i+1+j])
			c := s.counts.by[req]
			if c == nil {
				c = &Counts{}
				s.counts.by[req] = c
			}
			c.add(st, 1)
			return nil
		})
	})
}

// requestCounts returns req's counts, recounted from the status index when a move in a foreign
// transaction made them unsure.
func (s *Service) requestCounts(req string) (Counts, error) {
	s.counts.mu.Lock()
	dirty := s.counts.dirty[req]
	if !dirty {
		var c Counts
		if p := s.counts.by[req]; p != nil {
			c = *p
		}
		s.counts.mu.Unlock()
		return c, nil
	}
	defer s.counts.mu.Unlock()
	c := Counts{}
	err := s.db.View(func(t store.Txn) error {
		for _, st := range Statuses {
			n := 0
			if err := t.IterateKeys(rsPrefix(req, st), func([]byte) error { n++; return nil }); err != nil {
				return err
			}
			c.add(st, n)
		}
		return nil
	})
	if err != nil {
		return Counts{}, err
	}
	s.counts.by[req] = &c
	delete(s.counts.dirty, req)
	return c, nil
}
