package engine

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
)

// Options configure a Service. Zero values take the defaults given per field.
type Options struct {
	// Blobs keeps the package binaries. Default: store.LocalBlobs in DataDir/blobs.
	Blobs store.BlobStore
	// DataDir is the store's --data directory, where the default Blobs keep the package binaries
	// (blobs/); required without Blobs.
	DataDir string
	// Now is the clock; tests inject their own. Default time.Now.
	Now func() time.Time
	// WakeupURL receives signed wake-ups as JSON POSTs; empty: wake-ups are only logged.
	WakeupURL string
	// HTTPClient posts wake-ups. Default: a client with a 5 s timeout.
	HTTPClient *http.Client
	// ReconnectInterval: a vehicle woken within it is not woken again. Default 5 minutes.
	ReconnectInterval time.Duration
	// ConnectedWindow: a vehicle that contacted the server within it counts as connected. Default 1 minute.
	ConnectedWindow time.Duration
	// BatchSize is the number of vehicles written per transaction when queuing, canceling or purging.
	// Default DefaultBatchSize.
	BatchSize int
	// QueueLeaseTTL: a request found "queuing" whose queuing process has not renewed its lease for
	// this long is aborted (that process stopped; leases.go). The queuing process renews it every
	// quarter of it. Default DefaultQueueLeaseTTL.
	QueueLeaseTTL time.Duration
	// WebhookTimeout is how long a webhook receiver may take to answer a delivery; an attempt is
	// claimed in the store for about twice as long (webhooks.go). Default DefaultWebhookTimeout.
	WebhookTimeout time.Duration
	// MaxWakeups caps the wake-ups sent per run. Default 10000.
	MaxWakeups int
	// MaxUpload caps a package binary's size in bytes. Default 4 GiB.
	MaxUpload int64
	// DryRunProblemVehicles bounds the matched vehicles of a dry run whose problems are looked at
	// vehicle by vehicle (missing binaries, data plans, dormant vehicles), which costs a solve per
	// vehicle that a dry run otherwise avoids. Above it a dry run reports its unresolved dependencies
	// and a not_checked entry; a campaign preview and the queue always check. Default
	// DefaultDryRunProblemVehicles.
	DryRunProblemVehicles int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if o.ReconnectInterval == 0 {
		o.ReconnectInterval = 5 * time.Minute
	}
	if o.ConnectedWindow == 0 {
		o.ConnectedWindow = time.Minute
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.QueueLeaseTTL <= 0 {
		o.QueueLeaseTTL = DefaultQueueLeaseTTL
	}
	if o.MaxWakeups <= 0 {
		o.MaxWakeups = 10000
	}
	if o.WebhookTimeout <= 0 {
		o.WebhookTimeout = DefaultWebhookTimeout
	}
	if o.MaxUpload <= 0 {
		o.MaxUpload = 4 << 30
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DryRunProblemVehicles <= 0 {
		o.DryRunProblemVehicles = DefaultDryRunProblemVehicles
	}
}

// DefaultBatchSize is Options.BatchSize when none is given.
const DefaultBatchSize = 4000

// Service is the SOTA Core domain over the store. It is safe for concurrent use.
type Service struct {
	*service
	db  *store.DB         // a handle from With writes through store.DB.With
	res *resolver.Service // likewise
}

// With returns a handle on the same service whose first committing write (its own or the resolver's)
// also runs h in its transaction (the audit-log entry of the API call that makes the change); nil h
// returns s.
func (s *Service) With(h *store.Hook) *Service {
	if h == nil {
		return s
	}
	return &Service{service: s.service, db: s.db.With(h), res: s.res.With(h)}
}

// service is the state every handle of one Service shares.
type service struct {
	opt  Options
	log  *slog.Logger
	key  ed25519.PrivateKey
	blob store.BlobStore

	mu      sync.RWMutex
	reqs    map[string]*UpdateRequest // every request, by id (requests are few; updates are many)
	signing Signing                   // signed-metadata checks (SetSigning); nil with signing off
	counts  requestCounts             // per-request counts by status (counts.go)
	camps   campaignState             // campaigns by id, under mu (campaigns.go)
	base    *Service                  // the handle without a hook, for work in the background (campaign gates)

	// holder is this service's lease holder id (leases.go): the scheduler's jobs, its wake-up shards
	// and the requests it is queuing
	holder    string
	xmitMu    sync.Mutex
	contactMu sync.Mutex
	lastSeen  map[string]time.Time // device contacts with this process (Connected also reads storedSeen)
	lastWake  map[string]time.Time // wake-ups this process sent (a hint; core/wake/<vin> decides)

	// storedSeen remembers per vehicle the lastSeen this process knows to be stored (its own writes,
	// other replicas' through the change feed, the recent ones at start), so that a poll within the
	// resolution of it reads nothing to decide that no write is due (Seen), and a vehicle polling
	// another replica counts as connected here (Connected).
	storedSeen sync.Map // vin -> time.Time
	// acts leases action ids (actions.go).
	acts actionSeq
	// reported caches per vehicle whether it reported its configuration (ConfigReported, asked on
	// every DDI poll); a report or a deletion bumps reportedGen, and a lookup caches what it read only
	// when neither happened since it began.
	reported    sync.Map // vin -> bool
	reportedMu  sync.Mutex
	reportedGen uint64

	wh webhooks // subscriptions, and the dispatcher's nudge (webhooks.go)

	polls pollCache // what polls read of each vehicle (pollcache.go)

	feed *store.Following // what other processes changed, contacts included (feed.go)
}

// New opens the engine over db next to the resolver res: loads or creates the wake-up key, loads the
// update requests, finishes what a stopped process left half done, and installs its hooks in res.
func New(db *store.DB, res *resolver.Service, o Options) (*Service, error) {
	o.defaults()
	if res == nil {
		return nil, errors.New("engine: a resolver is required")
	}
	s := &Service{db: db, res: res, service: &service{
		opt:      o,
		log:      o.Logger,
		holder:   newHolder(),
		blob:     o.Blobs,
		reqs:     map[string]*UpdateRequest{},
		lastSeen: map[string]time.Time{},
		lastWake: map[string]time.Time{},
		counts:   requestCounts{by: map[string]*Counts{}, dirty: map[string]bool{}},
	}}
	s.polls.seed = maphash.MakeSeed()
	s.base = s
	s.wh.nudge = make(chan struct{}, 1)
	whc := *o.HTTPClient
	whc.Timeout = 0 // each delivery has Options.WebhookTimeout
	s.wh.client = &whc
	s.follow()
	if s.blob == nil {
		if o.DataDir == "" {
			return nil, errors.New("engine: Options.DataDir or Options.Blobs is required")
		}
		var err error
		if s.blob, err = store.NewLocalBlobs(filepath.Join(o.DataDir, "blobs")); err != nil {
			return nil, err
		}
	}
	// what uploads cut short by a killed server left (the next collection also removes it)
	if _, err := s.blob.Clean(); err != nil {
		return nil, fmt.Errorf("engine: clean interrupted uploads: %w", err)
	}
	if err := s.loadKey(); err != nil {
		return nil, err
	}
	if err := s.loadWebhooks(); err != nil {
		return nil, err
	}
	if err := s.loadRequests(); err != nil {
		return nil, err
	}
	res.SetClock(s.now)
	if err := s.migrateVehicles(); err != nil {
		return nil, fmt.Errorf("engine: move the vehicles' contacts and data plans out of the resolver's records: %w", err)
	}
	if err := s.loadFleetState(); err != nil {
		return nil, err
	}
	if err := s.loadContacts(); err != nil {
		return nil, err
	}
	if err := s.loadCounts(); err != nil {
		return nil, err
	}
	if err := s.loadCampaigns(); err != nil {
		return nil, err
	}
	if err := s.feed.Ready(); err != nil {
		return nil, err
	}
	res.AddHooks(s.hooks())
	return s, nil
}

func (s *Service) now() time.Time { return s.opt.Now().UTC() }

// update runs fn in a read-write transaction, running it again when a concurrent transaction
// conflicted with it. fn must not have effects outside the transaction.
func (s *Service) update(fn func(store.Txn) error) error {
	var err error
	for i := 0; i < 20; i++ {
		var x *engineTx
		err = s.db.Update(func(t store.Txn) error {
			x = &engineTx{Txn: t, polls: &s.polls}
			return fn(x)
		})
		if err == nil {
			for _, f := range x.after {
				f()
			}
		}
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	return fmt.Errorf("engine: giving up after repeated conflicts: %w", err)
}

func (s *Service) loadKey() error {
	return s.update(func(t store.Txn) error {
		seed, err := t.Get([]byte(kWakeup))
		if errors.Is(err, store.ErrNotFound) {
			seed = make([]byte, ed25519.SeedSize)
			if _, err := rand.Read(seed); err != nil {
				return err
			}
			if err := t.Set([]byte(kWakeup), seed); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if len(seed) != ed25519.SeedSize {
			return fmt.Errorf("engine: wake-up key has %d bytes", len(seed))
		}
		s.key = ed25519.NewKeyFromSeed(seed)
		return nil
	})
}

// Page is a window of a sorted list: Limit (default 1000, at most 10000) items from Offset.
type Page struct{ Limit, Offset int }

// Check validates the page bounds and applies the default.
func (p *Page) Check() error {
	if p.Limit == 0 {
		p.Limit = 1000
	}
	if p.Limit < 0 || p.Limit > 10000 || p.Offset < 0 {
		return errs.InvalidEntity("limit must be 1-10000 and offset at least 0")
	}
	return nil
}

func window[T any](xs []T, p Page) []T {
	if p.Offset >= len(xs) {
		return []T{}
	}
	xs = xs[p.Offset:]
	if p.Limit > 0 && len(xs) > p.Limit {
		xs = xs[:p.Limit]
	}
	return xs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
