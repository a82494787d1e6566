package engine

// Scheduler work across replicas. Several sotad processes (replicas) may run over one PostgreSQL
// store, each with its own scheduler; the scheduler's work must still run once per interval
// cluster-wide and move to another replica when one dies. Each round therefore takes leases
// (store.ClaimLeases) before it works, held by this process's random holder id for leaseTTL (three
// scheduler intervals, at least a second) and renewed every round:
//
//	member/<holder>      this process is alive; the number of live members sets each one's fair share
//	                     of the wake-up shards
//	job/purge            purge of expired updates and the recovery of requests left "queuing"
//	job/campaigns        campaign retries, late joiners and gates
//	job/webhooks         webhook deliveries (the dispatcher of StartWebhooks)
//	job/blobs            blob collection, with the db blob store (the replicas share its chunks)
//	job/resends          resends of chunks whose ack is overdue (StartResends, resend.go)
//	wakeup/<nn>          the wake-ups of the vehicles whose VIN hashes to shard nn (WakeupShards of them)
//	queue/<requestID>    a request being queued by this process (renewed every quarter of
//	                     Options.QueueLeaseTTL while it writes; queue.go)
//
// A replica takes at most its fair share of the wake-up shards (ceil(shards / live members)) and
// releases what it holds beyond it, so that the replicas split the fleet; the shards of a replica
// that died are taken over by the others once its leases expire. Blob collection is leased only with
// the db blob store: with --blob-store local every replica has its own files to collect.
//
// A lease is exclusive only while it has not expired (a replica that stalled longer than the time to
// live may still be working on a shard another one took), so what must not happen twice is also
// decided in the store's transactions: a wake-up is sent only after a transaction recorded it in the
// vehicle's last-wake record (core/wake/<vin>) and found no wake-up within the reconnect interval
// there.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"slices"
	"time"
)

// WakeupShards is the number of shards the wake-ups are split into by VIN hash, each a lease.
const WakeupShards = 16

// DefaultQueueLeaseTTL is Options.QueueLeaseTTL when none is given: how long a request stays
// "queuing" after its queuing process stopped renewing its lease before another process aborts it.
const DefaultQueueLeaseTTL = 10 * time.Second

const (
	leaseMember    = "member/"
	leasePurge     = "job/purge"
	leaseCampaigns = "job/campaigns"
	leaseWebhooks  = "job/webhooks"
	leaseBlobs     = "job/blobs"
	leaseWakeup    = "wakeup/"
	leaseQueue     = "queue/"
)

func newHolder() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Holder is this service's lease holder id (random, one per Service).
func (s *Service) Holder() string { return s.holder }

// leaseTTL is the time to live of the scheduler's leases for a round every interval.
func leaseTTL(interval time.Duration) time.Duration { return max(3*interval, time.Second) }

// wakeupShard is the shard of vin's wake-ups.
func wakeupShard(vin string) int {
	h := fnv.New32a()
	h.Write([]byte(vin))
	return int(h.Sum32() % WakeupShards)
}

func shardLease(i int) string { return fmt.Sprintf("%s%02d", leaseWakeup, i) }

var allShardLeases = func() []string {
	out := make([]string, WakeupShards)
	for i := range out {
		out[i] = shardLease(i)
	}
	return out
}()

// lease takes or renews one of the scheduler's leases; an error counts as not held.
func (s *Service) lease(ctx context.Context, name string, ttl time.Duration) bool {
	ok, err := s.db.TryLease(ctx, name, s.holder, ttl)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("scheduler: lease", "lease", name, "err", err)
		}
		return false
	}
	return ok
}

// claimShards renews this process's membership and takes its fair share of the wake-up shards,
// releasing those held beyond it; it returns the shards held (nil on an error: no wake-ups this
// round).
func (s *Service) claimShards(ctx context.Context, ttl time.Duration, before []int) ([]int, error) {
	if _, err := s.db.TryLease(ctx, leaseMember+s.holder, s.holder, ttl); err != nil {
		return nil, err
	}
	members, err := s.db.Leases(ctx, leaseMember)
	if err != nil {
		return nil, err
	}
	share := (WakeupShards + max(len(members), 1) - 1) / max(len(members), 1)
	got, err := s.db.ClaimLeases(ctx, s.holder, allShardLeases, share, ttl)
	if err != nil {
		return nil, err
	}
	var held []int
	for _, n := range got {
		var i int
		if _, err := fmt.Sscanf(n[len(leaseWakeup):], "%d", &i); err == nil {
			held = append(held, i)
		}
	}
	var extra []string
	for _, i := range before {
		if !slices.Contains(held, i) {
			extra = append(extra, shardLease(i))
		}
	}
	if len(extra) > 0 { // held last round beyond the share: free them for the others at once
		if err := s.db.ReleaseLeases(ctx, s.holder, extra...); err != nil {
			return held, err
		}
	}
	return held, nil
}

// releaseAll gives up every lease of the scheduler (a stopping process hands its work over at once).
func (s *Service) releaseAll(ctx context.Context) error {
	names := append([]string{leaseMember + s.holder, leasePurge, leaseCampaigns, leaseBlobs}, allShardLeases...)
	return s.db.ReleaseLeases(ctx, s.holder, names...)
}
