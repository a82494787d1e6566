package resolver

import (
	"sort"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
)

// The fleet state the filter language's seen_within and update_status read, kept in the index as
// bitmaps so that the plan answers them like every other leaf:
//
//   - last seen: per vehicle the second of its last contact, 4 bytes a vehicle in id order, scanned
//     into a bitmap;
//   - update status: per package version (lower-cased name, version) the vehicles by the status of
//     their most recent update of it, and per vehicle those statuses.
//
// The engine owns both (its contact and update records): it feeds them with SetContacts and
// SetUpdateStatuses as they change (after the change has committed) and once at start; the resolver
// stores none of it.

// UpdateChange is the status of a vehicle's most recent update of one package version.
type UpdateChange struct {
	VIN     string
	Package PackageID
	Status  string // pending, inFlight, finished, failed or canceled
}

type fleetState struct {
	clock func() time.Time
	seen  []uint32   // by id: Unix seconds of the last contact; 0 never (ids past the end: never)
	upd   [][]updRef // by id: its most recent update per package version
	pvs   map[pvKey]*pvState
}

type pvKey struct{ name, version string } // name lower-cased

type pvState struct {
	name, version string // as first fed
	byStatus      map[string]*roaring.Bitmap
}

type updRef struct {
	pv     *pvState
	status string
}

func (f *fleetState) now() time.Time {
	if f.clock == nil {
		return time.Now()
	}
	return f.clock()
}

// SetClock sets the clock seen_within is evaluated against (the engine's, so that tests can move it).
func (x *FleetIndex) SetClock(now func() time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.state.clock = now
}

// setSeen records the contact of id at Unix second sec (0: never), under the write lock.
func (x *FleetIndex) setSeen(id uint32, sec uint32) {
	f := &x.state
	if int(id) >= len(f.seen) {
		if sec == 0 {
			return
		}
		f.seen = grow(f.seen, int(id)+1)
	}
	f.seen[id] = sec
}

func unixSeconds(t time.Time) uint32 {
	if t.IsZero() || t.Unix() <= 0 {
		return 0
	}
	return uint32(min(t.Unix(), 1<<32-1))
}

// SetSeen records a vehicle's last contact in the index.
func (x *FleetIndex) SetSeen(vin string, at time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if id, ok := x.byVIN[vin]; ok {
		x.setSeen(id, unixSeconds(at))
	}
}

// SetUpdateStatuses records the statuses of vehicles' most recent updates, in order (a later change
// of the same vehicle and package version wins). Vehicles the index does not have are skipped.
func (x *FleetIndex) SetUpdateStatuses(changes []UpdateChange) {
	x.mu.Lock()
	defer x.mu.Unlock()
	f := &x.state
	for _, c := range changes {
		id, ok := x.byVIN[c.VIN]
		if !ok {
			continue
		}
		key := pvKey{strings.ToLower(c.Package.Name), c.Package.Version}
		pv := f.pvs[key]
		if pv == nil {
			if f.pvs == nil {
				f.pvs = map[pvKey]*pvState{}
			}
			pv = &pvState{name: c.Package.Name, version: c.Package.Version, byStatus: map[string]*roaring.Bitmap{}}
			f.pvs[key] = pv
		}
		if int(id) >= len(f.upd) {
			f.upd = grow(f.upd, int(id)+1)
		}
		refs := f.upd[id]
		i := 0
		for i < len(refs) && refs[i].pv != pv {
			i++
		}
		if i == len(refs) {
			f.upd[id] = append(refs, updRef{pv: pv, status: c.Status})
		} else {
			if refs[i].status == c.Status {
				continue
			}
			pv.remove(refs[i].status, id)
			refs[i].status = c.Status
		}
		bm := pv.byStatus[c.Status]
		if bm == nil {
			bm = roaring.New()
			pv.byStatus[c.Status] = bm
		}
		bm.Add(id)
	}
}

// grow returns s extended with zero values to length n (n > len(s)).
func grow[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s[:n]
	}
	g := make([]T, n, max(n, 2*cap(s), 1024))
	copy(g, s)
	return g
}

func (pv *pvState) remove(status string, id uint32) {
	if bm := pv.byStatus[status]; bm != nil {
		bm.Remove(id)
		if bm.IsEmpty() {
			delete(pv.byStatus, status)
		}
	}
}

// clearState forgets the fleet state of a deleted vehicle's id, under the write lock.
func (x *FleetIndex) clearState(id uint32) {
	f := &x.state
	x.setSeen(id, 0)
	if int(id) < len(f.upd) {
		for _, r := range f.upd[id] {
			r.pv.remove(r.status, id)
			if len(r.pv.byStatus) == 0 {
				delete(f.pvs, pvKey{strings.ToLower(r.pv.name), r.pv.version})
			}
		}
		f.upd[id] = nil
	}
}

