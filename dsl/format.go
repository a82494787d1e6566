package dsl

import (
	"strconv"
	"strings"
)

// Format prints a tree in canonical form: upper-case AND OR NOT TRUE FALSE IN, lower-case predicate
// names, double quotes (single quotes when the string contains a double quote), single spaces, and
// only the parentheses needed to give back the same tree. Comments are not kept.
func Format(n Node) string {
	var b strings.Builder
	format(&b, n)
	return b.String()
}

func format(b *strings.Builder, n Node) {
	switch n := n.(type) {
	case *Or:
		for i, t := range n.Terms {
			if i > 0 {
				b.WriteString(" OR ")
			}
			formatTerm(b, t, func(x Node) bool { _, ok := x.(*Or); return ok })
		}
	case *And:
		for i, t := range n.Terms {
			if i > 0 {
				b.WriteString(" AND ")
			}
			formatTerm(b, t, isBinary)
		}
	case *Not:
		b.WriteString("NOT ")
		formatTerm(b, n.X, isBinary)
	case *Const:
		if n.Value {
			b.WriteString("TRUE")
		} else {
			b.WriteString("FALSE")
		}
	case *VINMatches:
		b.WriteString("vin_matches ")
		formatStr(b, n.Regex.Value)
	case *HasPackage:
		b.WriteString("has_package ")
		formatStr(b, n.Name.Value)
		b.WriteByte(' ')
		formatStr(b, n.Version.Value)
	case *HasPackageVersion:
		b.WriteString("has_package ")
		formatStr(b, n.Name.Value)
		b.WriteString(" " + string(n.Op) + " ")
		formatStr(b, n.Version.Value)
	case *HasComponent:
		b.WriteString("has_component ")
		formatStr(b, n.Part.Value)
	case *AttrCompare:
		b.WriteString("attr ")
		formatStr(b, n.Key.Value)
		b.WriteString(" " + string(n.Op) + " ")
		formatValue(b, n.Value.Value)
	case *AttrIn:
		b.WriteString("attr ")
		formatStr(b, n.Key.Value)
		b.WriteString(" IN (")
		for i, v := range n.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			formatValue(b, v.Value)
		}
		b.WriteByte(')')
	case *HasAttr:
		b.WriteString("has_attr ")
		formatStr(b, n.Key.Value)
	case *FilterRef:
		b.WriteString("filter ")
		formatStr(b, n.Name.Value)
	case *refNode:
		b.WriteString("filter ")
		formatStr(b, n.name)
	default:
		formatFleetState(b, n)
	}
}

func isBinary(n Node) bool {
	switch n.(type) {
	case *Or, *And:
		return true
	}
	return false
}

func formatTerm(b *strings.Builder, n Node, needParens func(Node) bool) {
	if needParens(n) {
		b.WriteByte('(')
		format(b, n)
		b.WriteByte(')')
		return
	}
	format(b, n)
}

func formatStr(b *strings.Builder, s string) { b.WriteString(quoteFor(s)) }

func formatValue(b *strings.Builder, v Value) {
	if v.IsNum {
		b.WriteString(formatNumber(v.Num))
		return
	}
	formatStr(b, v.Str)
}

// formatNumber prints a number in the language's syntax -?[0-9]+(\.[0-9]+)? (never an exponent).
func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
