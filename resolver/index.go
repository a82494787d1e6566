package resolver

import (
	"encoding/binary"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
)

// FleetIndex is the in-memory fleet index: every vehicle under a uint32 id, with inverted indexes
// (roaring bitmaps) from part numbers, installed package versions and attribute values to the ids
// that have them, and the VINs in sorted order for prefix lookups. It implements dsl.Index and is
// safe for concurrent use: writers take the write lock, Read runs a query under the read lock.
//
// Ids are assigned when a VIN is first inserted and freed when it is deleted. PutMany assigns new
// ids in VIN order, so after a bulk load a VIN prefix is one id range; later inserts keep prefix
// lookups correct but make them a little slower.
//
// Per vehicle the index keeps its VIN (packed in a shared arena), the interned ids of its package
// versions and part numbers, and a pointer to an interned, immutable attribute set; Vehicle and
// Get build a dsl.Vehicle from those on demand. Duplicate packages or parts of one vehicle are
// kept once.
type FleetIndex struct {
	mu sync.RWMutex

	recs     []vrec            // by id; vin == "" for a free id
	byVIN    map[string]uint32 // live VINs
	freeIDs  []uint32
	universe *roaring.Bitmap

	// VIN order: sorted by VIN, then the entries inserted since the last merge. Entries whose id no
	// longer carries that VIN are stale and skipped; merge drops them.
	sorted  []vinRef
	pending []vinRef
	stale   int
	// sortedGen counts the merges; the block bitmaps of the VIN order (dryrun.go) are those of
	// merge blocksGen, built on first use.
	sortedGen uint64
	blockMu   sync.Mutex
	blocks    []*roaring.Bitmap
	blocksGen uint64
	outcomes  outcomeCache // of dry runs (dryrun.go)
	// byWMI holds the ids by the first three characters of the VIN (the world manufacturer
	// identifier), so that prefixes of up to three characters are bitmaps whatever the id order.
	byWMI map[string]*roaring.Bitmap
	// vinGrams holds the ids by each gram of their VIN (ngram.go).
	vinGrams  map[dsl.Gram]*roaring.Bitmap
	gramQueue gramQueue
	// vinAt holds the ids by each position and byte of their VIN, then by VIN length (vinpos.go).
	vinAt           []*roaring.Bitmap
	vinUnpositioned *roaring.Bitmap
	posQueue        [][]uint32 // by slot of vinAt: the ids to add
	posTouched      []int32    // the slots posQueue holds ids for

	parts    table[string]
	pvs      table[dsl.Package]
	byName   map[string][]uint32 // lower-cased package name -> package version ids
	attrs    map[string]map[attrKey]*attrEntry
	attrSets map[string]*attrSet

	state fleetState // last seen and update statuses (fleetstate.go)

	vinArena []byte // current chunk VINs are copied into
	keyBuf   []byte // scratch for attribute-set keys (write lock held)
}

// vrec is one vehicle: ids holds the package version ids, then the part ids.
type vrec struct {
	vin   string
	ids   []uint32
	npk   uint32
	attrs *attrSet
}

type vinRef struct {
	vin string
	id  uint32
}

// attrSet is an interned, never mutated attribute map shared by the vehicles that have it, with
// the inverted index entries of its values.
type attrSet struct {
	m       map[string]dsl.Value
	entries []*attrEntry
	key     string
	refs    int
}

type attrKey struct {
	s     string
	bits  uint64
	isNum bool
}

type attrEntry struct {
	key string
	ak  attrKey
	val dsl.Value
	bm  *roaring.Bitmap
}

func keyOf(v dsl.Value) attrKey {
	if v.IsNum {
		return attrKey{bits: math.Float64bits(v.Num), isNum: true}
	}
	return attrKey{s: v.Str}
}

// table interns values of K under dense uint32 ids, each with the bitmap of the vehicles that
// have it. A value whose bitmap becomes empty is dropped and its id reused.
type table[K comparable] struct {
	ids  map[K]uint32
	vals []K
	bms  []*roaring.Bitmap // nil for a free id
	free []uint32
}

func newTable[K comparable]() table[K] { return table[K]{ids: map[K]uint32{}} }

