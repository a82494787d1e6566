package resolver

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
)

// A dry run counts from bitmaps: the selected vehicles, and those among them that have the exact
// root version. What the others must install depends only on their installed versions of the names
// the root can reach through dependencies, and mostly on few of them: the solver is run on classes
// of vehicles described by the versions of some names, starting with no name known, and a class is
// split by the versions of a name only when solving it asks for that name (a package a class has
// installed and keeps cuts the names below it). So the solver runs once per outcome-deciding
// combination of versions, however many vehicles share it, and a package without dependencies is
// solved once. Bitmaps are built only for the classes that cannot be satisfied (to count them); the
// vehicles shown (the sample, the first unresolved, a few per reason) are solved one by one.

// DryRunCounts is what DryRunSelected finds.
type DryRunCounts struct {
	Matched          int // selected, exact root version not installed (resolvable or not)
	AlreadyInstalled int // selected, exact root version installed
	Unresolvable     int // matched, dependencies cannot be satisfied
	// Sample is the first resolvable matched vehicles by VIN with their install lists.
	Sample []SampleVehicle
	// Unresolved is the first unresolvable matched vehicles by VIN with their reasons.
	Unresolved []UnresolvedVehicle
	// ByReason groups the unresolvable vehicles by reason, most vehicles first.
	ByReason []UnresolvedGroup
	// Solved is how many times the solver ran for the classes (not for the vehicles shown; none
	// when the outcomes of the package's classes were cached).
	Solved int
}

// UnresolvedGroup is the matched vehicles whose dependencies fail for one reason: how many, and
// the first few by VIN.
type UnresolvedGroup struct {
	Reason   string   `json:"reason"`
	Vehicles int      `json:"vehicles"`
	Sample   []string `json:"sample"`
}

// ReasonSample is how many VINs a group of unresolved vehicles shows.
const ReasonSample = 10

// DryRunSelected runs sel on the read-locked index and counts what resolving root for the
// selected vehicles would do, with samples of size samples (resolvable and unresolved) and
// ReasonSample VINs per reason.
func (x *FleetIndex) DryRunSelected(sel func(idx dsl.Index) *roaring.Bitmap, g Graph, root PackageID, samples int) DryRunCounts {
	relevant := reachableNames(g, root)
	frozen := freezeGraph(g, relevant)
	rootKey := strings.ToLower(root.Name)

	x.mu.RLock()
	defer x.mu.RUnlock()
	ids := sel(view{x})
	var out DryRunCounts
	rest := ids.Clone()
	for _, pid := range x.byName[rootKey] {
		if x.pvs.vals[pid].Version == root.Version {
			rest.AndNot(x.pvs.bms[pid])
		}
	}
	out.Matched = int(rest.GetCardinality())
	out.AlreadyInstalled = int(ids.GetCardinality()) - out.Matched
	if out.Matched == 0 {
		return out
	}

	t := classTree{x: x, g: frozen, root: root, rootKey: rootKey, relevant: relevant, rest: rest, failed: map[string]*roaring.Bitmap{}}
	t.classify()
	out.Solved = t.solved

	// The vehicles shown are solved one by one (the same answer as their class's).
	memo := map[string]vehicleAnswer{}
	answer := func(id uint32) vehicleAnswer {
		inst := x.installedOf(id, relevant)
		var k strings.Builder
		for _, n := range slices.Sorted(maps.Keys(inst)) {
			k.WriteString(n + "\x00" + inst[n] + "\x00")
		}
		a, ok := memo[k.String()]
		if !ok {
			a.install, a.err = Solve(frozen, root, inst)
			memo[k.String()] = a
		}
		return a
	}
	all := roaring.New()
	for r, bm := range t.failed {
		all.Or(bm)
		g := UnresolvedGroup{Reason: r, Vehicles: int(bm.GetCardinality())}
		for _, id := range x.firstByVIN(bm, ReasonSample) {
			g.Sample = append(g.Sample, x.recs[id].vin)
		}
		out.ByReason = append(out.ByReason, g)
	}
	sort.Slice(out.ByReason, func(i, j int) bool {
		a, b := out.ByReason[i], out.ByReason[j]
		return a.Vehicles > b.Vehicles || a.Vehicles == b.Vehicles && a.Reason < b.Reason
	})
	out.Unresolvable = int(all.GetCardinality())
	for _, id := range x.firstByVIN(all, samples) {
		out.Unresolved = append(out.Unresolved, UnresolvedVehicle{VIN: x.recs[id].vin, Reason: answer(id).err.Error()})
	}
	resolvable := rest
	if out.Unresolvable > 0 {
		resolvable.AndNot(all)
	}
	for _, id := range x.firstByVIN(resolvable, samples) {
		out.Sample = append(out.Sample, SampleVehicle{VIN: x.recs[id].vin, Install: answer(id).install})
	}
	return out
}

