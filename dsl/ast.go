package dsl

// Node is a node of a parsed filter. The concrete types are *Or, *And, *Not, *Const and the
// predicates *VINMatches, *HasPackage, *HasPackageVersion, *HasComponent, *AttrCompare, *AttrIn,
// *HasAttr, *FilterRef, *SeenWithin and *UpdateStatus. Positions never take part in what a tree means: Equal ignores them.
type Node interface {
	// Pos is where the node starts in the source (zero for trees built in code).
	Pos() Pos
	node()
}

// Str is a quoted string argument and where it starts (at its opening quote).
type Str struct {
	Value string
	At    Pos
	src   *source // the filter it was parsed from, for error snippets (nil when built in code)
}

// CmpOp is a comparison operator.
type CmpOp string

// The comparison operators.
const (
	OpEq CmpOp = "=="
	OpNe CmpOp = "!="
	OpLt CmpOp = "<"
	OpLe CmpOp = "<="
	OpGt CmpOp = ">"
	OpGe CmpOp = ">="
)

// cmpOpList is every comparison operator (the lexer's operator tokens), and cmpOps names them.
var (
	cmpOpList = []CmpOp{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe}
	cmpOps    = joinOps(cmpOpList, ", ")
)

// Lit is an attribute value written in a filter: a string or a number.
type Lit struct {
	Value Value
	At    Pos
}

// Or is true when any of its Terms (two or more) is.
type Or struct {
	Terms []Node
	At    Pos
}

// And is true when all its Terms (two or more) are.
type And struct {
	Terms []Node
	At    Pos
}

// Not negates X.
type Not struct {
	X  Node
	At Pos
}

// Const is TRUE or FALSE.
type Const struct {
	Value bool
	At    Pos
}

// VINMatches is `vin_matches R`: the regex finds a match anywhere in the VIN.
type VINMatches struct {
	Regex Str
	At    Pos
}

// HasPackage is `has_package N V`: one installed package has a name matching the regex Name and a
// version matching the regex Version.
type HasPackage struct {
	Name, Version Str
	At            Pos
}

// HasPackageVersion is `has_package "n" OP "v"`: an installed package named exactly Name
// (case-insensitive) has a version that compares so with Version by SemVer precedence.
type HasPackageVersion struct {
	Name    Str
	Op      CmpOp
	Version Str
	At      Pos
}

// HasComponent is `has_component R`: some installed part number matches the regex.
type HasComponent struct {
	Part Str
	At   Pos
}

// AttrCompare is `attr "k" OP v`.
type AttrCompare struct {
	Key   Str
	Op    CmpOp
	Value Lit
	At    Pos
}

// AttrIn is `attr "k" IN (v, …)`.
type AttrIn struct {
	Key    Str
	Values []Lit
	At     Pos
}

// HasAttr is `has_attr "k"`.
type HasAttr struct {
	Key Str
	At  Pos
}

// FilterRef is `filter "name"`, a reference to a saved filter.
type FilterRef struct {
	Name Str
	At   Pos
}

func (n *Or) Pos() Pos                { return n.At }
func (n *And) Pos() Pos               { return n.At }
func (n *Not) Pos() Pos               { return n.At }
func (n *Const) Pos() Pos             { return n.At }
func (n *VINMatches) Pos() Pos        { return n.At }
func (n *HasPackage) Pos() Pos        { return n.At }
func (n *HasPackageVersion) Pos() Pos { return n.At }
func (n *HasComponent) Pos() Pos      { return n.At }
func (n *AttrCompare) Pos() Pos       { return n.At }
func (n *AttrIn) Pos() Pos            { return n.At }
func (n *HasAttr) Pos() Pos           { return n.At }
func (n *FilterRef) Pos() Pos         { return n.At }

func (*Or) node()                {}
func (*And) node()               {}
func (*Not) node()               {}
func (*Const) node()             {}
func (*VINMatches) node()        {}
func (*HasPackage) node()        {}
func (*HasPackageVersion) node() {}
func (*HasComponent) node()      {}
func (*AttrCompare) node()       {}
func (*AttrIn) node()            {}
func (*HasAttr) node()           {}
func (*FilterRef) node()         {}

// Equal reports whether two trees mean the same by shape and values, ignoring positions.
func Equal(a, b Node) bool {
	switch a := a.(type) {
	case *Or:
		b, ok := b.(*Or)
		return ok && equalTerms(a.Terms, b.Terms)
	case *And:
		b, ok := b.(*And)
		return ok && equalTerms(a.Terms, b.Terms)
	case *Not:
		b, ok := b.(*Not)
		return ok && Equal(a.X, b.X)
	case *Const:
		b, ok := b.(*Const)
		return ok && a.Value == b.Value
	case *VINMatches:
		b, ok := b.(*VINMatches)
		return ok && a.Regex.Value == b.Regex.Value
	case *HasPackage:
		b, ok := b.(*HasPackage)
		return ok && a.Name.Value == b.Name.Value && a.Version.Value == b.Version.Value
	case *HasPackageVersion:
		b, ok := b.(*HasPackageVersion)
		return ok && a.Name.Value == b.Name.Value && a.Op == b.Op && a.Version.Value == b.Version.Value
	case *HasComponent:
		b, ok := b.(*HasComponent)
		return ok && a.Part.Value == b.Part.Value
	case *AttrCompare:
		b, ok := b.(*AttrCompare)
		return ok && a.Key.Value == b.Key.Value && a.Op == b.Op && a.Value.Value == b.Value.Value
	case *AttrIn:
		b, ok := b.(*AttrIn)
		if !ok || a.Key.Value != b.Key.Value || len(a.Values) != len(b.Values) {
			return false
		}
		for i := range a.Values {
			if a.Values[i].Value != b.Values[i].Value {
				return false
			}
		}
		return true
	case *HasAttr:
		b, ok := b.(*HasAttr)
		return ok && a.Key.Value == b.Key.Value
	case *FilterRef:
		b, ok := b.(*FilterRef)
		return ok && a.Name.Value == b.Name.Value
	}
	return equalFleetState(a, b)
}

func equalTerms(a, b []Node) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