// intern returns the id of k; a new k is stored as clone(k), with an empty bitmap.
func (t *table[K]) intern(k K, clone func(K) K) (id uint32, created bool) {
	if id, ok := t.ids[k]; ok {
		return id, false
	}
	k = clone(k)
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
		t.vals[id], t.bms[id] = k, roaring.New()
	} else {
		id = uint32(len(t.vals))
		t.vals = append(t.vals, k)
		t.bms = append(t.bms, roaring.New())
	}
	t.ids[k] = id
	return id, true
}

// remove takes vehicle vid out of id's bitmap and reports whether id was dropped.
func (t *table[K]) remove(id, vid uint32) bool {
	bm := t.bms[id]
	bm.Remove(vid)
	if !bm.IsEmpty() {
		return false
	}
	delete(t.ids, t.vals[id])
	var zero K
	t.vals[id], t.bms[id] = zero, nil
	t.free = append(t.free, id)
	return true
}

// NewFleetIndex returns an empty index.
func NewFleetIndex() *FleetIndex {
	return &FleetIndex{
		byVIN:    map[string]uint32{},
		universe: roaring.New(),
		parts:    newTable[string](),
		pvs:      newTable[dsl.Package](),
		byName:   map[string][]uint32{},
		attrs:    map[string]map[attrKey]*attrEntry{},
		attrSets: map[string]*attrSet{},
		byWMI:    map[string]*roaring.Bitmap{},
		vinGrams: map[dsl.Gram]*roaring.Bitmap{},
	}
}

func wmi(vin string) string { return vin[:min(3, len(vin))] }

// Put inserts the vehicle or replaces the one with the same VIN. The index keeps its own copy. A
// vehicle without LastSeen keeps the last contact the index has for it (SetSeen; none when new).
func (x *FleetIndex) Put(v dsl.Vehicle) { x.PutMany([]dsl.Vehicle{v}) }

// PutMany inserts or replaces many vehicles at once (the last one wins for a repeated VIN). New
// VINs get ids in VIN order. This is the fast path for loading a fleet.
func (x *FleetIndex) PutMany(vs []dsl.Vehicle) {
	if len(vs) == 0 {
		return
	}
	order := make([]int32, len(vs))
	for i := range order {
		order[i] = int32(i)
	}
	if !slices.IsSortedFunc(vs, func(a, b dsl.Vehicle) int { return strings.Compare(a.VIN, b.VIN) }) {
		sort.SliceStable(order, func(i, j int) bool { return vs[order[i]].VIN < vs[order[j]].VIN })
	}
	total := 0
	for i := range vs {
		total += len(vs[i].Packages) + len(vs[i].Components)
	}

	x.mu.Lock()
	defer x.mu.Unlock()
	if need := len(x.recs) + len(vs) - len(x.freeIDs); need > cap(x.recs) {
		grown := make([]vrec, len(x.recs), max(need, 2*cap(x.recs)))
		copy(grown, x.recs)
		x.recs = grown
	}
	arena := make([]uint32, 0, total)
	for k, oi := range order {
		v := &vs[oi]
		if v.VIN == "" || (k+1 < len(order) && vs[order[k+1]].VIN == v.VIN) {
			continue // empty VINs are not indexed; a later duplicate replaces this one
		}
		id, ok := x.byVIN[v.VIN]
		if ok {
			x.unindex(id)
		} else {
			id = x.newID(v.VIN)
		}
		start := len(arena)
		arena = x.index(id, v, arena)
		r := &x.recs[id]
		r.ids = arena[start:len(arena):len(arena)]
	}
	x.flushVINGrams()
	x.flushVINPositions()
	x.maybeMerge()
}

// Optimize compresses the long runs of ids of the bitmaps, as a bulk load leaves them (ids in VIN
// order). Bulk loaders call it once at the end: a bitmap of runs makes every later insert into it
// slower, so PutMany does not compress as it goes.
func (x *FleetIndex) Optimize() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, bm := range x.pvs.bms {
		if bm != nil {
			bm.RunOptimize()
		}
	}
	for _, bm := range x.parts.bms {
		if bm != nil {
			bm.RunOptimize()
		}
	}
	for _, vals := range x.attrs {
		for _, e := range vals {
			e.bm.RunOptimize()
		}
	}
	for _, bm := range x.byWMI {
		bm.RunOptimize()
	}
	for _, bm := range x.vinGrams {
		bm.RunOptimize()
	}
	for _, bm := range x.vinAt {
		if bm != nil {
			bm.RunOptimize()
		}
	}
	x.universe.RunOptimize()
}

