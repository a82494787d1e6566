package dsl

import (
	"runtime"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/expr-lang/expr/vm"
)

// VINGramIndex is an Index that also keeps the n-gram index of VINs (the grams Grams yields): the
// plan then takes the candidates of a vin_matches leaf from its gram query and runs the regex on
// their VINs only.
type VINGramIndex interface {
	Index
	// VINGram is the ids whose VIN has the gram (read-only; nil or empty when none has).
	VINGram(g Gram) *roaring.Bitmap
	// VIN is the VIN of a live id.
	VIN(id uint32) string
}

// selectVIN answers a vin_matches leaf within cand.
func (p *Program) selectVIN(n *planNode, idx Index, cand *roaring.Bitmap) *roaring.Bitmap {
	l := n.leaf
	if n.residual == nil { // the regex is its literal prefix
		if l.prefix == "" {
			return candidates(idx, cand)
		}
		return within(idx.VINPrefix(l.prefix), cand)
	}
	if len(l.foldPrefixes) > 0 { // a case-insensitive literal prefix: each of its spellings
		bms := make([]*roaring.Bitmap, 0, len(l.foldPrefixes))
		for _, p := range l.foldPrefixes {
			if bm := idx.VINPrefix(p); !bm.IsEmpty() {
				bms = append(bms, bm)
			}
		}
		if len(bms) == 0 {
			return roaring.New()
		}
		return within(roaring.FastOr(bms...), cand)
	}
	gi, grams := idx.(VINGramIndex)
	var b *roaring.Bitmap
	if grams {
		if g := l.vinQuery.Eval(gi.VINGram); g != nil {
			b = within(g, cand)
		}
	}
	if b == nil {
		if l.prefix != "" {
			b = within(idx.VINPrefix(l.prefix), cand)
		} else if cand != nil {
			b = cand
		} else {
			b = idx.Universe()
		}
	}
	if pi, ok := idx.(VINPositionIndex); ok && usePositions(b.GetCardinality(), idx.Universe().GetCardinality()) {
		if out := p.selectVINPositions(l, pi, b); out != nil {
			return out
		}
	}
	if grams {
		return filterIDs(b, func() func(uint32) bool {
			return func(id uint32) bool { return l.re.match(gi.VIN(id)) }
		})
	}
	return p.filter(n.residual, idx, b)
}

// filter keeps the ids of b (read-only) for which the residual program is true.
func (p *Program) filter(prog *vm.Program, idx Index, b *roaring.Bitmap) *roaring.Bitmap {
	var mu sync.Mutex
	var vms []*vm.VM
	defer func() {
		for _, m := range vms {
			p.vms.Put(m)
		}
	}()
	return filterIDs(b, func() func(uint32) bool {
		m := p.vms.Get().(*vm.VM)
		mu.Lock()
		vms = append(vms, m)
		mu.Unlock()
		return func(id uint32) bool {
			v := idx.Vehicle(id)
			if v == nil {
				return false
			}
			r, err := m.Run(prog, v)
			if err != nil {
				panic("dsl: residual program failed: " + err.Error())
			}
			return r.(bool)
		}
	})
}

// parallelFrom is the number of candidates from which a check is split over the CPUs: below it the
// check takes about a millisecond, less than waiting for another CPU can cost on a busy machine.
const parallelFrom = 1 << 15

// filterIDs returns the ids of b (read-only) for which keep is true, splitting b into one range
// of ids per CPU when it is large; each range calls newKeep once for its own predicate.
func filterIDs(b *roaring.Bitmap, newKeep func() func(uint32) bool) *roaring.Bitmap {
	n := b.GetCardinality()
	workers := min(runtime.GOMAXPROCS(0), int(n/parallelFrom)+1)
	parts := make([][]uint32, workers)
	run := func(w int) {
		keep := newKeep()
		first, _ := b.Select(uint32(n * uint64(w) / uint64(workers)))
		last := uint64(1) << 32 // one past the range's last id
		if w+1 < workers {
			end, _ := b.Select(uint32(n * uint64(w+1) / uint64(workers)))
			last = uint64(end)
		}
		it := b.Iterator()
		it.AdvanceIfNeeded(first)
		var out []uint32
		for it.HasNext() {
			id := it.Next()
			if uint64(id) >= last {
				break
			}
			if keep(id) {
				out = append(out, id)
			}
		}
		parts[w] = out
	}
	if n == 0 {
		return roaring.New()
	}
	if workers == 1 {
		run(0)
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(w)
			}()
		}
		wg.Wait()
	}
	out := roaring.New()
	for _, ids := range parts {
		out.AddMany(ids)
	}
	return out
}
