package dsl

// fleetStateEnd is the offset after the last token of a fleet-state predicate.
func (l *linter) fleetStateEnd(n Node) int { return n.Pos().Offset }

// fleetStateLeaf warns about the names of a fleet-state predicate that nothing in the fleet has.
func (l *linter) fleetStateLeaf(Node) {}

// fleetStateItems offers what may come in the states of the fleet-state predicates.
func (c *completer) fleetStateItems(ctx context, add func(label, insert string, kind CompletionKind, detail string, count int), names func(TermKind, string, CompletionKind)) {
}

// fleetStateStringState reports a state of a fleet-state predicate in which a string may come.
func fleetStateStringState(st state) bool { return false }
