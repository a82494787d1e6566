package dsl

import (
	"encoding/binary"
	"regexp/syntax"
	"slices"
	"sync"
)

// A byte DFA for the regex checks of candidates. Package regexp runs a backtracker or an NFA on
// every string (about 200 ns for a 17-character VIN that contains the pattern's literal prefix);
// the checks of a dry run are many short ASCII strings, so a matcher compiles the pattern once
// more, on first use, into a table-driven DFA over ASCII bytes: one table lookup per byte. It
// answers the question regexp.MatchString answers (a match anywhere in the string) and hands
// every string with a byte of 0x80 or above back to package regexp, as it does patterns it cannot
// take: (?m) line anchors and word boundaries (whose truth depends on the bytes around them), and
// patterns whose DFA would exceed maxDFAStates states.
//
// The construction is the subset construction over the instructions of regexp/syntax's program,
// with bytes grouped in classes that every instruction treats alike (`X.*9$` has four: X or x, 9,
// newline, any other). A state is the set of instructions waiting for the next byte, plus the end
// anchors ($, \z) still to be checked; the search restarts at every position (the match may
// begin anywhere), so a state also holds the program's start. A state that reaches the match
// instruction is the match sink: the answer is known without reading further.

// maxDFAStates bounds the states of one pattern's DFA; a pattern that needs more stays with
// package regexp. The table is 256 transitions a state (at most 256 KiB).
const maxDFAStates = 256

const (
	dfaDead     int32 = -1 // no match can begin or continue
	dfaMatch    int32 = -2 // a match was found
	dfaFallback int32 = -3 // a byte of 0x80 or above: package regexp decides
)

// byteDFA is an immutable, complete DFA over bytes (safe for concurrent use). A state is the
// offset of its row in next (256 times its number), so that a byte costs one load.
type byteDFA struct {
	next   []int32 // state + byte -> state, dfaDead, dfaMatch or dfaFallback
	accEnd []bool  // by state number: the string matches when it ends in this state
	start  int32   // a state, or dfaDead or dfaMatch when decided before the first byte
}

// match reports whether s has a match, and ok = false when s has a byte the DFA does not take
// (0x80 or above): then the caller asks package regexp.
func (d *byteDFA) match(s string) (matched, ok bool) {
	st := d.start
	for i := 0; i < len(s) && st >= 0; i++ {
		st = d.next[st+int32(s[i])]
	}
	if st < 0 {
		return st == dfaMatch, st != dfaFallback
	}
	return d.accEnd[st>>8], true
}

// lazyDFA builds the DFA of a pattern on first use (nil when it cannot).
type lazyDFA struct {
	pattern string
	once    sync.Once
	d       *byteDFA
}

func (l *lazyDFA) get() *byteDFA {
	if l == nil {
		return nil
	}
	l.once.Do(func() { l.d = buildDFA(l.pattern) })
	return l.d
}

// compileAnchorsOnly compiles an RE2 pattern (Perl syntax), or returns nil when it does not parse or
// has assertions other than start and end of text: the programs the byte DFA and the VIN positions
// run.
func compileAnchorsOnly(pattern string) *syntax.Prog {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	for _, in := range prog.Inst {
		if in.Op == syntax.InstEmptyWidth && syntax.EmptyOp(in.Arg)&^(syntax.EmptyBeginText|syntax.EmptyEndText) != 0 {
			return nil
		}
	}
	return prog
}

// buildDFA returns the DFA of an RE2 pattern (Perl syntax), or nil when the pattern does not
// parse, has assertions other than start and end of text, or needs too many states.
func buildDFA(pattern string) *byteDFA {
	prog := compileAnchorsOnly(pattern)
	if prog == nil {
		return nil
	}
	b := dfaBuilder{prog: prog, ids: map[string]int32{}, seen: make([]uint32, len(prog.Inst))}
	var consumers []int
	for pc := range prog.Inst {
		switch prog.Inst[pc].Op {
		case syntax.InstRune, syntax.InstRune1, syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			consumers = append(consumers, pc)
		}
	}
	// Byte classes: bytes that every consuming instruction matches alike.
	d := &byteDFA{}
	var class [128]uint8
	classOf := map[string]uint8{}
	var reps []byte // a byte of each class
	sig := make([]byte, (len(consumers)+7)/8)
	for c := 0; c < 128; c++ {
		clear(sig)
		for k, pc := range consumers {
			if consumes(&prog.Inst[pc], rune(c)) {
				sig[k/8] |= 1 << (k % 8)
			}
		}
		id, ok := classOf[string(sig)]
		if !ok {
			id = uint8(len(reps))
			classOf[string(sig)] = id
			reps = append(reps, byte(c))
		}
		class[c] = id
	}

	d.start = b.state(b.closure(nil, uint32(prog.Start), true), true)
	for k := 0; k < len(b.sets); k++ { // b.sets grows as new states are found
		set, atBegin := b.sets[k], b.atBegin[k]
		row := make([]int32, len(reps))
		for c, r := range reps {
			var next []uint32
			for _, pc := range set {
				in := &prog.Inst[pc]
				if in.Op != syntax.InstEmptyWidth && consumes(in, rune(r)) {
					next = b.closure(next, in.Out, false)
				}
			}
			next = b.closure(next, uint32(prog.Start), false) // a match may begin at the next byte
			row[c] = b.state(next, false)
		}
		for c := range 256 {
			if c < 128 {
				d.next = append(d.next, row[class[c]])
			} else {
				d.next = append(d.next, dfaFallback)
			}
		}
		d.accEnd = append(d.accEnd, b.matchesAtEnd(set, atBegin))
		if len(b.sets) > maxDFAStates {
			return nil
		}
	}
	return d
}

