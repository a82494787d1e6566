package resolver

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
)

// The VIN grams: for every gram dsl.Grams yields (runs of one to three case-folded runes of
// "^" + VIN + "$"), the ids of the VINs that have it. The index plan answers vin_matches with
// any regex from them (dsl.RegexGramQuery) and checks the regex on the candidates only. They cost
// about 50 bytes a vehicle (a fleet index of 1M example vehicles: 278 -> 328 bytes a vehicle).

// queueVINGrams notes the grams of a new id's VIN; flushVINGrams indexes them, a batch of ids
// per gram at a time (write lock held). VINs come in VIN order in a bulk load, so a VIN shares
// its first grams with the one before: those reuse its slots without a lookup.
func (x *FleetIndex) queueVINGrams(vin string, id uint32) {
	q := &x.gramQueue
	if q.slot == nil {
		q.slot = map[dsl.Gram]int32{}
	}
	grams := dsl.AppendGrams(q.buf[:0], vin)
	slots := q.slots[:0]
	for k, g := range grams {
		var i int32
		if k < len(q.prev) && q.prev[k] == g {
			i = q.prevSlots[k]
		} else {
			var ok bool
			if i, ok = q.slot[g]; !ok {
				i = int32(len(q.grams))
				q.slot[g] = i
				q.grams = append(q.grams, g)
				q.ids = append(q.ids, nil)
			}
			q.used = max(q.used, i+1)
		}
		slots = append(slots, i)
		if ids := q.ids[i]; len(ids) == 0 || ids[len(ids)-1] != id { // a gram the VIN has twice
			q.ids[i] = append(ids, id)
		}
	}
	// this VIN's grams and slots become the previous ones
	q.buf, q.prev = q.prev, grams
	q.slots, q.prevSlots = q.prevSlots, slots
}

// gramQueue holds the grams of the VINs one PutMany added until it indexes them.
type gramQueue struct {
	slot      map[dsl.Gram]int32
	grams     []dsl.Gram
	ids       [][]uint32
	buf, prev []dsl.Gram
	slots     []int32
	prevSlots []int32
	used      int32 // slots 0..used-1 may hold ids
	held      int   // ids the slices can hold: kept for the next PutMany when small
}

func (x *FleetIndex) flushVINGrams() {
	q := &x.gramQueue
	held := 0
	for i, g := range q.grams[:q.used] {
		ids := q.ids[i]
		held += cap(ids)
		if len(ids) == 0 {
			continue
		}
		bm := x.vinGrams[g]
		if bm == nil {
			bm = roaring.New()
			x.vinGrams[g] = bm
		}
		if !slices.IsSorted(ids) {
			slices.Sort(ids)
		}
		bm.AddMany(ids)
		q.ids[i] = ids[:0]
	}
	q.used, q.prev, q.prevSlots = 0, q.prev[:0], q.prevSlots[:0]
	if held > 1<<20 { // more than a bulk load's chunk needs: let it go
		*q = gramQueue{}
	}
}

// removeVINGrams takes a deleted id out of its VIN's grams (write lock held).
func (x *FleetIndex) removeVINGrams(vin string, id uint32) {
	dsl.Grams(vin, func(g dsl.Gram) {
		if bm := x.vinGrams[g]; bm != nil {
			bm.Remove(id)
			if bm.IsEmpty() {
				delete(x.vinGrams, g)
			}
		}
	})
}

// VINGram is the ids whose VIN has the gram (a copy).
func (x *FleetIndex) VINGram(g dsl.Gram) *roaring.Bitmap {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if bm := x.vinGrams[g]; bm != nil {
		return bm.Clone()
	}
	return nil
}

// VINGram is the ids whose VIN has the gram (the index's own bitmap; nil when none has).
func (w view) VINGram(g dsl.Gram) *roaring.Bitmap { return w.x.vinGrams[g] }

var (
	_ dsl.VINGramIndex = view{}
	_ dsl.VINGramIndex = (*FleetIndex)(nil)
)