type vehicleAnswer struct {
	install []PackageID
	err     error
}

// installedOf is the installed versions of a vehicle for the names (lower-cased), the highest where
// it has several of one name.
func (x *FleetIndex) installedOf(id uint32, names map[string]bool) map[string]string {
	inst := map[string]string{}
	r := &x.recs[id]
	for _, pid := range r.ids[:r.npk] {
		p := x.pvs.vals[pid]
		n := strings.ToLower(p.Name)
		if !names[n] {
			continue
		}
		if cur, dup := inst[n]; !dup || dsl.CompareVersions(p.Version, cur) > 0 {
			inst[n] = p.Version
		}
	}
	return inst
}

// classTree solves the classes of the matched vehicles (rest) and collects the bitmaps of those that
// fail, by reason (read lock held).
type classTree struct {
	x        *FleetIndex
	g        Graph
	root     PackageID
	rootKey  string
	relevant map[string]bool
	rest     *roaring.Bitmap
	failed   map[string]*roaring.Bitmap
	solved   int
	// versions of a name in the fleet, highest first, each with the ids that have it as their
	// highest version of that name
	versions map[string][]nameVersion
	// the classes of the product of versions that fail (see outcomes)
	failing []failingClass
}

type failingClass struct {
	known  map[string]string
	reason string
}

// productSolves bounds the solver runs of outcomes; failingBitmaps bounds the failing classes whose
// bitmaps are built from it.
const (
	productSolves  = 2048
	failingBitmaps = 64
)

// classify finds the classes of rest that fail. First over the versions the fleet has, without
// bitmaps (outcomes): when that stays small and few classes fail, only those get bitmaps. Otherwise
// the classes are split with bitmaps, which keeps only the classes some vehicle is in.
func (t *classTree) classify() {
	key := t.outcomesKey()
	o, cached := t.x.outcomes.get(key)
	if !cached {
		o.complete = t.outcomes(map[string]string{})
		o.failing = t.failing
		t.x.outcomes.put(key, o)
	}
	t.failing = o.failing
	if o.complete && len(t.failing) <= failingBitmaps {
		for _, f := range t.failing {
			bm := t.bitmap(f.known)
			if bm.IsEmpty() {
				continue
			}
			if t.failed[f.reason] == nil {
				t.failed[f.reason] = bm
			} else {
				t.failed[f.reason].Or(bm)
			}
		}
		return
	}
	t.failing = nil
	t.solve(map[string]string{}, t.rest.Clone())
}

// outcomesKey says what the outcomes depend on: the root, the versions and dependencies of the
// names it reaches, and the versions the fleet has of them.
func (t *classTree) outcomesKey() string {
	var b strings.Builder
	b.WriteString(t.root.Name + "\x00" + t.root.Version)
	for _, name := range slices.Sorted(maps.Keys(t.relevant)) {
		b.WriteString("\x01" + name)
		for _, v := range t.g.Versions(name) {
			b.WriteString("\x02" + v)
			for _, d := range t.g.Deps(PackageID{Name: name, Version: v}) {
				b.WriteString("\x03" + d.Name + " " + d.Exact + d.Range.String())
			}
		}
		b.WriteString("\x04")
		for _, nv := range t.versionsOf(name) {
			b.WriteString("\x02" + nv.version)
		}
	}
	return b.String()
}