// consumes reports whether a consuming instruction matches rune r.
func consumes(in *syntax.Inst, r rune) bool {
	switch in.Op {
	case syntax.InstRune1:
		return r == in.Rune[0]
	case syntax.InstRune:
		return in.MatchRune(r)
	case syntax.InstRuneAny:
		return true
	case syntax.InstRuneAnyNotNL:
		return r != '\n'
	}
	return false
}

type dfaBuilder struct {
	prog    *syntax.Prog
	ids     map[string]int32 // state key -> id
	sets    [][]uint32       // by id: the sorted instructions
	atBegin []bool           // by id: the state is at the start of the text
	seen    []uint32         // closure marks: pc -> mark
	mark    uint32
	key     []byte
}

// state returns the id of the state of set (sorted and made unique here), dfaMatch when it holds
// the match instruction, dfaDead when empty.
func (b *dfaBuilder) state(set []uint32, atBegin bool) int32 {
	if len(set) == 0 {
		return dfaDead
	}
	slices.Sort(set)
	set = slices.Compact(set)
	for _, pc := range set {
		if b.prog.Inst[pc].Op == syntax.InstMatch {
			return dfaMatch
		}
	}
	key := b.key[:0]
	if atBegin {
		key = append(key, 1)
	} else {
		key = append(key, 0)
	}
	for _, pc := range set {
		key = binary.AppendUvarint(key, uint64(pc))
	}
	b.key = key
	if id, ok := b.ids[string(key)]; ok {
		return id
	}
	id := int32(len(b.sets)) << 8
	b.ids[string(key)] = id
	b.sets = append(b.sets, set)
	b.atBegin = append(b.atBegin, atBegin)
	return id
}

// closure appends to set the instructions reachable from pc without consuming a byte: the
// consuming ones, the match, and the end-of-text assertions (kept, to be checked at the end).
// atBegin says the position is the start of the text.
func (b *dfaBuilder) closure(set []uint32, pc uint32, atBegin bool) []uint32 {
	b.mark++
	return b.walk(set, pc, atBegin)
}

func (b *dfaBuilder) walk(set []uint32, pc uint32, atBegin bool) []uint32 {
	for {
		if b.seen[pc] == b.mark {
			return set
		}
		b.seen[pc] = b.mark
		in := &b.prog.Inst[pc]
		switch in.Op {
		case syntax.InstFail:
			return set
		case syntax.InstAlt, syntax.InstAltMatch:
			set = b.walk(set, in.Out, atBegin)
			pc = in.Arg
		case syntax.InstNop, syntax.InstCapture:
			pc = in.Out
		case syntax.InstEmptyWidth:
			op := syntax.EmptyOp(in.Arg)
			if op&syntax.EmptyBeginText != 0 && !atBegin {
				return set
			}
			if op&syntax.EmptyEndText != 0 {
				return append(set, pc) // checked at the end of the text
			}
			pc = in.Out
		default: // consuming, or the match
			return append(set, pc)
		}
	}
}

// matchesAtEnd reports whether the text matches when it ends in the state of set: an end-of-text
// assertion of set leads to the match without consuming.
func (b *dfaBuilder) matchesAtEnd(set []uint32, atBegin bool) bool {
	b.mark++
	var stack []uint32
	for _, pc := range set {
		if b.prog.Inst[pc].Op == syntax.InstEmptyWidth {
			stack = append(stack, pc)
		}
	}
	for len(stack) > 0 {
		pc := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if b.seen[pc] == b.mark {
			continue
		}
		b.seen[pc] = b.mark
		in := &b.prog.Inst[pc]
		switch in.Op {
		case syntax.InstMatch:
			return true
		case syntax.InstAlt, syntax.InstAltMatch:
			stack = append(stack, in.Out, in.Arg)
		case syntax.InstNop, syntax.InstCapture:
			stack = append(stack, in.Out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg)&syntax.EmptyBeginText == 0 || atBegin {
				stack = append(stack, in.Out)
			}
		}
	}
	return false
}
