package resolver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"sota/dsl"
	"sota/errs"
	"sota/store"
)

// Service is the External Resolver: vehicles, components, packages, installed sets, filters and their
// associations, dependencies, resolution and bulk import, over the store.
//
// Every write is one store transaction. Writes are serialized by one mutex, so that the in-memory
// index changes (applied after each commit) happen in commit order and checks made against the index
// inside a write see every earlier commit. Another domain that must change resolver records in one
// transaction with its own (the engine's install reports, uploads and configuration reports) runs its
// operation through Service.Update, which gives it a Tx: the resolver's typed operations, never the
// store transaction.
type Service struct {
	*service
	db *store.DB // the store; a handle from With writes through store.DB.With
}

// With returns a handle on the same service whose first committing write also runs h in its
// transaction (the audit-log entry of the API call that makes the change); nil h returns s.
func (s *Service) With(h *store.Hook) *Service {
	if h == nil {
		return s
	}
	return &Service{service: s.service, db: s.db.With(h)}
}

// service is the state every handle of one Service shares.
type service struct {
	index *FleetIndex
	wmu   sync.Mutex // serializes writes
	hmu   sync.RWMutex
	hooks []Hooks

	programs programCache     // compiled filters by source text
	feed     *store.Following // what other processes changed (feed.go)
	legacy   int              // vehicle records of layout 1 found at start (MigrateVehicles)
}

// New opens the resolver over db.
func New(db *store.DB) (*Service, error) {
	if db == nil {
		return nil, errors.New("resolver: nil store")
	}
	s := &Service{service: &service{index: NewFleetIndex()}, db: db}
	s.follow()
	if err := s.loadIndex(); err != nil {
		return nil, fmt.Errorf("resolver: load the fleet index: %w", err)
	}
	if err := s.feed.Ready(); err != nil {
		return nil, fmt.Errorf("resolver: load the fleet index: %w", err)
	}
	return s, nil
}

// AddHooks adds a party to the cascades (vehicle and package deletion): the engine's updates and
// data plans, the API's device tokens. Hooks run in the order they were added.
func (s *Service) AddHooks(h Hooks) {
	s.hmu.Lock()
	s.hooks = append(s.hooks, h)
	s.hmu.Unlock()
}

// vehicleCreated runs every VehicleCreated hook in the creating transaction.
func (s *Service) vehicleCreated(t store.Txn, vin string) error {
	for _, h := range s.getHooks() {
		if h.VehicleCreated != nil {
			if err := h.VehicleCreated.In(rawTxn(t))(s.txOf(t), vin); err != nil {
				return err
			}
		}
	}
	return nil
}

// vehicleDeleted runs every VehicleDeleted hook in the deleting transaction.
func (s *Service) vehicleDeleted(t store.Txn, vin string) error {
	for _, h := range s.getHooks() {
		if h.VehicleDeleted != nil {
			if err := h.VehicleDeleted.In(rawTxn(t))(s.txOf(t), vin); err != nil {
				return err
			}
		}
	}
	return nil
}

