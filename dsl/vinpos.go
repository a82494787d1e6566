package dsl

import (
	"regexp/syntax"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// Regex leaves answered exactly from the bytes of the VINs at each position. An index that keeps,
// for every position p and ASCII byte c, the ids whose VIN has c at p (and the ids by VIN length)
// answers a regex with the bitmaps of its positions: the program of the regex runs once for all
// ids at the same time, one position after another, with a bitmap of ids for each instruction
// (the ids for which a match attempt is at that instruction there), the same subset simulation
// as the byte DFA (dfa.go) but over sets of vehicles instead of one string. A consuming
// instruction passes on the ids whose byte at p it matches (the OR of the bitmaps of its bytes at
// p), the end anchor keeps the ids whose VIN ends at p, and a match attempt begins at every
// position with every id. The answer is exact, so no VIN is checked one by one, and its cost
// depends on the pattern's size and the VIN length, not on how many vehicles match: it answers
// the regex leaves whose gram query leaves many candidates (`[13579]$`, `(7|X)$`), where checking
// every candidate would cost a memory access per vehicle. VINs the positions do not cover (longer
// ones, or with a byte of 0x80 or above) are checked by the regex as before.

// VINPositionIndex is a VINGramIndex that also keeps the VIN bytes by position.
type VINPositionIndex interface {
	VINGramIndex
	// VINPositions is how many positions are indexed; VINs longer than that, or with a byte of
	// 0x80 or above, are in VINUnpositioned only.
	VINPositions() int
	// VINByte is the ids whose VIN has byte c (below 0x80) at position p (from 0): read-only,
	// nil or empty when none.
	VINByte(p int, c byte) *roaring.Bitmap
	// VINLen is the positioned ids whose VIN has n bytes (read-only, nil or empty when none).
	VINLen(n int) *roaring.Bitmap
	// VINUnpositioned is the ids whose VIN the positions do not cover (read-only, nil or empty
	// when none).
	VINUnpositioned() *roaring.Bitmap
}

// usePositions says whether a regex leaf with cand gram candidates among universe vehicles is
// answered from the positions rather than by checking each candidate: when the candidates are
// dense (at least one in positionsDensity, so their bitmaps are bitmaps of bits, not lists), and
// at least positionsFrom. Sparse candidates cost about as much in bitmap operations as in checks
// (a few memory accesses each); dense ones cost the positions the same whatever their number:
// `[13579]$` (500,000 of 1M candidates) takes 2-3 ms instead of 30. Variables for the tests.
var (
	positionsFrom    uint64 = 4096
	positionsDensity uint64 = 16
)

func usePositions(cand, universe uint64) bool {
	return cand >= positionsFrom && cand*positionsDensity >= universe
}

// maxPosSteps bounds the instructions × positions of a pattern answered from the positions.
const maxPosSteps = 1 << 12

// posProgram is a regex prepared for the positions: the instructions of the DFA's closures.
type posProgram struct {
	prog    *syntax.Prog
	start   []uint32   // the closure of the start at the start of the text
	restart []uint32   // the closure of the start elsewhere
	bytes   [][]byte   // by pc, consuming instructions: the ASCII bytes they match
	next    [][]uint32 // by pc, consuming instructions: the closure of what follows
	endAt   [2][]bool  // [atBegin] by pc, end assertions: the text matches when it ends there
}

// lazyPos prepares a pattern's posProgram on first use (nil when it cannot: the same patterns the
// byte DFA does not take).
type lazyPos struct {
	pattern string
	once    sync.Once
	p       *posProgram
}

func (l *lazyPos) get() *posProgram {
	if l == nil {
		return nil
	}
	l.once.Do(func() { l.p = buildPosProgram(l.pattern) })
	return l.p
}

func buildPosProgram(pattern string) *posProgram {
	prog := compileAnchorsOnly(pattern)
	if prog == nil {
		return nil
	}
	n := len(prog.Inst)
	p := &posProgram{prog: prog, bytes: make([][]byte, n), next: make([][]uint32, n)}
	p.endAt[0], p.endAt[1] = make([]bool, n), make([]bool, n)
	b := dfaBuilder{prog: prog, seen: make([]uint32, n)}
	for pc := range prog.Inst {
		in := &prog.Inst[pc]
		switch in.Op {
		case syntax.InstEmptyWidth:
			for k, atBegin := range []bool{false, true} {
				p.endAt[k][pc] = b.matchesAtEnd([]uint32{uint32(pc)}, atBegin)
			}
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			for c := 0; c < 0x80; c++ {
				if consumes(in, rune(c)) {
					p.bytes[pc] = append(p.bytes[pc], byte(c))
				}
			}
			p.next[pc] = compact(b.closure(nil, in.Out, false))
		}
	}
	p.start = compact(b.closure(nil, uint32(prog.Start), true))
	p.restart = compact(b.closure(nil, uint32(prog.Start), false))
	return p
}

func compact(set []uint32) []uint32 {
	seen := map[uint32]bool{}
	out := set[:0]
	for _, pc := range set {
		if !seen[pc] {
			seen[pc] = true
			out = append(out, pc)
		}
	}
	return out
}

// matchPositions returns the ids of within (positioned ids only, read-only) whose VIN the
// program matches, or nil when the pattern is too large for it.
func (p *posProgram) matchPositions(idx VINPositionIndex, within *roaring.Bitmap) *roaring.Bitmap {
	maxLen := 0
	for n := idx.VINPositions(); n >= 0; n-- {
		if bm := idx.VINLen(n); bm != nil && !bm.IsEmpty() {
			maxLen = n
			break
		}
	}
	if len(p.prog.Inst)*(maxLen+1) > maxPosSteps {
		return nil
	}
	matched := roaring.New()
	active := make([]*roaring.Bitmap, len(p.prog.Inst)) // by pc: the ids at it before position pos
	add := func(into []*roaring.Bitmap, pcs []uint32, ids *roaring.Bitmap) {
		for _, pc := range pcs {
			if into[pc] == nil {
				into[pc] = ids.Clone()
			} else {
				into[pc].Or(ids)
			}
		}
	}
	add(active, p.start, within)
	// live is the ids of within whose VIN is longer than livePos-1 bytes; liveAt(pos) those with a
	// byte at pos (positions are asked for in order).
	live, livePos := within, 0
	liveAt := func(pos int) *roaring.Bitmap {
		for ; livePos <= pos; livePos++ {
			if ends := idx.VINLen(livePos); ends != nil && !ends.IsEmpty() {
				live = roaring.AndNot(live, ends)
			}
		}
		return live
	}
	// class is the ids whose byte at pos the consuming instruction pc matches: the OR of its
	// bytes' bitmaps, or for a large class the live ids but those of the bytes it does not match.
	class := func(pc uint32, pos int) *roaring.Bitmap {
		in, set := p.bytes[pc], p.bytes[pc]
		if len(in) > 0x40 {
			set = nil
			for c, k := 0, 0; c < 0x80; c++ {
				if k < len(in) && in[k] == byte(c) {
					k++
				} else {
					set = append(set, byte(c))
				}
			}
		}
		var bms []*roaring.Bitmap
		for _, c := range set {
			if bm := idx.VINByte(pos, c); bm != nil && !bm.IsEmpty() {
				bms = append(bms, bm)
			}
		}
		var or *roaring.Bitmap
		switch len(bms) {
		case 0:
		case 1:
			or = bms[0]
		default:
			or = roaring.FastOr(bms...)
		}
		if len(in) > 0x40 {
			if or == nil {
				return liveAt(pos)
			}
			return roaring.AndNot(liveAt(pos), or)
		}
		return or
	}
	for pos := 0; ; pos++ {
		atBegin := 0
		if pos == 0 {
			atBegin = 1
		}
		ends := idx.VINLen(pos)
		var next []*roaring.Bitmap
		if pos < maxLen {
			next = make([]*roaring.Bitmap, len(p.prog.Inst))
		}
		any := false
		classes := map[string]*roaring.Bitmap{} // by byte set: instructions of one class share it
		for pc, ids := range active {
			if ids == nil || ids.IsEmpty() {
				continue
			}
			in := &p.prog.Inst[pc]
			switch in.Op {
			case syntax.InstMatch:
				matched.Or(ids)
			case syntax.InstEmptyWidth:
				if p.endAt[atBegin][pc] && ends != nil {
					matched.Or(roaring.And(ids, ends))
				}
			default:
				if next == nil {
					continue
				}
				cls, ok := classes[string(p.bytes[pc])]
				if !ok {
					cls = class(uint32(pc), pos)
					classes[string(p.bytes[pc])] = cls
				}
				if cls == nil {
					continue
				}
				step := roaring.And(ids, cls)
				step.AndNot(matched) // decided already
				if !step.IsEmpty() {
					add(next, p.next[pc], step)
					any = true
				}
			}
		}
		if next == nil {
			break
		}
		if len(p.restart) > 0 {
			rest := roaring.AndNot(within, matched)
			if !rest.IsEmpty() {
				add(next, p.restart, rest)
				any = true
			}
		}
		if !any {
			break
		}
		active = next
	}
	return matched
}

// selectVINPositions answers a vin_matches leaf from the positions within b (read-only, the gram
// candidates), or returns nil when the pattern is not one for the positions.
func (p *Program) selectVINPositions(l *leaf, idx VINPositionIndex, b *roaring.Bitmap) *roaring.Bitmap {
	prog := l.pos.get()
	if prog == nil {
		return nil
	}
	unpos := idx.VINUnpositioned()
	positioned := b
	if unpos != nil && !unpos.IsEmpty() {
		positioned = roaring.AndNot(b, unpos)
	}
	out := prog.matchPositions(idx, positioned)
	if out == nil {
		return nil
	}
	if unpos != nil && !unpos.IsEmpty() {
		out.Or(filterIDs(roaring.And(b, unpos), func() func(uint32) bool {
			return func(id uint32) bool { return l.re.match(idx.VIN(id)) }
		}))
	}
	return out
}
