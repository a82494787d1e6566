package dsl

import (
	"strconv"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The participle grammar. These structs stay inside this file: toAST translates them into our own
// tree at the package boundary. The grammar is kept flat (a term's NOTs, its primary and the
// predicate's arguments in one struct, arguments captured as tokens) because participle's cost
// grows with the number of structs and alternatives it tries: validating a filter is a budget.

type pOr struct {
	Terms []*pAnd `parser:"@@ ( 'or':Keyword @@ )*"`
}

type pAnd struct {
	Terms []*pUnary `parser:"@@ ( 'and':Keyword @@ )*"`
}

// pUnary is a term: NOT*, then a parenthesised expression, a constant or a predicate. Exactly one
// of Paren, Const, Pred, Pkg, Attr and Upd is set.
type pUnary struct {
	Nots    []*pNot     `parser:"@@*"`
	Pred    lexer.Token `parser:"( ( @('vin_matches':Keyword | 'has_component':Keyword | 'has_attr':Keyword | 'filter':Keyword | 'seen_within':Keyword)"`
	Arg     lexer.Token `parser:"    @String )"`
	Pkg     lexer.Token `parser:"| ( @'has_package':Keyword"`
	PkgName lexer.Token `parser:"    @String"`
	PkgOp   lexer.Token `parser:"    ( @Op"`
	PkgVer  lexer.Token `parser:"      @String"`
	PkgRe   lexer.Token `parser:"    | @String ) )"`
	Attr    lexer.Token `parser:"| ( @'attr':Keyword"`
	AttrKey lexer.Token `parser:"    @String"`
	AttrOp  lexer.Token `parser:"    ( @Op"`
	AttrVal lexer.Token `parser:"      @(String | Number)"`
	In      []*pValue   `parser:"    | 'in':Keyword '(':Punct @@ ( ',':Punct @@ )* ')':Punct ) )"`
	Upd     lexer.Token `parser:"| ( @'update_status':Keyword"`
	UpdName lexer.Token `parser:"    @String"`
	UpdVer  lexer.Token `parser:"    @String"`
	UpdOp   lexer.Token `parser:"    ( @Op"`
	UpdSt   lexer.Token `parser:"      @String"`
	UpdIn   []*pStatus  `parser:"    | 'in':Keyword '(':Punct @@ ( ',':Punct @@ )* ')':Punct ) )"`
	Const   lexer.Token `parser:"| @('true':Keyword | 'false':Keyword)"`
	Open    lexer.Token `parser:"| @'(':Punct"`
	Paren   *pOr        `parser:"  @@ ')':Punct )"`
}

// pNot and pValue are the repeated parts of a term (participle sets, not appends, a []lexer.Token).
type pNot struct {
	Tok lexer.Token `parser:"@'not':Keyword"`
}

type pValue struct {
	Tok lexer.Token `parser:"@(String | Number)"`
}

type pStatus struct {
	Tok lexer.Token `parser:"@String"`
}

// grammar is built in init: a package-level initializer would run before the symbol table exists,
// because the dependency passes through an interface.
var grammar *participle.Parser[pOr]

func init() {
	grammar = participle.MustBuild[pOr](participle.Lexer(definition{}), participle.UseLookahead(1))
}

func set(t lexer.Token) bool { return t.Type != 0 }

func toPos(p lexer.Position) Pos { return Pos{Offset: p.Offset, Line: p.Line, Column: p.Column} }

func toStr(t lexer.Token, src *source) Str { return Str{Value: t.Value, At: toPos(t.Pos), src: src} }

func toLit(t lexer.Token) Lit {
	at := toPos(t.Pos)
	if t.Type == tString {
		return Lit{Value: Value{Str: t.Value}, At: at}
	}
	f, _ := strconv.ParseFloat(t.Value, 64) // the lexer has checked the syntax and the range
	return Lit{Value: Value{Num: f, IsNum: true}, At: at}
}

func (p *pOr) toAST(src *source) Node {
	if len(p.Terms) == 1 {
		return p.Terms[0].toAST(src)
	}
	n := &Or{Terms: make([]Node, len(p.Terms))}
	for i, t := range p.Terms {
		n.Terms[i] = t.toAST(src)
	}
	n.At = p.Terms[0].pos()
	return n
}

func (p *pAnd) toAST(src *source) Node {
	if len(p.Terms) == 1 {
		return p.Terms[0].toAST(src)
	}
	n := &And{Terms: make([]Node, len(p.Terms))}
	for i, t := range p.Terms {
		n.Terms[i] = t.toAST(src)
	}
	n.At = p.Terms[0].pos()
	return n
}

func (p *pAnd) pos() Pos { return p.Terms[0].pos() }

// pos is where the term starts: its first NOT, or its primary.
func (p *pUnary) pos() Pos {
	switch {
	case len(p.Nots) > 0:
		return toPos(p.Nots[0].Tok.Pos)
	}
	for _, t := range []lexer.Token{p.Open, p.Const, p.Pred, p.Pkg, p.Attr, p.Upd} {
		if set(t) {
			return toPos(t.Pos)
		}
	}
	return Pos{}
}

func (p *pUnary) toAST(src *source) Node {
	n := p.primary(src)
	for i := len(p.Nots) - 1; i >= 0; i-- {
		n = &Not{X: n, At: toPos(p.Nots[i].Tok.Pos)}
	}
	return n
}

func (p *pUnary) primary(src *source) Node {
	switch {
	case p.Paren != nil:
		return p.Paren.toAST(src)
	case set(p.Const):
		return &Const{Value: p.Const.Value == "true", At: toPos(p.Const.Pos)}
	case set(p.Pred):
		at, arg := toPos(p.Pred.Pos), toStr(p.Arg, src)
		switch p.Pred.Value {
		case "vin_matches":
			return &VINMatches{Regex: arg, At: at}
		case "has_component":
			return &HasComponent{Part: arg, At: at}
		case "has_attr":
			return &HasAttr{Key: arg, At: at}
		case "filter":
			return &FilterRef{Name: arg, At: at}
		case "seen_within":
			return &SeenWithin{Duration: arg, At: at}
		}
	case set(p.Upd):
		n := &UpdateStatus{Name: toStr(p.UpdName, src), Version: toStr(p.UpdVer, src), At: toPos(p.Upd.Pos)}
		if set(p.UpdOp) {
			n.Op, n.OpAt, n.Statuses = CmpOp(p.UpdOp.Value), toPos(p.UpdOp.Pos), []Str{toStr(p.UpdSt, src)}
			return n
		}
		n.In = true
		for _, v := range p.UpdIn {
			n.Statuses = append(n.Statuses, toStr(v.Tok, src))
		}
		return n
	case set(p.Pkg):
		at := toPos(p.Pkg.Pos)
		if set(p.PkgOp) {
			return &HasPackageVersion{Name: toStr(p.PkgName, src), Op: CmpOp(p.PkgOp.Value), Version: toStr(p.PkgVer, src), At: at}
		}
		return &HasPackage{Name: toStr(p.PkgName, src), Version: toStr(p.PkgRe, src), At: at}
	case set(p.Attr):
		at, key := toPos(p.Attr.Pos), toStr(p.AttrKey, src)
		if set(p.AttrOp) {
			return &AttrCompare{Key: key, Op: CmpOp(p.AttrOp.Value), Value: toLit(p.AttrVal), At: at}
		}
		n := &AttrIn{Key: key, Values: make([]Lit, len(p.In)), At: at}
		for i, v := range p.In {
			n.Values[i] = toLit(v.Tok)
		}
		return n
	}
	panic("dsl: participle produced an empty term")
}
