package dsl

import (
	"strconv"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The participle grammar. These structs stay inside this file: toAST translates them into our own
// tree at the package boundary.

type pFilter struct {
	Expr *pOr `parser:"@@"`
}

type pOr struct {
	Pos   lexer.Position
	Terms []*pAnd `parser:"@@ ( 'or':Keyword @@ )*"`
}

type pAnd struct {
	Pos   lexer.Position
	Terms []*pUnary `parser:"@@ ( 'and':Keyword @@ )*"`
}

type pUnary struct {
	Pos     lexer.Position
	Not     *pUnary   `parser:"  'not':Keyword @@"`
	Primary *pPrimary `parser:"| @@"`
}

type pPrimary struct {
	Pos       lexer.Position
	Paren     *pOr      `parser:"  '(':Punct @@ ')':Punct"`
	True      bool      `parser:"| @'true':Keyword"`
	False     bool      `parser:"| @'false':Keyword"`
	VIN       *pStr     `parser:"| 'vin_matches':Keyword @@"`
	Package   *pPackage `parser:"| 'has_package':Keyword @@"`
	Component *pStr     `parser:"| 'has_component':Keyword @@"`
	Attr      *pAttr    `parser:"| 'attr':Keyword @@"`
	HasAttr   *pStr     `parser:"| 'has_attr':Keyword @@"`
	FilterRef *pStr     `parser:"| 'filter':Keyword @@"`
}

type pPackage struct {
	Name    *pStr  `parser:"@@"`
	Op      string `parser:"( @Op"`
	Version *pStr  `parser:"  @@"`
	Regex   *pStr  `parser:"| @@ )"`
}

type pAttr struct {
	Key   *pStr     `parser:"@@"`
	Op    string    `parser:"( @Op"`
	Value *pValue   `parser:"  @@"`
	In    []*pValue `parser:"| 'in':Keyword '(':Punct @@ ( ',':Punct @@ )* ')':Punct )"`
}

type pStr struct {
	Pos   lexer.Position
	Value string `parser:"@String"`
}

type pValue struct {
	Pos    lexer.Position
	Str    *string `parser:"  @String"`
	Number *string `parser:"| @Number"`
}

// grammar is built in init: a package-level initializer would run before the symbol table exists,
// because the dependency passes through an interface.
var grammar *participle.Parser[pFilter]

func init() {
	grammar = participle.MustBuild[pFilter](participle.Lexer(definition{}), participle.UseLookahead(1))
}

func (p pStr) toStr(src *source) Str { return Str{Value: p.Value, At: toPos(p.Pos), src: src} }

func toPos(p lexer.Position) Pos { return Pos{Offset: p.Offset, Line: p.Line, Column: p.Column} }

func (p *pOr) toAST(src *source) Node {
	if len(p.Terms) == 1 {
		return p.Terms[0].toAST(src)
	}
	n := &Or{At: toPos(p.Pos), Terms: make([]Node, len(p.Terms))}
	for i, t := range p.Terms {
		n.Terms[i] = t.toAST(src)
	}
	return n
}

func (p *pAnd) toAST(src *source) Node {
	if len(p.Terms) == 1 {
		return p.Terms[0].toAST(src)
	}
	n := &And{At: toPos(p.Pos), Terms: make([]Node, len(p.Terms))}
	for i, t := range p.Terms {
		n.Terms[i] = t.toAST(src)
	}
	return n
}

func (p *pUnary) toAST(src *source) Node {
	if p.Not != nil {
		return &Not{X: p.Not.toAST(src), At: toPos(p.Pos)}
	}
	return p.Primary.toAST(src)
}

func (p *pPrimary) toAST(src *source) Node {
	at := toPos(p.Pos)
	switch {
	case p.Paren != nil:
		return p.Paren.toAST(src)
	case p.True:
		return &Const{Value: true, At: at}
	case p.False:
		return &Const{Value: false, At: at}
	case p.VIN != nil:
		return &VINMatches{Regex: p.VIN.toStr(src), At: at}
	case p.Package != nil:
		if p.Package.Op != "" {
			return &HasPackageVersion{Name: p.Package.Name.toStr(src), Op: CmpOp(p.Package.Op), Version: p.Package.Version.toStr(src), At: at}
		}
		return &HasPackage{Name: p.Package.Name.toStr(src), Version: p.Package.Regex.toStr(src), At: at}
	case p.Component != nil:
		return &HasComponent{Part: p.Component.toStr(src), At: at}
	case p.Attr != nil:
		if p.Attr.Op != "" {
			return &AttrCompare{Key: p.Attr.Key.toStr(src), Op: CmpOp(p.Attr.Op), Value: p.Attr.Value.toLit(), At: at}
		}
		n := &AttrIn{Key: p.Attr.Key.toStr(src), Values: make([]Lit, len(p.Attr.In)), At: at}
		for i, v := range p.Attr.In {
			n.Values[i] = v.toLit()
		}
		return n
	case p.HasAttr != nil:
		return &HasAttr{Key: p.HasAttr.toStr(src), At: at}
	case p.FilterRef != nil:
		return &FilterRef{Name: p.FilterRef.toStr(src), At: at}
	}
	panic("dsl: participle produced an empty primary")
}

func (p *pValue) toLit() Lit {
	at := toPos(p.Pos)
	if p.Str != nil {
		return Lit{Value: Value{Str: *p.Str}, At: at}
	}
	f, _ := strconv.ParseFloat(*p.Number, 64) // the lexer has checked the syntax and the range
	return Lit{Value: Value{Num: f, IsNum: true}, At: at}
}