// newID allocates an id for a VIN not in the index.
func (x *FleetIndex) newID(vin string) uint32 {
	vin = x.internVIN(vin)
	var id uint32
	if n := len(x.freeIDs); n > 0 {
		id = x.freeIDs[n-1]
		x.freeIDs = x.freeIDs[:n-1]
	} else {
		id = uint32(len(x.recs))
		x.recs = append(x.recs, vrec{})
	}
	x.recs[id].vin = vin
	x.byVIN[vin] = id
	x.pending = append(x.pending, vinRef{vin: vin, id: id})
	x.universe.Add(id)
	bm := x.byWMI[wmi(vin)]
	if bm == nil {
		bm = roaring.New()
		x.byWMI[wmi(vin)] = bm
	}
	bm.Add(id)
	x.queueVINGrams(vin, id)
	x.queueVINPositions(vin, id)
	return id
}

// internVIN copies s into the VIN arena so the index holds no reference to the caller's memory
// and a million VINs are a few hundred allocations.
func (x *FleetIndex) internVIN(s string) string {
	if len(s) > 256 {
		return strings.Clone(s)
	}
	if cap(x.vinArena)-len(x.vinArena) < len(s) {
		x.vinArena = make([]byte, 0, 64<<10)
	}
	start := len(x.vinArena)
	x.vinArena = append(x.vinArena, s...)
	return unsafe.String(&x.vinArena[start], len(s))
}

// index adds vehicle v under id to the inverted indexes and sets its record (except ids, which
// it appends to arena and the caller slices out).
func (x *FleetIndex) index(id uint32, v *dsl.Vehicle, arena []uint32) []uint32 {
	start := len(arena)
	for _, p := range v.Packages {
		pid, created := x.pvs.intern(p, clonePackage)
		if created {
			ln := strings.ToLower(p.Name)
			x.byName[ln] = append(x.byName[ln], pid)
		}
		if slices.Contains(arena[start:], pid) {
			continue
		}
		x.pvs.bms[pid].Add(id)
		arena = append(arena, pid)
	}
	npk := len(arena) - start
	for _, c := range v.Components {
		cid, _ := x.parts.intern(c, strings.Clone)
		if slices.Contains(arena[start+npk:], cid) {
			continue
		}
		x.parts.bms[cid].Add(id)
		arena = append(arena, cid)
	}
	if !v.LastSeen.IsZero() { // otherwise the index keeps what SetSeen recorded
		x.setSeen(id, unixSeconds(v.LastSeen))
	}
	r := &x.recs[id]
	r.npk = uint32(npk)
	r.attrs = x.internAttrs(v.Attrs)
	if r.attrs != nil {
		for _, e := range r.attrs.entries {
			e.bm.Add(id)
		}
	}
	return arena
}

func clonePackage(p dsl.Package) dsl.Package {
	return dsl.Package{Name: strings.Clone(p.Name), Version: strings.Clone(p.Version)}
}

// internAttrs returns the shared attribute set equal to m (nil for an empty one).
func (x *FleetIndex) internAttrs(m map[string]dsl.Value) *attrSet {
	if len(m) == 0 {
		return nil
	}
	var kbuf [8]string
	keys := kbuf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b := x.keyBuf[:0]
	for _, k := range keys {
		v := m[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		if v.IsNum {
			b = append(b, 1)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Num))
		} else {
			b = append(b, 0)
			b = binary.AppendUvarint(b, uint64(len(v.Str)))
			b = append(b, v.Str...)
		}
	}
	x.keyBuf = b
	if s, ok := x.attrSets[string(b)]; ok {
		s.refs++
		return s
	}
	own := make(map[string]dsl.Value, len(m))
	for k, v := range m {
		if !v.IsNum {
			v.Str = strings.Clone(v.Str)
		} else {
			v.Str = ""
		}
		own[strings.Clone(k)] = v
	}
	s := &attrSet{m: own, key: string(b), refs: 1}
	for k, val := range own {
		vals := x.attrs[k]
		if vals == nil {
			vals = map[attrKey]*attrEntry{}
			x.attrs[k] = vals
		}
		ak := keyOf(val)
		e := vals[ak]
		if e == nil {
			e = &attrEntry{key: k, ak: ak, val: val, bm: roaring.New()}
			vals[ak] = e
		}
		s.entries = append(s.entries, e)
	}
	x.attrSets[s.key] = s
	return s
}

