package dsl

import (
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/expr-lang/expr/vm"
)

// The index plan answers a filter over a whole fleet with bitmaps. Every leaf but vin_matches is
// answered exactly by the Index (it enumerates distinct part numbers, packages and attribute
// values, so any regex or comparison can be decided per distinct value). vin_matches is answered by
// VINPrefix when its regex is a literal prefix; otherwise its candidates are the VINs its gram
// query leaves (an Index with VIN grams, see regexquery.go) or its literal prefix selects, and the
// regex runs on those candidates only, after the other branches of its AND have narrowed them.
//
// select(n, cand) returns exactly the ids in cand (nil: every id) for which n is true, so AND
// narrows the candidates term by term, OR only checks a regex on the ids its candidates leave,
// and NOT subtracts.

type planOp int

const (
	planConst planOp = iota
	planLeaf         // answered by the index
	planVIN          // VINPrefix or VIN grams, then the regex on the candidates when not exact
	planAnd
	planOr
	planNot
)

type planNode struct {
	op       planOp
	value    bool // planConst
	leaf     *leaf
	residual *vm.Program // planVIN when the prefix is not the whole regex, for an Index without VIN grams
	kids     []*planNode
}

// cost orders the terms of AND and OR: index answers first, regex checks last.
func (n *planNode) cost() int {
	switch n.op {
	case planConst, planLeaf:
		return 1
	case planVIN:
		if n.residual == nil {
			return 1
		}
		if n.leaf.vinQuery.All() && n.leaf.prefix == "" {
			return 1000 // a check of every candidate
		}
		return 10
	}
	c := 1
	for _, k := range n.kids {
		c += k.cost()
	}
	return c
}

func (p *Program) buildPlan(n Node) (*planNode, error) {
	switch n := n.(type) {
	case *Const:
		return &planNode{op: planConst, value: n.Value}, nil
	case *refNode:
		return p.buildPlan(n.body)
	case *Not:
		k, err := p.buildPlan(n.X)
		return &planNode{op: planNot, kids: []*planNode{k}}, err
	case *And:
		return p.buildJunction(planAnd, n.Terms)
	case *Or:
		return p.buildJunction(planOr, n.Terms)
	case *VINMatches:
		l := p.leaves[p.leafIndex(n)]
		pn := &planNode{op: planVIN, leaf: l}
		if !l.prefixExact {
			prog, err := p.exprProgram(n)
			if err != nil {
				return nil, err
			}
			pn.residual = prog
		}
		return pn, nil
	}
	return &planNode{op: planLeaf, leaf: p.leaves[p.leafIndex(n)]}, nil
}

// buildJunction plans AND/OR terms, cheapest first.
func (p *Program) buildJunction(op planOp, terms []Node) (*planNode, error) {
	pn := &planNode{op: op}
	for _, t := range terms {
		k, err := p.buildPlan(t)
		if err != nil {
			return nil, err
		}
		pn.kids = append(pn.kids, k)
	}
	sort.SliceStable(pn.kids, func(i, j int) bool { return pn.kids[i].cost() < pn.kids[j].cost() })
	return pn, nil
}

// Select returns the ids of the vehicles for which the filter is true: exactly those for which
// Match is. The bitmap is the caller's.
func (p *Program) Select(idx Index) *roaring.Bitmap {
	return p.selectNode(p.plan, idx, nil)
}

// Count is the number of vehicles Select returns.
func (p *Program) Count(idx Index) uint64 {
	return p.Select(idx).GetCardinality()
}

// within returns the ids of the read-only bitmap b that are in cand (nil: all), as a new bitmap.
func within(b, cand *roaring.Bitmap) *roaring.Bitmap {
	if cand == nil {
		return b.Clone()
	}
	return roaring.And(b, cand)
}

func candidates(idx Index, cand *roaring.Bitmap) *roaring.Bitmap {
	if cand == nil {
		return idx.Universe().Clone()
	}
	return cand.Clone()
}

func (p *Program) selectNode(n *planNode, idx Index, cand *roaring.Bitmap) *roaring.Bitmap {
	switch n.op {
	case planConst:
		if n.value {
			return candidates(idx, cand)
		}
		return roaring.New()
	case planLeaf:
		return within(p.leafBitmap(n.leaf, idx), cand)
	case planVIN:
		return p.selectVIN(n, idx, cand)
	case planNot:
		out := candidates(idx, cand)
		out.AndNot(p.selectNode(n.kids[0], idx, cand))
		return out
	case planAnd:
		cur := cand
		for _, k := range n.kids {
			cur = p.selectNode(k, idx, cur)
			if cur.IsEmpty() {
				break
			}
		}
		return cur
	case planOr:
		out := roaring.New()
		for _, k := range n.kids {
			if k.cost() > 1 && !out.IsEmpty() {
				// a term that checks its candidates one by one only checks those no term took
				rest := candidates(idx, cand)
				rest.AndNot(out)
				out.Or(p.selectNode(k, idx, rest))
				continue
			}
			out.Or(p.selectNode(k, idx, cand))
		}
		return out
	}
	panic("dsl: unknown plan node")
}

func (p *Program) leafBitmap(l *leaf, idx Index) *roaring.Bitmap {
	switch l.node.(type) {
	case *HasPackage:
		return idx.Packages(l.matchPackage)
	case *HasPackageVersion:
		return idx.PackageNamed(l.name, l.matchVersion)
	case *HasComponent:
		return idx.Components(l.matchComponent)
	case *AttrCompare, *AttrIn, *HasAttr:
		return idx.Attr(l.key, l.matchAttr)
	case *SeenWithin, *UpdateStatus:
		return p.fleetStateBitmap(l, idx)
	}
	panic("dsl: leaf has no index")
}
