package resolver

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"sota/dsl"
)

// Dep is one dependency of a package version on a name: exactly one of Exact (a version) or Range
// is set.
type Dep struct {
	Name  string
	Exact string
	Range dsl.Range
}

// Graph is what the solver knows of the packages.
type Graph interface {
	// Deps is the direct dependencies of one package version.
	Deps(id PackageID) []Dep
	// Versions is the known versions of a name (case-insensitive).
	Versions(name string) []string
}

// Unresolved says why a vehicle's dependencies cannot be satisfied, naming the packages involved.
type Unresolved struct{ Reason string }

func (e *Unresolved) Error() string { return e.Reason }

// constraint is one dependency edge of the closure.
type constraint struct {
	from PackageID
	dep  Dep
}

func (c constraint) allows(version string) bool {
	if c.dep.Exact != "" {
		return version == c.dep.Exact
	}
	return c.dep.Range.Contains(version)
}

func (c constraint) same(d constraint) bool {
	return c.from == d.from && strings.EqualFold(c.dep.Name, d.dep.Name) &&
		c.dep.Exact == d.dep.Exact && c.dep.Range.String() == d.dep.Range.String()
}

func (c constraint) String() string {
	want := c.dep.Exact
	if want == "" {
		want = c.dep.Range.String()
	}
	return fmt.Sprintf("%s requires %s %s", c.from, c.dep.Name, want)
}

// choice is the version a name gets in the closure.
type choice struct {
	name    string // as first written in the closure
	version string
	kept    bool // installed and satisfying: not installed again, its dependencies taken as present
	deps    []Dep
}

// maxRounds bounds the re-choices of Solve; each round learns at least one new constraint, so it
// is only reached by graphs far larger than any fleet's.
const maxRounds = 256

// Solve returns the install list for one vehicle (dependencies first, root last), leaving out what
// is installed: an installed version that satisfies every constraint on its name is kept and its
// own dependencies are taken as present; otherwise the highest known version satisfying every
// constraint on that name in the closure is chosen. installed maps lower-cased name -> version.
// A vehicle that has the exact root version gets an empty list. A vehicle that cannot be
// satisfied gets *Unresolved naming the packages involved.
//
// Choices are made breadth-first from the root. When a constraint found later rules out an earlier
// choice, Solve starts again with that constraint known from the start, until the choices settle.
func Solve(g Graph, root PackageID, installed map[string]string) ([]PackageID, error) {
	rootKey := strings.ToLower(root.Name)
	if v, ok := installed[rootKey]; ok && v == root.Version {
		return nil, nil
	}
	return solveWith(g, root, func(name string) string { return installed[name] })
}

// solveWith is Solve for a vehicle that does not have the exact root version, reading the installed
// version of a lower-cased name ("" when none) through installed, which it calls only for the names
// whose installed version it needs.
func solveWith(g Graph, root PackageID, installed func(name string) string) ([]PackageID, error) {
	rootKey := strings.ToLower(root.Name)
	learned := map[string][]constraint{}
	for range maxRounds {
		choices, cons, err := closure(g, root, installed, learned)
		if err != nil {
			return nil, err
		}
		settled := true
		for _, k := range slices.Sorted(maps.Keys(cons)) {
			c := choices[k]
			for _, cc := range cons[k] {
				if cc.allows(c.version) {
					continue
				}
				if k == rootKey {
					return nil, &Unresolved{Reason: fmt.Sprintf("%s conflicts with its own dependencies: %s", root, cc)}
				}
				settled = false
				for _, n := range cons[k] {
					if !slices.ContainsFunc(learned[k], n.same) {
						learned[k] = append(learned[k], n)
					}
				}
				break
			}
		}
		if settled {
			return installOrder(choices, rootKey), nil
		}
	}
	return nil, &Unresolved{Reason: fmt.Sprintf("the dependencies of %s do not settle", root)}
}

// closure chooses a version for every name reachable from root, breadth-first, each choice made
// with the constraints seen so far and those learned in earlier rounds.
func closure(g Graph, root PackageID, installed func(string) string, learned map[string][]constraint) (map[string]*choice, map[string][]constraint, error) {
	rootKey := strings.ToLower(root.Name)
	choices := map[string]*choice{rootKey: {name: root.Name, version: root.Version}}
	cons := map[string][]constraint{}
	queue := []string{rootKey}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		c := choices[k]
		if c.kept {
			continue
		}
		from := PackageID{Name: c.name, Version: c.version}
		c.deps = slices.Clone(g.Deps(from))
		slices.SortStableFunc(c.deps, func(a, b Dep) int {
			return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
		})
		for _, d := range c.deps {
			dk := strings.ToLower(d.Name)
			cons[dk] = append(cons[dk], constraint{from: from, dep: d})
			if _, ok := choices[dk]; ok {
				continue
			}
			all := slices.Clip(cons[dk])
			for _, l := range learned[dk] {
				if !slices.ContainsFunc(all, l.same) {
					all = append(all, l)
				}
			}
			ch, err := choose(g, d.Name, all, installed(dk))
			if err != nil {
				return nil, nil, err
			}
			choices[dk] = ch
			queue = append(queue, dk)
		}
	}
	return choices, cons, nil
}

// choose keeps the installed version when it satisfies every constraint, else takes the highest
// known version that does.
func choose(g Graph, name string, cons []constraint, installed string) (*choice, error) {
	for i, a := range cons {
		for _, b := range cons[i+1:] {
			if a.dep.Exact != "" && b.dep.Exact != "" && a.dep.Exact != b.dep.Exact {
				return nil, &Unresolved{Reason: fmt.Sprintf("conflicting exact dependencies on %s: %s; %s", name, a, b)}
			}
		}
	}
	all := func(v string) bool {
		for _, c := range cons {
			if !c.allows(v) {
				return false
			}
		}
		return true
	}
	if installed != "" && all(installed) {
		return &choice{name: name, version: installed, kept: true}, nil
	}
	best := ""
	for _, v := range g.Versions(name) {
		if all(v) && (best == "" || dsl.CompareVersions(v, best) > 0) {
			best = v
		}
	}
	if best == "" {
		reasons := make([]string, len(cons))
		for i, c := range cons {
			reasons[i] = c.String()
		}
		return nil, &Unresolved{Reason: fmt.Sprintf("no known version of %s satisfies %s", name, strings.Join(reasons, "; "))}
	}
	return &choice{name: name, version: best}, nil
}

// installOrder lists the chosen packages that are not kept, every one after its dependencies and
// the root last. A dependency cycle (possible through ranges) is cut where it is met.
func installOrder(choices map[string]*choice, rootKey string) []PackageID {
	var out []PackageID
	state := map[string]uint8{} // 1 visiting, 2 done
	var visit func(k string)
	visit = func(k string) {
		c := choices[k]
		if c.kept || state[k] != 0 {
			return
		}
		state[k] = 1
		for _, d := range c.deps {
			visit(strings.ToLower(d.Name))
		}
		state[k] = 2
		out = append(out, PackageID{Name: c.name, Version: c.version})
	}
	visit(rootKey)
	return out
}
