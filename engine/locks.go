package engine

// Locks that hold across replicas. Queuing a package version (so that two requests for it never both
// queue one vehicle) and changing a campaign's state (launch, pause, resume, release, abort, gates)
// must each be done by one writer at a time cluster-wide, not only within one process.
//
// A lock is a lease (store leases: lock/pkg/<name>/<version>, lock/camp/<campaignID>) held by one
// acquisition (this process's holder id and a random suffix, so that two goroutines of one process
// exclude each other too), renewed every quarter of Options.QueueLeaseTTL while held; a waiter polls
// for it. A lease is exclusive only while it has not expired: a holder that stalled past its time to
// live (a long pause, a slow store) may wake up to find another writer holding the lock. So each lock
// also has a fence row,
//
//	core/lock/<what>                           the token of the acquisition that holds the lock
//
// written by every new holder in a transaction of its own before it reads anything it decides on, and
// read and rewritten (a conditional write) by the holder in every transaction that writes under the
// lock (queue.go: each chunk of a request's updates). The two transactions write the same row, so the
// store orders them (PostgreSQL: a serialization failure, Badger: a conflict, for the later one, which
// runs again): either the old holder's write commits first and the new holder, reading after its own
// fence write, sees it; or the old holder's transaction finds a token not its own and stops
// (errLockLost) without writing anything.

import (
	"bytes"
	"context"
	"errors"
	"time"

	"sota/resolver"
	"sota/store"
)

const (
	leaseLock = "lock/"
	pLock     = "core/lock/"
)

// errLockLost: a lock's lease expired while its holder stalled and another writer took the lock; the
// holder's work under it stopped.
var errLockLost = errors.New("engine: the lock expired while held and another writer took it; the work under it stopped")

// heldLock is one acquisition of a lock.
type heldLock struct {
	s      *Service
	lease  string
	holder string
	key    []byte // the fence row
	token  []byte
	lost   func() bool
	stop   func()
}

// lockPackage takes the queuing lock of one package version (see lock).
func (s *Service) lockPackage(ctx context.Context, id resolver.PackageID) (*heldLock, error) {
	return s.lock(ctx, "pkg/"+pkgPart(id))
}

// lockCampaign takes the lock of one campaign's state, and then catches up with the store's change
// feed, so that the cached campaign reflects what the lock's previous holder wrote on any replica.
func (s *Service) lockCampaign(ctx context.Context, id string) (*heldLock, error) {
	l, err := s.lock(ctx, "camp/"+id)
	if err != nil {
		return nil, err
	}
	if err := s.db.CatchUp(ctx); err != nil {
		l.unlock()
		return nil, err
	}
	return l, nil
}

// lock waits until it holds the lock named what (or ctx ends), then writes its fence token.
func (s *Service) lock(ctx context.Context, what string) (*heldLock, error) {
	l := &heldLock{s: s, lease: leaseLock + what, holder: s.holder + "/" + newUUIDs(1)[0],
		key: []byte(pLock + what)}
	l.token = []byte(l.holder)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		ok, err := s.db.TryLease(ctx, l.lease, l.holder, s.opt.QueueLeaseTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	l.lost, l.stop = s.renewLease(l.lease, l.holder)
	if err := s.update(func(t store.Txn) error { return t.Set(l.key, l.token) }); err != nil {
		l.unlock()
		return nil, err
	}
	return l, nil
}

// check is the fence in the caller's transaction: the lock is still this acquisition's (errLockLost
// otherwise), and the fence row is written again, so that the store orders t with the transaction of
// a writer that takes the lock over.
func (l *heldLock) check(t store.Txn) error {
	if l == nil {
		return nil
	}
	v, err := t.Get(l.key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if !bytes.Equal(v, l.token) {
		return errLockLost
	}
	return t.Set(l.key, l.token)
}

// unlock stops the renewals, removes the fence row if it is still this acquisition's and releases
// the lease.
func (l *heldLock) unlock() {
	if l == nil {
		return
	}
	l.stop()
	err := l.s.update(func(t store.Txn) error {
		v, err := t.Get(l.key)
		if errors.Is(err, store.ErrNotFound) || err == nil && !bytes.Equal(v, l.token) {
			return nil
		}
		if err != nil {
			return err
		}
		return t.Delete(l.key)
	})
	if err != nil {
		l.s.log.Warn("remove a lock's fence", "lock", l.lease, "err", err)
	}
	if err := l.s.db.ReleaseLeases(context.Background(), l.holder, l.lease); err != nil {
		l.s.log.Warn("release a lock", "lock", l.lease, "err", err)
	}
}