// unindex removes vehicle id from every inverted index (not from the universe or VIN order).
func (x *FleetIndex) unindex(id uint32) {
	r := &x.recs[id]
	for _, pid := range r.ids[:r.npk] {
		p := x.pvs.vals[pid]
		if x.pvs.remove(pid, id) {
			ln := strings.ToLower(p.Name)
			l := slices.DeleteFunc(x.byName[ln], func(e uint32) bool { return e == pid })
			if len(l) == 0 {
				delete(x.byName, ln)
			} else {
				x.byName[ln] = l
			}
		}
	}
	for _, cid := range r.ids[r.npk:] {
		x.parts.remove(cid, id)
	}
	if s := r.attrs; s != nil {
		for _, e := range s.entries {
			e.bm.Remove(id)
			if e.bm.IsEmpty() {
				vals := x.attrs[e.key]
				delete(vals, e.ak)
				if len(vals) == 0 {
					delete(x.attrs, e.key)
				}
			}
		}
		s.refs--
		if s.refs == 0 {
			delete(x.attrSets, s.key)
		}
	}
	r.ids, r.npk, r.attrs = nil, 0, nil
}

// Delete removes the vehicle with that VIN, if any.
func (x *FleetIndex) Delete(vin string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	id, ok := x.byVIN[vin]
	if !ok {
		return
	}
	x.unindex(id)
	x.clearState(id)
	delete(x.byVIN, vin)
	x.universe.Remove(id)
	if bm := x.byWMI[wmi(vin)]; bm != nil {
		bm.Remove(id)
		if bm.IsEmpty() {
			delete(x.byWMI, wmi(vin))
		}
	}
	x.removeVINGrams(vin, id)
	x.removeVINPositions(vin, id)
	x.recs[id] = vrec{}
	x.freeIDs = append(x.freeIDs, id)
	x.stale++
	x.maybeMerge()
}

// maybeMerge folds pending VINs into the sorted order and drops stale entries once there are
// enough of them that prefix lookups would slow down; the cost is amortised over the inserts.
func (x *FleetIndex) maybeMerge() {
	limit := 1024 + len(x.sorted)/32
	if len(x.pending) <= limit && x.stale <= limit {
		return
	}
	live := x.sorted[:0:0]
	if x.stale > 0 {
		live = make([]vinRef, 0, len(x.sorted)+len(x.pending))
		for _, e := range x.sorted {
			if x.valid(e) {
				live = append(live, e)
			}
		}
	} else {
		live = x.sorted
	}
	add := x.pending
	cmp := func(a, b vinRef) int { return strings.Compare(a.vin, b.vin) }
	if !slices.IsSortedFunc(add, cmp) {
		slices.SortFunc(add, cmp)
	}
	var merged []vinRef
	switch {
	case len(add) == 0:
		merged = live
	case len(live) == 0 || live[len(live)-1].vin < add[0].vin:
		merged = append(live[:len(live):len(live)], add...)
	default:
		merged = make([]vinRef, 0, len(live)+len(add))
		i, j := 0, 0
		for i < len(live) && j < len(add) {
			if live[i].vin <= add[j].vin {
				merged = append(merged, live[i])
				i++
			} else {
				merged = append(merged, add[j])
				j++
			}
		}
		merged = append(append(merged, live[i:]...), add[j:]...)
	}
	// A VIN deleted and inserted again may appear twice; keep valid entries once.
	out := merged[:0]
	for _, e := range merged {
		if !x.valid(e) || (len(out) > 0 && out[len(out)-1] == e) {
			continue
		}
		out = append(out, e)
	}
	x.sorted, x.pending, x.stale = out, nil, 0
	x.sortedGen++
}

func (x *FleetIndex) valid(e vinRef) bool {
	return int(e.id) < len(x.recs) && x.recs[e.id].vin == e.vin
}

// Get returns a copy of the vehicle with that VIN.
func (x *FleetIndex) Get(vin string) (dsl.Vehicle, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	id, ok := x.byVIN[vin]
	if !ok {
		return dsl.Vehicle{}, false
	}
	v := x.vehicle(id)
	if v.Attrs != nil {
		m := make(map[string]dsl.Value, len(v.Attrs))
		for k, a := range v.Attrs {
			m[k] = a
		}
		v.Attrs = m
	}
	return *v, true
}

// Len is the number of vehicles.
func (x *FleetIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byVIN)
}

// VIN returns the VIN of id ("" when no vehicle has that id).
func (x *FleetIndex) VIN(id uint32) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if int(id) >= len(x.recs) {
		return ""
	}
	return x.recs[id].vin
}

