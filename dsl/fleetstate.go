package dsl

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// The fleet-state predicates: seen_within and update_status read what the server knows of a vehicle
// now (DSL.md "Fleet-state predicates"). Their values come with the vehicle (Vehicle.LastSeen,
// Updates, Now) for the reference evaluator and the expr program, and from a FleetStateIndex for the
// index plan.

// SeenWithin is `seen_within "7d"`: the vehicle called the server within Duration of the moment the
// filter is evaluated.
type SeenWithin struct {
	Duration Str
	At       Pos
}

// UpdateStatus is `update_status "n" "v" == "failed"` (Op == or !=) or `update_status "n" "v" IN
// ("failed", …)` (In): the status of the vehicle's most recent update of package n (case-insensitive)
// at version v.
type UpdateStatus struct {
	Name, Version Str
	Op            CmpOp // OpEq or OpNe; "" with In
	OpAt          Pos   // where Op is written
	In            bool
	Statuses      []Str
	At            Pos
}

func (n *SeenWithin) Pos() Pos   { return n.At }
func (n *UpdateStatus) Pos() Pos { return n.At }
func (*SeenWithin) node()        {}
func (*UpdateStatus) node()      {}

// FleetStateIndex is an Index that also answers the fleet-state predicates from bitmaps. An Index
// without it has them checked vehicle by vehicle.
type FleetStateIndex interface {
	Index
	// Now is the moment seen_within is evaluated at, the same for every vehicle of one Select.
	Now() time.Time
	// SeenSince is the ids of the vehicles that called the server at or after t.
	SeenSince(t time.Time) *roaring.Bitmap
	// UpdateStatus is the ids whose most recent update of package name (case-insensitive) at version
	// has status.
	UpdateStatus(name, version, status string) *roaring.Bitmap
}

// MaxSeenWithin is the longest duration seen_within takes.
const MaxSeenWithin = 100 * 365 * 24 * time.Hour

