package dsl

import (
	"regexp"
	"strings"
)

// Eval is the reference evaluator: a plain walk over the tree that follows DSL.md's table line by
// line, compiling regexes as it goes; it favours being obviously right over speed. Tests hold the expr
// program (Match) and the index plan (Select) to it.
func (p *Program) Eval(v *Vehicle) bool { return evalNode(p.tree, v) }

func evalNode(n Node, v *Vehicle) bool {
	switch n := n.(type) {
	case *Or:
		for _, t := range n.Terms {
			if evalNode(t, v) {
				return true
			}
		}
		return false
	case *And:
		for _, t := range n.Terms {
			if !evalNode(t, v) {
				return false
			}
		}
		return true
	case *Not:
		return !evalNode(n.X, v)
	case *Const:
		return n.Value
	case *refNode:
		return evalNode(n.body, v)
	case *VINMatches:
		return regexp.MustCompile(n.Regex.Value).MatchString(v.VIN)
	case *HasPackage:
		name, version := regexp.MustCompile(n.Name.Value), regexp.MustCompile(n.Version.Value)
		for _, p := range v.Packages {
			if name.MatchString(p.Name) && version.MatchString(p.Version) {
				return true
			}
		}
		return false
	case *HasPackageVersion:
		want, err := ParseVersion(n.Version.Value)
		if err != nil {
			return false
		}
		for _, p := range v.Packages {
			if !strings.EqualFold(p.Name, n.Name.Value) {
				continue
			}
			have, err := ParseVersion(p.Version)
			if err == nil && compareOp(n.Op, have.Compare(want)) {
				return true
			}
		}
		return false
	case *HasComponent:
		re := regexp.MustCompile(n.Part.Value)
		for _, c := range v.Components {
			if re.MatchString(c) {
				return true
			}
		}
		return false
	case *AttrCompare:
		a, ok := v.Attrs[n.Key.Value]
		if !ok {
			return false
		}
		c, ok := compareValues(a, n.Value.Value)
		return ok && compareOp(n.Op, c)
	case *AttrIn:
		a, ok := v.Attrs[n.Key.Value]
		if !ok {
			return false
		}
		for _, w := range n.Values {
			if c, ok := compareValues(a, w.Value); ok && c == 0 {
				return true
			}
		}
		return false
	case *HasAttr:
		_, ok := v.Attrs[n.Key.Value]
		return ok
	case *SeenWithin, *UpdateStatus:
		return evalFleetState(n, v)
	}
	panic("dsl: cannot evaluate an unchecked tree")
}