// outcomeCache keeps the outcomes of recent dry runs by outcomesKey, so that dry runs of one package
// (the live count of the filter editor) solve its classes once while the catalogue and the fleet's
// versions stay the same.
type outcomeCache struct {
	mu sync.Mutex
	m  map[string]cachedOutcomes
}

type cachedOutcomes struct {
	complete bool // within productSolves
	failing  []failingClass
}

// maxCachedOutcomes bounds the cache; past it, it starts again empty.
const maxCachedOutcomes = 64

func (c *outcomeCache) get(key string) (cachedOutcomes, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[key]
	return o, ok
}

func (c *outcomeCache) put(key string, o cachedOutcomes) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedOutcomes {
		c.m = map[string]cachedOutcomes{}
	}
	c.m[key] = o
}

// outcomes solves the class of the installed versions known and splits it by the versions the fleet
// has of the name the solver asks for, noting the classes that fail; false when that takes more
// than productSolves runs.
func (t *classTree) outcomes(known map[string]string) bool {
	if t.solved >= productSolves {
		return false
	}
	ask := ""
	t.solved++
	_, err := solveWith(t.g, t.root, func(name string) string {
		if v, ok := known[name]; ok || name == t.rootKey || !t.relevant[name] {
			return v
		}
		if ask == "" {
			ask = name
		}
		return ""
	})
	if ask == "" {
		if err != nil {
			t.failing = append(t.failing, failingClass{known: known, reason: err.Error()})
		}
		return true
	}
	for _, nv := range append(t.versionsOf(ask), nameVersion{}) {
		sub := maps.Clone(known)
		sub[ask] = nv.version
		if !t.outcomes(sub) {
			return false
		}
	}
	return true
}

// bitmap is the ids of rest whose highest installed version of each known name is the one given
// ("" for none).
func (t *classTree) bitmap(known map[string]string) *roaring.Bitmap {
	out := t.rest.Clone()
	for name, version := range known {
		vs := t.versionsOf(name)
		for i := range vs {
			switch {
			case version == "":
				for _, pid := range vs[i].pids {
					out.AndNot(t.x.pvs.bms[pid])
				}
			case vs[i].version == version:
				out.And(t.versionOf(name, i).ids)
			}
		}
		if out.IsEmpty() {
			break
		}
	}
	return out
}

type nameVersion struct {
	version string
	pids    []uint32
	ids     *roaring.Bitmap // nil until needed; read-only
}

// solve solves the class ids (a part of rest, owned) of the vehicles with the installed versions
// known ("" for none) and any versions of the other names.
func (t *classTree) solve(known map[string]string, ids *roaring.Bitmap) {
	ask := ""
	t.solved++
	_, err := solveWith(t.g, t.root, func(name string) string {
		if v, ok := known[name]; ok || name == t.rootKey || !t.relevant[name] {
			return v
		}
		if ask == "" {
			ask = name
		}
		return ""
	})
	if ask == "" { // the answer holds for the whole class
		if err != nil {
			r := err.Error()
			if t.failed[r] == nil {
				t.failed[r] = ids
			} else {
				t.failed[r].Or(ids)
			}
		}
		return
	}
	// Split by the versions of the name the solver asked for that the class has, and none of it.
	for i := range t.versionsOf(ask) {
		nv := t.versionOf(ask, i)
		part := roaring.And(ids, nv.ids)
		if part.IsEmpty() {
			continue
		}
		ids.AndNot(part)
		sub := maps.Clone(known)
		sub[ask] = nv.version
		t.solve(sub, part)
		if ids.IsEmpty() {
			return
		}
	}
	sub := maps.Clone(known)
	sub[ask] = ""
	t.solve(sub, ids)
}