// ParseSeenDuration parses a seen_within duration: a whole number ≥ 1 and a unit s, m, h or d.
func ParseSeenDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("invalid duration %s, expected a whole number and a unit s, m, h or d, such as \"90s\", \"15m\", \"24h\" or \"7d\"", quoteFor(shorten(s)))
	if len(s) < 2 {
		return 0, bad
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[s[len(s)-1]]
	num := s[:len(s)-1]
	if unit == 0 || num[0] < '1' || num[0] > '9' {
		return 0, bad
	}
	for i := 0; i < len(num); i++ {
		if !isDigit(num[i]) {
			return 0, bad
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > int64(MaxSeenWithin/unit) {
		return 0, fmt.Errorf("duration %s is too long, expected at most %dd", quoteFor(shorten(s)), int(MaxSeenWithin/(24*time.Hour)))
	}
	return time.Duration(n) * unit, nil
}

func equalFleetState(a, b Node) bool {
	switch a := a.(type) {
	case *SeenWithin:
		b, ok := b.(*SeenWithin)
		return ok && a.Duration.Value == b.Duration.Value
	case *UpdateStatus:
		b, ok := b.(*UpdateStatus)
		if !ok || a.Name.Value != b.Name.Value || a.Version.Value != b.Version.Value || a.Op != b.Op || a.In != b.In || len(a.Statuses) != len(b.Statuses) {
			return false
		}
		for i := range a.Statuses {
			if a.Statuses[i].Value != b.Statuses[i].Value {
				return false
			}
		}
		return true
	}
	return false
}

func formatFleetState(b *strings.Builder, n Node) {
	switch n := n.(type) {
	case *SeenWithin:
		b.WriteString("seen_within ")
		formatStr(b, n.Duration.Value)
	case *UpdateStatus:
		b.WriteString("update_status ")
		formatStr(b, n.Name.Value)
		b.WriteByte(' ')
		formatStr(b, n.Version.Value)
		if !n.In {
			b.WriteString(" " + string(n.Op) + " ")
			formatStr(b, n.Statuses[0].Value)
			return
		}
		b.WriteString(" IN (")
		for i, s := range n.Statuses {
			if i > 0 {
				b.WriteString(", ")
			}
			formatStr(b, s.Value)
		}
		b.WriteByte(')')
	}
}

// checkFleetState reports malformed durations, empty names, invalid versions, operators other than
// == and !=, and unknown statuses (with the nearest one).
func (c *checker) checkFleetState(n Node) {
	switch n := n.(type) {
	case *SeenWithin:
		if _, err := ParseSeenDuration(n.Duration.Value); err != nil {
			c.errorAt(n.Duration, -1, "%v", err)
		}
	case *UpdateStatus:
		if n.Name.Value == "" {
			c.errorAt(n.Name, -1, "empty package name, expected the exact name of a package")
		}
		if _, err := ParseVersion(n.Version.Value); err != nil {
			c.errorAt(n.Version, -1, "%v", err)
		}
		if !n.In && !containsOp(statusOps, n.Op) {
			msg := fmt.Sprintf("operator %s does not compare statuses, expected %s (or IN)", n.Op, joinOps(statusOps, " or "))
			if src := n.Name.src; src != nil {
				e := src.errorAt(n.OpAt.Offset, string(n.Op), "%s", msg)
				e.Length = len(n.Op)
				c.add(e)
			} else {
				c.nodeError(n, "%s", msg)
			}
		}
		if n.In && len(n.Statuses) == 0 {
			c.nodeError(n, "empty IN list, expected at least one status")
		}
		for _, s := range n.Statuses {
			if validStatus(s.Value) {
				continue
			}
			c.errorAt(s, -1, "unknown status %s, expected %s", quoteFor(s.Value), statusList)
			if sug := suggestName(s.Value, Statuses); sug != "" {
				e := c.errs[len(c.errs)-1]
				e.Message += fmt.Sprintf("; did you mean %s?", quoteFor(sug))
				e.Length, e.Suggestion = len(e.Token), quoteFor(sug)
			}
		}
	default:
		panic(fmt.Sprintf("dsl: unknown node %T", n))
	}
}

const statusList = "pending, inFlight, finished, failed or canceled"

// statusOps are the comparison operators update_status takes.
var statusOps = []CmpOp{OpEq, OpNe}

func containsOp(ops []CmpOp, op CmpOp) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

func validStatus(s string) bool {
	for _, st := range Statuses {
		if s == st {
			return true
		}
	}
	return false
}

// evalFleetState is the reference evaluator's reading of DSL.md's table for the fleet-state
// predicates.
func evalFleetState(n Node, v *Vehicle) bool {
	switch n := n.(type) {
	case *SeenWithin:
		d, _ := ParseSeenDuration(n.Duration.Value)
		now := v.Now
		if now.IsZero() {
			now = time.Now()
		}
		return !v.LastSeen.IsZero() && now.Sub(v.LastSeen) <= d
	case *UpdateStatus:
		status, found := "", false
		for _, u := range v.Updates {
			if strings.EqualFold(u.Name, n.Name.Value) && u.Version == n.Version.Value {
				status, found = u.Status, true
			}
		}
		if !n.In && n.Op == OpNe {
			return !found || status != n.Statuses[0].Value
		}
		for _, s := range n.Statuses {
			if found && status == s.Value {
				return true
			}
		}
		return false
	}
	panic("dsl: cannot evaluate an unchecked tree")
}

// newFleetStateLeaf compiles a fleet-state predicate.
func newFleetStateLeaf(l *leaf, n Node) {
	switch n := n.(type) {
	case *SeenWithin:
		l.dur, _ = ParseSeenDuration(n.Duration.Value)
	case *UpdateStatus:
		l.name, l.ver2, l.op = n.Name.Value, n.Version.Value, n.Op
		if n.In {
			l.op = OpEq
		}
		for _, s := range n.Statuses {
			l.statuses = append(l.statuses, s.Value)
		}
	}
}

// matchFleetState evaluates a compiled fleet-state leaf on one vehicle.
func (l *leaf) matchFleetState(v *Vehicle) bool {
	switch l.node.(type) {
	case *SeenWithin:
		if v.LastSeen.IsZero() {
			return false
		}
		now := v.Now
		if now.IsZero() {
			now = time.Now()
		}
		return !v.LastSeen.Before(now.Add(-l.dur))
	case *UpdateStatus:
		for i := len(v.Updates) - 1; i >= 0; i-- {
			if u := v.Updates[i]; u.Version == l.ver2 && strings.EqualFold(u.Name, l.name) {
				return l.matchStatus(u.Status)
			}
		}
		return l.op == OpNe
	}
	return false
}

// matchStatus is the leaf's answer for a vehicle whose most recent update has status.
func (l *leaf) matchStatus(status string) bool {
	in := false
	for _, s := range l.statuses {
		in = in || s == status
	}
	return in == (l.op == OpEq)
}

// fleetStateBitmap answers a fleet-state leaf from the index's fleet state, or vehicle by vehicle
// when the index has none.
func (p *Program) fleetStateBitmap(l *leaf, idx Index) *roaring.Bitmap {
	fi, ok := idx.(FleetStateIndex)
	if !ok {
		out := roaring.New()
		it := idx.Universe().Iterator()
		for it.HasNext() {
			id := it.Next()
			if v := idx.Vehicle(id); v != nil && l.matchFleetState(v) {
				out.Add(id)
			}
		}
		return out
	}
	switch l.node.(type) {
	case *SeenWithin:
		return fi.SeenSince(fi.Now().Add(-l.dur))
	case *UpdateStatus:
		var hit []*roaring.Bitmap
		for _, s := range l.statuses {
			if bm := fi.UpdateStatus(l.name, l.ver2, s); bm != nil {
				hit = append(hit, bm)
			}
		}
		var with *roaring.Bitmap
		switch len(hit) {
		case 0:
			with = roaring.New()
		case 1:
			with = hit[0]
		default:
			with = roaring.FastOr(hit...)
		}
		if l.op == OpEq {
			return with
		}
		return roaring.AndNot(fi.Universe(), with)
	}
	panic("dsl: not a fleet-state leaf")
}

// fleetStateEnd is the offset after the last token of a fleet-state predicate.
func (l *linter) fleetStateEnd(n Node) int {
	switch n := n.(type) {
	case *SeenWithin:
		return l.strEnd(n.Duration.At.Offset)
	case *UpdateStatus:
		return l.strEnd(n.Statuses[len(n.Statuses)-1].At.Offset)
	}
	return n.Pos().Offset
}

// fleetStateLeaf warns about an update_status package that no vehicle has installed or had an
// update of.
func (l *linter) fleetStateLeaf(n Node) {
	if u, ok := n.(*UpdateStatus); ok {
		if _, found := l.exactName(TermPackage, u.Name); !found {
			l.unknownName(TermPackage, u.Name, "no vehicle has a package named %s installed or an update of it")
		}
	}
}
