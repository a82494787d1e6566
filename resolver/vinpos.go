package resolver

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
)

// The VIN positions: for every position of a VIN and its byte there, the ids of the VINs that have
// that byte there, and the ids by VIN length. The index plan answers a regex leaf from them
// exactly, without checking VINs one by one, when its gram query leaves many candidates
// (dsl.VINPositionIndex). A VIN longer than vinPositions bytes, or with a byte of 0x80 or above,
// is only in vinUnpositioned and is checked by the regex. For 17-character VINs in VIN order
// this costs about 15 bytes a vehicle: the positions of the world manufacturer identifier and
// the model are long runs of ids, each serial-number position ten bitmaps of one bit a vehicle.

// vinPositions is how many bytes of a VIN are indexed by position (a VIN has 17).
const vinPositions = 24

// posSlot is the slot of byte c at position p in vinAt and the position queue; the lengths follow.
func posSlot(p int, c byte) int { return p<<7 | int(c) }

const lenSlots = vinPositions << 7 // the slot of length n is lenSlots + n

// positioned reports whether the positions cover vin.
func positioned(vin string) bool {
	if len(vin) > vinPositions {
		return false
	}
	for i := 0; i < len(vin); i++ {
		if vin[i] >= 0x80 {
			return false
		}
	}
	return true
}

// queueVINPositions notes the positions of a new id's VIN; flushVINPositions indexes them, a
// batch of ids per slot at a time (write lock held).
func (x *FleetIndex) queueVINPositions(vin string, id uint32) {
	if !positioned(vin) {
		if x.vinUnpositioned == nil {
			x.vinUnpositioned = roaring.New()
		}
		x.vinUnpositioned.Add(id)
		return
	}
	if x.posQueue == nil {
		x.posQueue = make([][]uint32, lenSlots+vinPositions+1)
	}
	for i := 0; i <= len(vin); i++ {
		s := lenSlots + len(vin)
		if i < len(vin) {
			s = posSlot(i, vin[i])
		}
		if len(x.posQueue[s]) == 0 {
			x.posTouched = append(x.posTouched, int32(s))
		}
		x.posQueue[s] = append(x.posQueue[s], id)
	}
}

func (x *FleetIndex) flushVINPositions() {
	if x.posQueue == nil {
		return
	}
	if x.vinAt == nil {
		x.vinAt = make([]*roaring.Bitmap, lenSlots+vinPositions+1)
	}
	queued := 0
	for _, s := range x.posTouched {
		ids := x.posQueue[s]
		queued += len(ids)
		bm := x.vinAt[s]
		if bm == nil {
			bm = roaring.New()
			x.vinAt[s] = bm
		}
		if !slices.IsSorted(ids) {
			slices.Sort(ids)
		}
		bm.AddMany(ids)
		x.posQueue[s] = ids[:0]
	}
	x.posTouched = x.posTouched[:0]
	if queued > 1<<18 { // a bulk load's chunk: let the slices go
		x.posQueue, x.posTouched = nil, nil
	}
}

// removeVINPositions takes a deleted id out of its VIN's positions (write lock held).
func (x *FleetIndex) removeVINPositions(vin string, id uint32) {
	if !positioned(vin) {
		x.vinUnpositioned.Remove(id)
		return
	}
	for i := 0; i <= len(vin); i++ {
		s := lenSlots + len(vin)
		if i < len(vin) {
			s = posSlot(i, vin[i])
		}
		if bm := x.vinAt[s]; bm != nil {
			bm.Remove(id)
		}
	}
}

// VINPositions is how many bytes of a VIN are indexed by position.
func (w view) VINPositions() int { return vinPositions }

// VINByte is the ids whose VIN has byte c at position p (the index's own bitmap, nil when none).
func (w view) VINByte(p int, c byte) *roaring.Bitmap {
	if p < 0 || p >= vinPositions || c >= 0x80 || w.x.vinAt == nil {
		return nil
	}
	return w.x.vinAt[posSlot(p, c)]
}

// VINLen is the positioned ids whose VIN has n bytes (the index's own bitmap, nil when none).
func (w view) VINLen(n int) *roaring.Bitmap {
	if n < 0 || n > vinPositions || w.x.vinAt == nil {
		return nil
	}
	return w.x.vinAt[lenSlots+n]
}

// VINUnpositioned is the ids whose VIN the positions do not cover (nil when none).
func (w view) VINUnpositioned() *roaring.Bitmap { return w.x.vinUnpositioned }

var _ dsl.VINPositionIndex = view{}