// ID returns the id of the vehicle with that VIN.
func (x *FleetIndex) ID(vin string) (uint32, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	id, ok := x.byVIN[vin]
	return id, ok
}

// Read runs fn with the index read-locked. The dsl.Index fn gets returns the index's own bitmaps
// (read-only, valid only inside fn) and is the one to pass to Program.Select and Program.Count;
// fn may call the VIN-returning methods of view, not those of x, which would lock again.
func (x *FleetIndex) Read(fn func(idx dsl.Index)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	fn(view{x})
}

// ReadView is Read with the concrete view, which also maps ids back to VINs without locking.
func (x *FleetIndex) ReadView(fn func(v View)) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	fn(view{x})
}

// View is the read-locked index given to ReadView's function.
type View interface {
	dsl.Index
	// VIN returns the VIN of id ("" when no vehicle has that id).
	VIN(id uint32) string
	// Len is the number of vehicles.
	Len() int
}

// The dsl.Index methods of FleetIndex take the read lock themselves and return copies, so they
// are safe outside Read (at the cost of the copies).

// Universe is every vehicle id (a copy).
func (x *FleetIndex) Universe() *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.Universe().Clone()
}

// VINPrefix is the ids whose VIN starts with prefix (a copy).
func (x *FleetIndex) VINPrefix(prefix string) *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.VINPrefix(prefix).Clone()
}

// Components is the ids with some part number for which match is true (a copy).
func (x *FleetIndex) Components(match func(part string) bool) *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.Components(match).Clone()
}

// Packages is the ids with one installed package satisfying match (a copy).
func (x *FleetIndex) Packages(match func(name, version string) bool) *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.Packages(match).Clone()
}

// PackageNamed is the ids with a package of that name (case-insensitive) whose version satisfies
// match (a copy).
func (x *FleetIndex) PackageNamed(name string, match func(version string) bool) *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.PackageNamed(name, match).Clone()
}

// Attr is the ids whose attribute key exists and satisfies match (a copy).
func (x *FleetIndex) Attr(key string, match func(v dsl.Value) bool) *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.Attr(key, match).Clone()
}

// Vehicle returns the vehicle with id (nil if none). Its Attrs map is shared: do not modify it.
func (x *FleetIndex) Vehicle(id uint32) *dsl.Vehicle {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return view{x}.Vehicle(id)
}

// vehicle builds the dsl.Vehicle of a live id; Attrs is the shared immutable map.
func (x *FleetIndex) vehicle(id uint32) *dsl.Vehicle {
	r := &x.recs[id]
	v := &dsl.Vehicle{VIN: r.vin}
	if r.npk > 0 {
		v.Packages = make([]dsl.Package, r.npk)
		for i, pid := range r.ids[:r.npk] {
			v.Packages[i] = x.pvs.vals[pid]
		}
	}
	if parts := r.ids[r.npk:]; len(parts) > 0 {
		v.Components = make([]string, len(parts))
		for i, cid := range parts {
			v.Components[i] = x.parts.vals[cid]
		}
	}
	if r.attrs != nil {
		v.Attrs = r.attrs.m
	}
	x.fillState(id, v)
	return v
}

// view is the index under a lock its holder already has: it returns the index's own bitmaps.
type view struct{ x *FleetIndex }

func (w view) Len() int { return len(w.x.byVIN) }

func (w view) VIN(id uint32) string {
	if int(id) >= len(w.x.recs) {
		return ""
	}
	return w.x.recs[id].vin
}

func (w view) Universe() *roaring.Bitmap { return w.x.universe }

