package dsl

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// Program is a checked filter with its references inlined and compiled to an expr program. It is
// immutable and safe for concurrent use.
type Program struct {
	src    string
	tree   Node // FilterRef nodes replaced by *refNode
	refs   []string
	leaves []*leaf
	leafOf map[Node]int
	prog   *vm.Program
	plan   *planNode
	vms    sync.Pool
}

// refNode is a reference with the referenced filter inlined.
type refNode struct {
	name string
	body Node
	at   Pos
}

func (n *refNode) Pos() Pos { return n.at }
func (*refNode) node()      {}

// Compile parses and checks src, inlines the filters it references (through refs, which may be
// nil), and compiles it to an expr program and an index plan. The error is an ErrorList.
func Compile(src string, refs FilterLookup) (*Program, error) {
	n, c, errs := parseAndCheck(newSource(src), refs)
	if len(errs) > 0 {
		return nil, errs
	}
	p := &Program{src: src, refs: c.refNames()}
	p.tree = inline(n, c.trees)
	if err := p.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

// MustCompile is Compile for filters known to be valid; it panics on an error.
func MustCompile(src string, refs FilterLookup) *Program {
	p, err := Compile(src, refs)
	if err != nil {
		panic(err)
	}
	return p
}

func inline(n Node, trees map[string]Node) Node {
	switch n := n.(type) {
	case *Or:
		out := &Or{At: n.At, Terms: make([]Node, len(n.Terms))}
		for i, t := range n.Terms {
			out.Terms[i] = inline(t, trees)
		}
		return out
	case *And:
		out := &And{At: n.At, Terms: make([]Node, len(n.Terms))}
		for i, t := range n.Terms {
			out.Terms[i] = inline(t, trees)
		}
		return out
	case *Not:
		return &Not{At: n.At, X: inline(n.X, trees)}
	case *FilterRef:
		return &refNode{name: n.Name.Value, body: inline(trees[strings.ToLower(n.Name.Value)], trees), at: n.At}
	}
	return n
}

// Source is the filter as it was written.
func (p *Program) Source() string { return p.src }

// Refs lists the filters the program references, directly or through other filters, lower-cased
// and sorted.
func (p *Program) Refs() []string { return append([]string(nil), p.refs...) }

// String is the canonical form of the filter.
func (p *Program) String() string { return Format(p.tree) }

// Expr is the source of the expr program Match runs (for explain output and debugging).
func (p *Program) Expr() string { return p.prog.Source().String() }

// Match evaluates the compiled expr program for one vehicle.
func (p *Program) Match(v *Vehicle) bool { return p.run(p.prog, v) }

func (p *Program) run(prog *vm.Program, v *Vehicle) bool {
	m := p.vms.Get().(*vm.VM)
	out, err := m.Run(prog, v)
	p.vms.Put(m)
	if err != nil { // the helpers never fail and the program is typed bool
		panic(fmt.Sprintf("dsl: expr program failed: %v", err))
	}
	return out.(bool)
}

func (p *Program) compile() error {
	p.vms.New = func() any { return new(vm.VM) }
	var err error
	p.prog, err = p.exprProgram(p.tree)
	if err != nil {
		return err
	}
	p.plan, err = p.buildPlan(p.tree)
	return err
}

// exprProgram compiles a subtree into an expr program over the vehicle ($env), with one typed
// helper per predicate kind; the helper gets the index of its compiled leaf.
func (p *Program) exprProgram(n Node) (*vm.Program, error) {
	var b strings.Builder
	p.exprSource(&b, n)
	return expr.Compile(b.String(), p.exprOptions()...)
}

var helperNames = map[string]bool{
	"vin_matches": true, "has_package": true, "has_package_version": true, "has_component": true,
	"attr_compare": true, "attr_in": true, "has_attr": true, "seen_within": true, "update_status": true,
}

func (p *Program) exprOptions() []expr.Option {
	// The source's length limit bounds the program; expr's own node budget would reject large filters.
	opts := []expr.Option{expr.Env(&Vehicle{}), expr.AsBool(), expr.DisableAllBuiltins(), expr.MaxNodes(0)}
	for name := range helperNames {
		opts = append(opts, expr.Function(name, func(params ...any) (any, error) {
			return p.leaves[params[1].(int)].match(params[0].(*Vehicle)), nil
		}, new(func(*Vehicle, int) bool)))
	}
	return opts
}

func (p *Program) exprSource(b *strings.Builder, n Node) {
	switch n := n.(type) {
	case *Or:
		b.WriteByte('(')
		for i, t := range n.Terms {
			if i > 0 {
				b.WriteString(" || ")
			}
			p.exprSource(b, t)
		}
		b.WriteByte(')')
	case *And:
		b.WriteByte('(')
		for i, t := range n.Terms {
			if i > 0 {
				b.WriteString(" && ")
			}
			p.exprSource(b, t)
		}
		b.WriteByte(')')
	case *Not:
		b.WriteString("!")
		p.exprSource(b, n.X)
	case *Const:
		b.WriteString(strconv.FormatBool(n.Value))
	case *refNode:
		p.exprSource(b, n.body)
	default:
		i := p.leafIndex(n)
		fmt.Fprintf(b, "%s($env, %d)", helperName(n), i)
	}
}

// leafIndex compiles a predicate once per node (a filter referenced twice shares its nodes). Only
// compile adds leaves; afterwards the table is read-only.
func (p *Program) leafIndex(n Node) int {
	if i, ok := p.leafOf[n]; ok {
		return i
	}
	if p.leafOf == nil {
		p.leafOf = map[Node]int{}
	}
	p.leaves = append(p.leaves, newLeaf(n))
	p.leafOf[n] = len(p.leaves) - 1
	return len(p.leaves) - 1
}

func helperName(n Node) string {
	switch n.(type) {
	case *VINMatches:
		return "vin_matches"
	case *HasPackage:
		return "has_package"
	case *HasPackageVersion:
		return "has_package_version"
	case *HasComponent:
		return "has_component"
	case *AttrCompare:
		return "attr_compare"
	case *AttrIn:
		return "attr_in"
	case *HasAttr:
		return "has_attr"
	case *SeenWithin:
		return "seen_within"
	case *UpdateStatus:
		return "update_status"
	}
	panic(fmt.Sprintf("dsl: no helper for %T", n))
}

// Explanation is a filter's tree with each node's value for one vehicle.
type Explanation struct {
	Expr     string         `json:"expression"`
	Value    bool           `json:"value"`
	Children []*Explanation `json:"children,omitempty"`
}

// Explain evaluates every node (no short-circuit, so that an author sees each leaf) for v.
func (p *Program) Explain(v *Vehicle) *Explanation { return p.explain(p.tree, v) }

func (p *Program) explain(n Node, v *Vehicle) *Explanation {
	e := &Explanation{Expr: Format(n)}
	switch n := n.(type) {
	case *Or:
		for _, t := range n.Terms {
			c := p.explain(t, v)
			e.Value = e.Value || c.Value
			e.Children = append(e.Children, c)
		}
	case *And:
		e.Value = true
		for _, t := range n.Terms {
			c := p.explain(t, v)
			e.Value = e.Value && c.Value
			e.Children = append(e.Children, c)
		}
	case *Not:
		c := p.explain(n.X, v)
		e.Value = !c.Value
		e.Children = []*Explanation{c}
	case *Const:
		e.Value = n.Value
	case *refNode:
		c := p.explain(n.body, v)
		e.Value = c.Value
		e.Children = []*Explanation{c}
	default:
		e.Value = p.leaves[p.leafOf[n]].match(v)
	}
	return e
}
