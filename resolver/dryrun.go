package resolver

import (
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
)

// A dry run counts from bitmaps: the selected vehicles, those among them that have the exact root
// version, and the rest split into classes of vehicles with the same installed versions of the
// names the root can reach through dependencies (nothing else a vehicle has installed changes its
// install list). Each class is solved once; a root without dependencies is one class. Only the
// vehicles shown (the sample, the first unresolved and a few per reason) are looked at one by one,
// so the cost does not grow with the number of vehicles that match.

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

// installClass is vehicles with the same installed versions of the names that matter.
type installClass struct {
	ids       *roaring.Bitmap
	installed map[string]string // lower-cased name -> version
	install   []PackageID
	err       error
}

// DryRunSelected runs sel on the read-locked index and counts what resolving root for the
// selected vehicles would do, with samples of size samples (resolvable and unresolved) and
// ReasonSample VINs per reason.
func (x *FleetIndex) DryRunSelected(sel func(idx dsl.Index) *roaring.Bitmap, g Graph, root PackageID, samples int) DryRunCounts {
	relevant := reachableNames(g, root)
	frozen := freezeGraph(g, relevant)
	rootKey := strings.ToLower(root.Name)
	var names []string
	for n := range relevant {
		if n != rootKey { // the root's own installed version only matters when it is the root
			names = append(names, n)
		}
	}
	slices.Sort(names)

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

	classes := x.installClasses(rest, names)
	solveClasses(frozen, root, classes)

	resolvable := roaring.New()
	failed := map[string]*roaring.Bitmap{}
	for _, c := range classes {
		if c.err == nil {
			resolvable.Or(c.ids)
			continue
		}
		r := c.err.Error()
		if failed[r] == nil {
			failed[r] = roaring.New()
		}
		failed[r].Or(c.ids)
	}
	classOf := func(id uint32) *installClass {
		for _, c := range classes {
			if c.ids.Contains(id) {
				return c
			}
		}
		return nil
	}
	for _, id := range x.firstByVIN(resolvable, samples) {
		out.Sample = append(out.Sample, SampleVehicle{VIN: x.recs[id].vin, Install: classOf(id).install})
	}
	if len(failed) == 0 {
		return out
	}
	all := roaring.New()
	for r, bm := range failed {
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
		out.Unresolved = append(out.Unresolved, UnresolvedVehicle{VIN: x.recs[id].vin, Reason: classOf(id).err.Error()})
	}
	return out
}

// installClasses splits ids (owned) by the installed versions of names (lower-cased), the highest
// version where a vehicle has several of one name; classes with the same versions are merged.
func (x *FleetIndex) installClasses(ids *roaring.Bitmap, names []string) []*installClass {
	cur := []*installClass{{ids: ids, installed: map[string]string{}}}
	for _, n := range names {
		pids := slices.Clone(x.byName[n])
		if len(pids) == 0 {
			continue
		}
		slices.SortFunc(pids, func(a, b uint32) int {
			return -dsl.CompareVersions(x.pvs.vals[a].Version, x.pvs.vals[b].Version)
		})
		var next []*installClass
		for _, c := range cur {
			rest := c.ids
			for _, pid := range pids {
				part := roaring.And(rest, x.pvs.bms[pid])
				if part.IsEmpty() {
					continue
				}
				inst := maps.Clone(c.installed)
				inst[n] = x.pvs.vals[pid].Version
				next = append(next, &installClass{ids: part, installed: inst})
				rest.AndNot(part)
				if rest.IsEmpty() {
					break
				}
			}
			if !rest.IsEmpty() {
				next = append(next, &installClass{ids: rest, installed: c.installed})
			}
		}
		cur = next
	}
	// Names that differ only in case, at one version, gave classes with the same versions.
	byKey := map[string]*installClass{}
	var out []*installClass
	for _, c := range cur {
		var k strings.Builder
		for _, n := range slices.Sorted(maps.Keys(c.installed)) {
			k.WriteString(n + "\x00" + c.installed[n] + "\x00")
		}
		if m := byKey[k.String()]; m != nil {
			m.ids.Or(c.ids)
			continue
		}
		byKey[k.String()] = c
		out = append(out, c)
	}
	return out
}

// solveClasses solves root for every class, on every CPU when there are many.
func solveClasses(g Graph, root PackageID, classes []*installClass) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(1, len(classes)/64)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(classes)); i = next.Add(1) - 1 {
				c := classes[i]
				c.install, c.err = Solve(g, root, c.installed)
			}
		}()
	}
	wg.Wait()
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