func (w view) VINPrefix(prefix string) *roaring.Bitmap {
	x := w.x
	if prefix == "" {
		return x.universe
	}
	if len(prefix) <= 3 {
		var hit []*roaring.Bitmap
		for k, bm := range x.byWMI {
			if strings.HasPrefix(k, prefix) {
				hit = append(hit, bm)
			}
		}
		return union(hit)
	}
	s := x.sorted
	lo := sort.Search(len(s), func(i int) bool { return s[i].vin >= prefix })
	hi := lo + sort.Search(len(s)-lo, func(i int) bool { return !strings.HasPrefix(s[lo+i].vin, prefix) })
	ids := make([]uint32, 0, hi-lo)
	ordered := true
	for _, e := range s[lo:hi] {
		if x.valid(e) {
			ordered = ordered && (len(ids) == 0 || ids[len(ids)-1] < e.id)
			ids = append(ids, e.id)
		}
	}
	for _, e := range x.pending {
		if strings.HasPrefix(e.vin, prefix) && x.valid(e) {
			ordered = ordered && (len(ids) == 0 || ids[len(ids)-1] < e.id)
			ids = append(ids, e.id)
		}
	}
	bm := roaring.New()
	if !ordered {
		slices.Sort(ids)
		bm.AddMany(ids)
		return bm
	}
	// Ids of a bulk load follow VIN order: add runs of consecutive ids as ranges.
	for i := 0; i < len(ids); {
		j := i + 1
		for j < len(ids) && ids[j] == ids[j-1]+1 {
			j++
		}
		bm.AddRange(uint64(ids[i]), uint64(ids[j-1])+1)
		i = j
	}
	return bm
}

// union ORs bms; the result may be one of them (read-only either way).
func union(bms []*roaring.Bitmap) *roaring.Bitmap {
	switch len(bms) {
	case 0:
		return roaring.New()
	case 1:
		return bms[0]
	}
	return roaring.FastOr(bms...)
}

func (w view) Components(match func(part string) bool) *roaring.Bitmap {
	t := &w.x.parts
	var hit []*roaring.Bitmap
	for i, bm := range t.bms {
		if bm != nil && match(t.vals[i]) {
			hit = append(hit, bm)
		}
	}
	return union(hit)
}

func (w view) Packages(match func(name, version string) bool) *roaring.Bitmap {
	t := &w.x.pvs
	var hit []*roaring.Bitmap
	for i, bm := range t.bms {
		if bm != nil && match(t.vals[i].Name, t.vals[i].Version) {
			hit = append(hit, bm)
		}
	}
	return union(hit)
}

func (w view) PackageNamed(name string, match func(version string) bool) *roaring.Bitmap {
	t := &w.x.pvs
	var hit []*roaring.Bitmap
	for _, pid := range w.x.byName[strings.ToLower(name)] {
		if match(t.vals[pid].Version) {
			hit = append(hit, t.bms[pid])
		}
	}
	return union(hit)
}

func (w view) Attr(key string, match func(v dsl.Value) bool) *roaring.Bitmap {
	var hit []*roaring.Bitmap
	for _, e := range w.x.attrs[key] {
		if match(e.val) {
			hit = append(hit, e.bm)
		}
	}
	return union(hit)
}

func (w view) Vehicle(id uint32) *dsl.Vehicle {
	if int(id) >= len(w.x.recs) || w.x.recs[id].vin == "" {
		return nil
	}
	return w.x.vehicle(id)
}

// Solution is the answer of SolveSelected for one selected vehicle.
type Solution struct {
	VIN string
	// Install is what the vehicle must install, dependencies first and the package last; nil when
	// the vehicle has the package already or is unresolved. Lists are shared between vehicles with
	// the same relevant installed versions: read-only.
	Install []PackageID
	// AlreadyInstalled is true when the vehicle has the exact package version installed.
	AlreadyInstalled bool
	// Err is *Unresolved when the vehicle's dependencies cannot be satisfied.
	Err error
}

