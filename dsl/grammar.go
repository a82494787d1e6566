package dsl

import (
	"reflect"
	"strconv"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The grammar of the filter language, the only one: participle parses with it, and the lexer's
// keywords, the positions and expected tokens of syntax errors, their recovery, the nesting limit
// and completion all come from the automaton automaton.go derives from it (see newLanguage).
//
// These structs stay inside this file: toAST translates them into our own tree at the package
// boundary. The grammar is kept flat (a term's primary and the predicate's arguments in one struct,
// arguments captured as tokens) because participle's cost grows with the number of structs it
// builds: validating a filter is a budget. The order of the alternatives is the order in which
// messages and completion name what may come (predicates first, as DSL.md lists them).

type pOr struct {
	Terms []*pAnd `parser:"@@ ( 'or':Keyword @@ )*"`
}

type pAnd struct {
	Terms []*pUnary `parser:"@@ ( 'and':Keyword @@ )*"`
}

// pUnary is a term: a predicate, NOT and a term, a constant or a parenthesised expression. Exactly
// one alternative's tokens are set. It is the unit of error recovery (a broken term becomes TRUE),
// and each term nested in a term is one level of nesting (MaxDepth).
type pUnary struct {
	Pos        lexer.Position // where the term starts (participle sets it)
	VIN        bool           `parser:"  ( @'vin_matches':Keyword"`
	VINArg     lexer.Token    `parser:"    @String )"`
	Pkg        bool           `parser:"| ( @'has_package':Keyword"`
	PkgName    lexer.Token    `parser:"    @String"`
	PkgRe      lexer.Token    `parser:"    ( @String"`
	PkgOp      lexer.Token    `parser:"    | @Op"`
	PkgVer     lexer.Token    `parser:"      @String ) )"`
	Comp       bool           `parser:"| ( @'has_component':Keyword"`
	CompArg    lexer.Token    `parser:"    @String )"`
	Attr       bool           `parser:"| ( @'attr':Keyword"`
	AttrKey    lexer.Token    `parser:"    @String"`
	AttrOp     lexer.Token    `parser:"    ( @Op"`
	AttrVal    lexer.Token    `parser:"      @(String | Number)"`
	In         []*pValue      `parser:"    | 'in':Keyword '(':Punct @@ ( ',':Punct @@ )* ')':Punct ) )"`
	HasAttr    bool           `parser:"| ( @'has_attr':Keyword"`
	HasAttrArg lexer.Token    `parser:"    @String )"`
	Filter     bool           `parser:"| ( @'filter':Keyword"`
	FilterArg  lexer.Token    `parser:"    @String )"`
	Seen       bool           `parser:"| ( @'seen_within':Keyword"`
	SeenArg    lexer.Token    `parser:"    @String )"`
	Upd        bool           `parser:"| ( @'update_status':Keyword"`
	UpdName    lexer.Token    `parser:"    @String"`
	UpdVer     lexer.Token    `parser:"    @String"`
	UpdOp      lexer.Token    `parser:"    ( @Op"`
	UpdSt      lexer.Token    `parser:"      @String"`
	UpdIn      []*pStatus     `parser:"    | 'in':Keyword '(':Punct @@ ( ',':Punct @@ )* ')':Punct ) )"`
	Not        *pUnary        `parser:"| ( 'not':Keyword @@ )"`
	Const      string         `parser:"| @('true':Keyword | 'false':Keyword)"`
	Paren      *pOr           `parser:"| ( '(':Punct @@ ')':Punct )"`
}

// pValue and pStatus are the repeated parts of a list (participle sets, not appends, a []lexer.Token).
type pValue struct {
	Tok lexer.Token `parser:"@(String | Number)"`
}

type pStatus struct {
	Tok lexer.Token `parser:"@String"`
}

// What the grammar's automaton recovers a broken term as: the production and the token it is
// replaced by (which must be a whole term by itself).
var (
	termProduction = reflect.TypeOf(pUnary{})
	termFiller     = "true"
)

// argDoc describes one argument of a predicate: how a syntax error names it and what completion
// offers there. The grammar says where arguments go; this says what they mean.
type argDoc struct {
	what  string // `a quoted string (the VIN regex)`; "" when the grammar's words say it all
	offer offer
}

// predicateDoc describes a predicate of the grammar.
type predicateDoc struct {
	detail   string   // its signature, as a completion list shows it
	args     []argDoc // its arguments in order, operators and IN aside; the last repeats (a list)
	compared []argDoc // the arguments after a comparison operator when they differ from args
	ops      []CmpOp  // the comparison operators it takes when not all of them
}

// offer is what completion offers for an argument.
type offer int

const (
	offerNothing    offer = iota
	offerPackages         // package names
	offerVersions         // the versions of the package named by the first argument
	offerComponents       // part numbers
	offerAttributes       // attribute keys
	offerValues           // the values of the attribute named by the first argument
	offerFilters          // saved filter names
	offerDurations        // durations
	offerStatuses         // update statuses
)

// predicateDocs has an entry for every predicate of the grammar (TestGrammarIsDocumented).
var predicateDocs = map[string]predicateDoc{
	"vin_matches": {detail: `vin_matches "regex"`, args: []argDoc{{"a quoted string (the VIN regex)", offerNothing}}},
	"has_package": {
		detail:   `has_package "name regex" "version regex" | has_package "name" >= "1.2.3"`,
		args:     []argDoc{{"a quoted string (the package name)", offerPackages}, {"a quoted string (the version regex)", offerVersions}},
		compared: []argDoc{{"a quoted string (the package name)", offerPackages}, {`a quoted version (such as "1.2.3")`, offerVersions}},
	},
	"has_component": {detail: `has_component "part number regex"`, args: []argDoc{{"a quoted string (the part number regex)", offerComponents}}},
	"attr": {
		detail: `attr "key" == value | attr "key" IN (v, …)`,
		args:   []argDoc{{"a quoted string (the attribute name)", offerAttributes}, {"", offerValues}},
	},
	"has_attr":    {detail: `has_attr "key"`, args: []argDoc{{"a quoted string (the attribute name)", offerAttributes}}},
	"filter":      {detail: `filter "saved filter"`, args: []argDoc{{"a quoted string (the filter name)", offerFilters}}},
	"seen_within": {detail: `seen_within "7d"`, args: []argDoc{{`a quoted string (the duration, such as "7d")`, offerDurations}}},
	"update_status": {
		detail: `update_status "name" "version" == "failed"`,
		args: []argDoc{{"a quoted string (the package name)", offerPackages}, {`a quoted version (the exact version, such as "1.2.3")`, offerVersions},
			{"a quoted status (" + statusList + ")", offerStatuses}},
		ops: statusOps,
	},
}

// grammar is built in init: a package-level initializer would run before the symbol table exists,
// because the dependency passes through an interface. lang is what is derived from it.
var (
	grammar *participle.Parser[pOr]
	lang    *language
)

func init() {
	grammar = participle.MustBuild[pOr](participle.Lexer(definition{}), participle.UseLookahead(1))
	lang = newLanguage(grammar.String())
	keywords, predicates = lang.keywords, lang.predicates
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

func (p *pUnary) pos() Pos { return toPos(p.Pos) }

func (p *pUnary) toAST(src *source) Node {
	at := p.pos()
	switch {
	case p.Paren != nil:
		return p.Paren.toAST(src)
	case p.Not != nil:
		return &Not{X: p.Not.toAST(src), At: at}
	case p.Const != "":
		return &Const{Value: p.Const == "true", At: at}
	case p.VIN:
		return &VINMatches{Regex: toStr(p.VINArg, src), At: at}
	case p.Comp:
		return &HasComponent{Part: toStr(p.CompArg, src), At: at}
	case p.HasAttr:
		return &HasAttr{Key: toStr(p.HasAttrArg, src), At: at}
	case p.Filter:
		return &FilterRef{Name: toStr(p.FilterArg, src), At: at}
	case p.Seen:
		return &SeenWithin{Duration: toStr(p.SeenArg, src), At: at}
	case p.Upd:
		n := &UpdateStatus{Name: toStr(p.UpdName, src), Version: toStr(p.UpdVer, src), At: at}
		if set(p.UpdOp) {
			n.Op, n.OpAt, n.Statuses = CmpOp(p.UpdOp.Value), toPos(p.UpdOp.Pos), []Str{toStr(p.UpdSt, src)}
			return n
		}
		n.In = true
		for _, v := range p.UpdIn {
			n.Statuses = append(n.Statuses, toStr(v.Tok, src))
		}
		return n
	case p.Pkg:
		if set(p.PkgOp) {
			return &HasPackageVersion{Name: toStr(p.PkgName, src), Op: CmpOp(p.PkgOp.Value), Version: toStr(p.PkgVer, src), At: at}
		}
		return &HasPackage{Name: toStr(p.PkgName, src), Version: toStr(p.PkgRe, src), At: at}
	case p.Attr:
		key := toStr(p.AttrKey, src)
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