// packageDeleting runs every PackageDeleting hook in the deleting transaction; an error refuses it.
func (s *Service) packageDeleting(t store.Txn, id PackageID) error {
	for _, h := range s.getHooks() {
		if h.PackageDeleting != nil {
			if err := h.PackageDeleting.In(rawTxn(t))(s.txOf(t), id); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) getHooks() []Hooks {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	return s.hooks
}

// tx is a store transaction run by Service.update: it collects the index changes to apply once the
// transaction has committed.
type tx struct {
	store.Txn
	after []func()
}

// Tx is a resolver transaction as another domain sees it: the resolver's typed operations that may
// run in one transaction with that domain's own changes (Service.Update, Hooks). It holds no store
// transaction another domain can reach.
type Tx struct {
	s *Service
	x *tx
}

// txOf is the Tx over t, a transaction of update.
func (s *Service) txOf(t store.Txn) *Tx { return &Tx{s: s, x: t.(*tx)} }

// rawTxn is the store transaction under t, for the part of another domain (which must not get the
// resolver's bookkeeping).
func rawTxn(t store.Txn) store.Txn { return t.(*tx).Txn }

// AfterCommit runs f once the transaction has committed, in commit order with the resolver's own
// index changes; a taking-part domain changes its in-memory state there, when its change is durable.
func (x *Tx) AfterCommit(f func()) { x.x.after = append(x.x.after, f) }

// Update runs op, another domain's operation, in one resolver transaction (serialized with the
// resolver's other writes): op is built by that domain over the store transaction for its own records
// and gets the Tx for the resolver's. The index changes apply, and the functions given to
// Tx.AfterCommit run, once it has committed.
func (s *Service) Update(op *store.Part[func(x *Tx) error]) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.update(func(t store.Txn) error { return op.In(rawTxn(t))(s.txOf(t)) })
}

// update runs fn in one read-write store transaction with the write lock held, and applies the
// in-memory index changes that resolver methods made in it after it commits.
func (s *Service) update(fn func(t store.Txn) error) error {
	var x *tx
	err := s.db.Update(func(t store.Txn) error {
		x = &tx{Txn: t}
		return fn(x)
	})
	if err != nil {
		return err
	}
	for _, f := range x.after {
		f()
	}
	return nil
}

// write is update with the write lock taken.
func (s *Service) write(fn func(t store.Txn) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.update(fn)
}

// afterCommit queues f to run after t, a transaction of update, commits.
func afterCommit(t store.Txn, f func()) error {
	x, ok := t.(*tx)
	if !ok {
		return errors.New("resolver: this method needs a transaction from Service.update")
	}
	x.after = append(x.after, f)
	return nil
}

// Package is a software package version as the resolver knows it; its binary is the engine's record.
// (Records written before December 2026 also hold the binary's size, sha256, URI and file name, which
// decoding ignores.)
type Package struct {
	ID          PackageID `json:"id"`
	Description string    `json:"description"`
	Vendor      string    `json:"vendor"`
}

// Component is a part number that vehicles can have installed.
type Component struct {
	PartNumber  string `json:"partNumber"`
	Description string `json:"description"`
}

// Attributes are a vehicle's attributes: string or number values by key.
type Attributes map[string]dsl.Value

// MarshalJSON encodes numbers as JSON numbers and strings as strings.
func (a Attributes) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range sortedKeys(a) {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		v := a[k]
		var vb []byte
		if v.IsNum {
			vb, _ = json.Marshal(v.Num)
		} else {
			vb, _ = json.Marshal(v.Str)
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Attribute limits.
const (
	maxAttrs      = 100
	maxAttrKey    = 100
	maxAttrString = 1000
)

// UnmarshalJSON accepts an object whose values are strings or numbers.
func (a *Attributes) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return errs.InvalidEntity("Attributes must be a JSON object of strings and numbers")
	}
	if raw == nil {
		return errs.InvalidEntity("Attributes must be a JSON object of strings and numbers")
	}
	if len(raw) > maxAttrs {
		return errs.InvalidEntity("At most %d attributes", maxAttrs)
	}
	out := make(Attributes, len(raw))
	for k, r := range raw {
		if err := validAttrKey(k); err != nil {
			return err
		}
		r = bytes.TrimSpace(r)
		switch {
		case len(r) > 0 && r[0] == '"':
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return errs.InvalidEntity("Attribute %q: %v", k, err)
			}
			if len(s) > maxAttrString {
				return errs.InvalidEntity("Attribute %q: a string value is at most %d bytes", k, maxAttrString)
			}
			out[k] = dsl.Value{Str: s}
		case len(r) > 0 && (r[0] == '-' || r[0] >= '0' && r[0] <= '9'):
			var f float64
			if err := json.Unmarshal(r, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return errs.InvalidEntity("Attribute %q: invalid number %s", k, r)
			}
			out[k] = dsl.Value{Num: f, IsNum: true}
		default:
			return errs.InvalidEntity("Attribute %q: the value must be a string or a number, not %s", k, r)
		}
	}
	*a = out
	return nil
}

// checkAttributes applies the limits UnmarshalJSON applies to a set built in code.
func checkAttributes(a Attributes) error {
	if len(a) > maxAttrs {
		return errs.InvalidEntity("At most %d attributes", maxAttrs)
	}
	for k, v := range a {
		if err := validAttrKey(k); err != nil {
			return err
		}
		if !v.IsNum && len(v.Str) > maxAttrString {
			return errs.InvalidEntity("Attribute %q: a string value is at most %d bytes", k, maxAttrString)
		}
	}
	return nil
}

func validAttrKey(k string) error {
	ok := len(k) >= 1 && len(k) <= maxAttrKey
	for i := 0; ok && i < len(k); i++ {
		c := k[i]
		ok = isLetterOrDigit(c) || c == '_' || c == '-' || c == '.'
	}
	if !ok {
		return errs.InvalidEntity("Invalid attribute name %q: 1 to %d of letters, digits, '_', '-', '.'", k, maxAttrKey)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Vehicle is a vehicle as the resolver knows it. Packages and Components are filled too; the API
// shows them on request (expand), and adds the engine's state of the vehicle (last contact, data plan).
type Vehicle struct {
	VIN        string      `json:"vin"`
	Attributes Attributes  `json:"attributes"`
	Packages   []PackageID `json:"-"`
	Components []string    `json:"-"`
}

func (v *vehicleRec) view() Vehicle {
	out := Vehicle{VIN: v.VIN, Attributes: Attributes(v.Attrs), Packages: v.Packages, Components: v.Components}
	if out.Attributes == nil {
		out.Attributes = Attributes{}
	}
	if out.Packages == nil {
		out.Packages = []PackageID{}
	}
	if out.Components == nil {
		out.Components = []string{}
	}
	return out
}

// comparePackageIDs orders by lower-cased name, then version precedence.
func comparePackageIDs(a, b PackageID) int {
	if c := strings.Compare(lower(a.Name), lower(b.Name)); c != 0 {
		return c
	}
	return compareVersions(a.Version, b.Version)
}

// samePackage reports whether a and b name the same package version.
func samePackage(a, b PackageID) bool {
	return a.Version == b.Version && strings.EqualFold(a.Name, b.Name)
}

func internal(format string, args ...any) error {
	return fmt.Errorf("resolver: "+format, args...)
}