// versionsOf is the versions of a lower-cased name in the fleet, highest first.
func (t *classTree) versionsOf(name string) []nameVersion {
	if vs, ok := t.versions[name]; ok {
		return vs
	}
	byVersion := map[string][]uint32{}
	for _, pid := range t.x.byName[name] {
		v := t.x.pvs.vals[pid].Version
		byVersion[v] = append(byVersion[v], pid)
	}
	var vs []nameVersion
	for v, pids := range byVersion {
		vs = append(vs, nameVersion{version: v, pids: pids})
	}
	slices.SortFunc(vs, func(a, b nameVersion) int { return -dsl.CompareVersions(a.version, b.version) })
	if t.versions == nil {
		t.versions = map[string][]nameVersion{}
	}
	t.versions[name] = vs
	return vs
}

// versionOf is version i of versionsOf(name), with the ids that have it as their highest version
// of that name.
func (t *classTree) versionOf(name string, i int) *nameVersion {
	vs := t.versions[name]
	nv := &vs[i]
	if nv.ids == nil {
		bms := make([]*roaring.Bitmap, 0, len(nv.pids))
		for _, pid := range nv.pids {
			bms = append(bms, t.x.pvs.bms[pid])
		}
		nv.ids = union(bms)
		if i > 0 { // a vehicle with a higher version too belongs there
			nv.ids = nv.ids.Clone()
			for _, higher := range vs[:i] {
				for _, pid := range higher.pids {
					nv.ids.AndNot(t.x.pvs.bms[pid])
				}
			}
		}
	}
	return nv
}

// vinBlock is how many entries of the VIN order one block bitmap covers.
const vinBlock = 4096

// firstByVIN returns the ids of the first n vehicles of b by VIN (read lock held). The VIN order
// is cut into blocks, each with the bitmap of its ids, so that only the blocks holding the first
// of b are walked, wherever they lie, and the entries inserted since the last merge are checked
// one by one.
func (x *FleetIndex) firstByVIN(b *roaring.Bitmap, n int) []uint32 {
	if n <= 0 || b.IsEmpty() {
		return nil
	}
	blocks := x.vinBlocks()
	var hits []vinRef
	for k, blk := range blocks {
		if len(hits) >= n {
			break
		}
		if !b.Intersects(blk) {
			continue
		}
		for _, e := range x.sorted[k*vinBlock : min((k+1)*vinBlock, len(x.sorted))] {
			if b.Contains(e.id) && x.valid(e) {
				hits = append(hits, e)
				if len(hits) == n {
					break
				}
			}
		}
	}
	more := false
	for _, e := range x.pending {
		if b.Contains(e.id) && x.valid(e) {
			hits, more = append(hits, e), true
		}
	}
	if more {
		slices.SortFunc(hits, func(a, b vinRef) int { return strings.Compare(a.vin, b.vin) })
		hits = slices.CompactFunc(hits, func(a, b vinRef) bool { return a == b })
	}
	out := make([]uint32, 0, min(n, len(hits)))
	for _, e := range hits[:min(n, len(hits))] {
		out = append(out, e.id)
	}
	return out
}

// vinBlocks returns the block bitmaps of the current VIN order, built on first use after a merge
// (read lock held; blockMu orders the readers that build them).
func (x *FleetIndex) vinBlocks() []*roaring.Bitmap {
	x.blockMu.Lock()
	defer x.blockMu.Unlock()
	if x.blocksGen == x.sortedGen && x.blocks != nil {
		return x.blocks
	}
	blocks := make([]*roaring.Bitmap, 0, (len(x.sorted)+vinBlock-1)/vinBlock)
	ids := make([]uint32, 0, vinBlock)
	for k := 0; k < len(x.sorted); k += vinBlock {
		ids = ids[:0]
		for _, e := range x.sorted[k:min(k+vinBlock, len(x.sorted))] {
			ids = append(ids, e.id)
		}
		slices.Sort(ids)
		bm := roaring.New()
		bm.AddMany(ids)
		bm.RunOptimize()
		blocks = append(blocks, bm)
	}
	x.blocks, x.blocksGen = blocks, x.sortedGen
	return blocks
}