// SolveSelected runs sel on the read-locked index (typically a Program.Select over the AND of the
// package's filters) and solves root for every selected vehicle, sorted by VIN. Solve runs once per
// distinct set of installed versions of the packages root can reach through any version's
// dependencies; everything else a vehicle has installed cannot change its answer. The graph is
// consulted outside the index lock.
func (x *FleetIndex) SolveSelected(sel func(idx dsl.Index) *roaring.Bitmap, g Graph, root PackageID) []Solution {
	relevant := reachableNames(g, root)
	rootKey := strings.ToLower(root.Name)

	type group struct {
		installed map[string]string
		install   []PackageID
		err       error
	}
	var (
		out    []Solution
		groups []*group
		member []int32 // group of out[i]; -1 already installed
		sorted = true
	)
	x.mu.RLock()
	ids := sel(view{x})
	// Which package versions matter, and which one is the root.
	rel := make([]bool, len(x.pvs.vals))
	rootPV := int64(-1)
	for pid, bm := range x.pvs.bms {
		if bm == nil {
			continue
		}
		p := x.pvs.vals[pid]
		ln := strings.ToLower(p.Name)
		rel[pid] = relevant[ln]
		if ln == rootKey && p.Version == root.Version {
			rootPV = int64(pid)
		}
	}
	memo := map[string]int32{}
	out = make([]Solution, 0, ids.GetCardinality())
	member = make([]int32, 0, ids.GetCardinality())
	var key []byte
	var buf []uint32
	it := ids.Iterator()
	for it.HasNext() {
		id := it.Next()
		if int(id) >= len(x.recs) || x.recs[id].vin == "" {
			continue // sel returned an id that is not a vehicle
		}
		r := &x.recs[id]
		if len(out) > 0 && out[len(out)-1].VIN > r.vin {
			sorted = false
		}
		out = append(out, Solution{VIN: r.vin})
		buf = buf[:0]
		has := false
		for _, pid := range r.ids[:r.npk] {
			if int64(pid) == rootPV {
				has = true
				break
			}
			if rel[pid] {
				buf = append(buf, pid)
			}
		}
		if has {
			out[len(out)-1].AlreadyInstalled = true
			member = append(member, -1)
			continue
		}
		slices.Sort(buf)
		key = key[:0]
		for _, pid := range buf {
			key = binary.LittleEndian.AppendUint32(key, pid)
		}
		gi, ok := memo[string(key)]
		if !ok {
			inst := make(map[string]string, len(buf))
			for _, pid := range buf {
				p := x.pvs.vals[pid]
				ln := strings.ToLower(p.Name)
				if cur, dup := inst[ln]; !dup || dsl.CompareVersions(p.Version, cur) > 0 {
					inst[ln] = p.Version
				}
			}
			gi = int32(len(groups))
			groups = append(groups, &group{installed: inst})
			memo[string(key)] = gi
		}
		member = append(member, gi)
	}
	x.mu.RUnlock()

	// The groups are solved on every CPU over a frozen copy of the part of the graph root can reach
	// (g itself need not be safe for concurrent use).
	frozen := freezeGraph(g, relevant)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(1, len(groups)/64)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(groups)); i = next.Add(1) - 1 {
				gr := groups[i]
				gr.install, gr.err = Solve(frozen, root, gr.installed)
			}
		}()
	}
	wg.Wait()
	for i := range out {
		if gi := member[i]; gi >= 0 {
			out[i].Install, out[i].Err = groups[gi].install, groups[gi].err
		}
	}
	if !sorted {
		slices.SortFunc(out, func(a, b Solution) int { return strings.Compare(a.VIN, b.VIN) })
	}
	return out
}

// frozenGraph is an immutable copy of the versions and dependencies of some names of a Graph.
type frozenGraph struct {
	versions map[string][]string // lower-cased name -> versions
	deps     map[string][]Dep    // lower-cased name + "\x00" + version -> dependencies
}

// freezeGraph copies from g the versions of the names (lower-cased) and the dependencies of each.
func freezeGraph(g Graph, names map[string]bool) *frozenGraph {
	f := &frozenGraph{versions: make(map[string][]string, len(names)), deps: map[string][]Dep{}}
	for name := range names {
		vs := g.Versions(name)
		f.versions[name] = vs
		for _, v := range vs {
			f.deps[name+"\x00"+v] = g.Deps(PackageID{Name: name, Version: v})
		}
	}
	return f
}

// Deps implements Graph for the frozen names; any other package has none.
func (f *frozenGraph) Deps(id PackageID) []Dep {
	return f.deps[strings.ToLower(id.Name)+"\x00"+id.Version]
}

// Versions implements Graph for the frozen names.
func (f *frozenGraph) Versions(name string) []string { return f.versions[strings.ToLower(name)] }

// reachableNames is every lower-cased name that some version reachable from root depends on, and
// root's own name: the installed versions that can change root's install list.
func reachableNames(g Graph, root PackageID) map[string]bool {
	rootKey := strings.ToLower(root.Name)
	seen := map[string]bool{rootKey: true}
	queue := []string{}
	add := func(deps []Dep) {
		for _, d := range deps {
			k := strings.ToLower(d.Name)
			if !seen[k] {
				seen[k] = true
				queue = append(queue, d.Name)
			}
		}
	}
	add(g.Deps(root))
	for _, v := range g.Versions(root.Name) {
		add(g.Deps(PackageID{Name: root.Name, Version: v}))
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		for _, v := range g.Versions(name) {
			add(g.Deps(PackageID{Name: name, Version: v}))
		}
	}
	return seen
}