// fillState adds the fleet state of id to a vehicle built for filters, under the read lock.
func (x *FleetIndex) fillState(id uint32, v *dsl.Vehicle) {
	f := &x.state
	if int(id) < len(f.seen) && f.seen[id] != 0 {
		v.LastSeen = time.Unix(int64(f.seen[id]), 0).UTC()
	}
	if int(id) < len(f.upd) && len(f.upd[id]) > 0 {
		v.Updates = make([]dsl.UpdateState, len(f.upd[id]))
		for i, r := range f.upd[id] {
			v.Updates[i] = dsl.UpdateState{Name: r.pv.name, Version: r.pv.version, Status: r.status}
		}
	}
}

// Now implements dsl.FleetStateIndex: the index's clock.
func (w view) Now() time.Time { return w.x.state.now() }

// SeenSince implements dsl.FleetStateIndex: the vehicles whose last contact is at or after t. It
// scans the per-id seconds (4 bytes a vehicle, in id order) into a dense bitset and hands that to
// roaring whole: about a millisecond for a million vehicles, whatever t. (Buckets of vehicles by the
// hour of their contact, unioned, cost 25-45 ms at a million vehicles contacting over 60 days.)
func (w view) SeenSince(t time.Time) *roaring.Bitmap {
	seen := w.x.state.seen
	sec := unixSeconds(t)
	if sec == 0 {
		sec = 1 // since the epoch: every vehicle ever seen
	}
	words := make([]uint64, (len(seen)+63)/64)
	var any uint64
	limit := int64(sec) - 1
	for w := range words {
		chunk := seen[w*64 : min(w*64+64, len(seen))]
		var acc uint64
		for j, s := range chunk { // branch-free: the sign of limit-s is the bit
			acc |= uint64(limit-int64(s)) >> 63 << j
		}
		words[w] = acc
		any |= acc
	}
	if any == 0 {
		return roaring.New()
	}
	return roaring.FromDense(words, false)
}

// UpdateStatus implements dsl.FleetStateIndex.
func (w view) UpdateStatus(name, version, status string) *roaring.Bitmap {
	if pv := w.x.state.pvs[pvKey{strings.ToLower(name), version}]; pv != nil {
		if bm := pv.byStatus[status]; bm != nil {
			return bm
		}
	}
	return roaring.New()
}

// Now is the index's clock.
func (x *FleetIndex) Now() time.Time {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.Now()
}

// SeenSince is the vehicles last seen at or after t (a copy).
func (x *FleetIndex) SeenSince(t time.Time) *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.SeenSince(t)
}

// UpdateStatus is the vehicles whose most recent update of the package version has status (a copy).
func (x *FleetIndex) UpdateStatus(name, version, status string) *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.UpdateStatus(name, version, status).Clone()
}

// stateTerms are the package names with updates that no vehicle has installed (have).
func (x *FleetIndex) stateTerms(kind dsl.TermKind, have []term) []term {
	if kind != dsl.TermPackage || len(x.state.pvs) == 0 {
		return nil
	}
	known := make(map[string]bool, len(have))
	for _, t := range have {
		known[strings.ToLower(t.s)] = true
	}
	// One spelling per name, the same on every call: of the spellings fed for a name's versions, the
	// first in byte order (map iteration order would pick one at random).
	spelling := map[string]string{}
	for k, pv := range x.state.pvs {
		if known[k.name] {
			continue
		}
		if cur, ok := spelling[k.name]; !ok || pv.name < cur {
			spelling[k.name] = pv.name
		}
	}
	out := make([]term, 0, len(spelling))
	for _, name := range spelling {
		out = append(out, term{name, 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].s < out[j].s })
	return out
}

// Contact is a vehicle's last contact with the server.
type Contact struct {
	VIN string
	At  time.Time
}

// SetContacts records vehicles' last contacts in the index, in order (the engine's feed, after its
// changes commit, and once at start). Vehicles the index does not have are skipped.
func (s *Service) SetContacts(cs []Contact) { s.index.SetContacts(cs) }

// SetContacts records vehicles' last contacts, in order; vehicles the index does not have are skipped.
func (x *FleetIndex) SetContacts(cs []Contact) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range cs {
		if id, ok := x.byVIN[c.VIN]; ok {
			x.setSeen(id, unixSeconds(c.At))
		}
	}
}

// SetUpdateStatuses records update statuses in the index (the engine's feed, after its changes
// commit).
func (s *Service) SetUpdateStatuses(changes []UpdateChange) { s.index.SetUpdateStatuses(changes) }

// SetClock sets the clock fleet-state predicates are evaluated against.
func (s *Service) SetClock(now func() time.Time) { s.index.SetClock(now) }
