package resolver

import (
	"slices"
	"strings"

	"sota/dsl"
	"sota/errs"
	"sota/store"
)

// depRec is one stored dependency: on an exact version or on a range of versions of a name.
type depRec struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Range   string `json:"range,omitempty"`
}

// DependencyEdge is one dependency: Dependent needs Dependency. For a range dependency Range is set
// and Dependency.Version is the highest registered version in the range ("" when none is).
type DependencyEdge struct {
	Dependent  PackageID `json:"dependent"`
	Dependency PackageID `json:"dependency"`
	Range      string    `json:"range,omitempty"`
}

// AddDependency records that id needs dep exactly. Both must be registered; an existing edge is a
// duplicate_entry conflict and an edge that closes a cycle is a dependency_cycle conflict.
func (s *Service) AddDependency(id, dep PackageID) error {
	if err := validPair(id, dep); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		pkg, dp, err := s.loadPair(t, id, dep)
		if err != nil {
			return err
		}
		key := depExactKey(pkg.ID, dp.ID)
		if ok, err := t.Has(key); err != nil || ok {
			if ok {
				return duplicate("Dependency already exists: %s -> %s", pkg.ID, dp.ID)
			}
			return err
		}
		if err := checkCycle(t, pkg.ID, []PackageID{dp.ID}); err != nil {
			return err
		}
		if err := putJSON(t, key, depRec{Name: dp.ID.Name, Version: dp.ID.Version}); err != nil {
			return err
		}
		return t.Set(revDepKey(dp.ID, pkg.ID), nil)
	})
}

// RemoveDependency drops the exact dependency of id on dep (missing_dependency when there is none).
func (s *Service) RemoveDependency(id, dep PackageID) error {
	if err := validPair(id, dep); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		pkg, dp, err := s.loadPair(t, id, dep)
		if err != nil {
			return err
		}
		key := depExactKey(pkg.ID, dp.ID)
		ok, err := t.Has(key)
		if err != nil {
			return err
		}
		if !ok {
			return missingDependency("%s does not depend on %s", pkg.ID, dp.ID)
		}
		if err := t.Delete(key); err != nil {
			return err
		}
		return t.Delete(revDepKey(dp.ID, pkg.ID))
	})
}

// SetRangeDependency records (or replaces) the dependency of id on the versions of depName in rng,
// e.g. ">=1.2.0 <2.0.0". Some version of depName must be registered; a dependency that could close a
// cycle is a dependency_cycle conflict.
func (s *Service) SetRangeDependency(id PackageID, depName, rng string) error {
	if err := ValidPackageID(id); err != nil {
		return err
	}
	if err := ValidPackageName(depName); err != nil {
		return err
	}
	r, err := dsl.ParseRange(rng)
	if err != nil {
		return errs.InvalidEntity("Invalid range %q: %v", rng, err)
	}
	return s.write(func(t store.Txn) error {
		pkg, err := s.loadPackage(t, id)
		if err != nil {
			return err
		}
		versions, err := packageVersions(t, depName)
		if err != nil {
			return err
		}
		if len(versions) == 0 {
			return errs.New(errs.NotFound, "package_not_found", "Package ID does not exist: no version of %s is registered", depName)
		}
		var targets []PackageID
		for _, v := range versions {
			if r.Contains(v.Version) {
				targets = append(targets, v)
			}
		}
		if err := checkCycle(t, pkg.ID, targets); err != nil {
			return err
		}
		return putJSON(t, depRangeKey(pkg.ID, depName), depRec{Name: versions[len(versions)-1].Name, Range: r.String()})
	})
}

// RemoveRangeDependency drops the range dependency of id on depName.
func (s *Service) RemoveRangeDependency(id PackageID, depName string) error {
	if err := ValidPackageID(id); err != nil {
		return err
	}
	if err := ValidPackageName(depName); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		pkg, err := s.loadPackage(t, id)
		if err != nil {
			return err
		}
		key := depRangeKey(pkg.ID, depName)
		ok, err := t.Has(key)
		if err != nil {
			return err
		}
		if !ok {
			return missingDependency("%s has no range dependency on %s", pkg.ID, depName)
		}
		return t.Delete(key)
	})
}

// Dependencies returns the dependency edges of id; with recursive, those of the whole closure, each
// edge once, deepest first (an edge comes after the edges below its dependency). A range edge is
// followed into the highest registered version in the range.
func (s *Service) Dependencies(id PackageID, recursive bool) ([]DependencyEdge, error) {
	if err := ValidPackageID(id); err != nil {
		return nil, err
	}
	out := []DependencyEdge{}
	err := s.db.View(func(t store.Txn) error {
		pkg, err := s.loadPackage(t, id)
		if err != nil {
			return err
		}
		g := newTxnGraph(t)
		seen := map[string]bool{}
		var walk func(id PackageID) error
		walk = func(id PackageID) error {
			seen[pkgPart(id)] = true
			deps, err := g.deps(id)
			if err != nil {
				return err
			}
			for _, d := range deps {
				e := DependencyEdge{Dependent: id, Dependency: PackageID{Name: d.Name, Version: d.Version}, Range: d.Range}
				if d.Range != "" {
					best, err := g.highestIn(d)
					if err != nil {
						return err
					}
					e.Dependency.Version = best.Version
				}
				if recursive && e.Dependency.Version != "" && !seen[pkgPart(e.Dependency)] {
					if err := walk(e.Dependency); err != nil {
						return err
					}
				}
				out = append(out, e)
			}
			return nil
		}
		return walk(pkg.ID)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func validPair(id, dep PackageID) error {
	if err := ValidPackageID(id); err != nil {
		return err
	}
	return ValidPackageID(dep)
}

func (s *Service) loadPair(t store.Txn, id, dep PackageID) (Package, Package, error) {
	pkg, err := s.loadPackage(t, id)
	if err != nil {
		return pkg, Package{}, err
	}
	dp, err := s.loadPackage(t, dep)
	return pkg, dp, err
}

func missingDependency(format string, args ...any) error {
	return errs.New(errs.NotFound, "missing_dependency", "Dependency does not exist: "+format, args...)
}

// packageVersions returns the registered versions of a name, lowest first.
func packageVersions(t store.Txn, name string) ([]PackageID, error) {
	var out []PackageID
	err := iterateJSON(t, packageNamePrefix(name), func(p *Package) error {
		out = append(out, p.ID)
		return nil
	})
	slices.SortFunc(out, comparePackageIDs)
	return out, err
}

// checkCycle refuses a new dependency of id on any of targets when id is reachable from one of
// them (or is one of them), naming the cycle.
func checkCycle(t store.Txn, id PackageID, targets []PackageID) error {
	g := newTxnGraph(t)
	seen := map[string]bool{}
	var stack []PackageID
	var dfs func(n PackageID) (bool, error)
	dfs = func(n PackageID) (bool, error) {
		stack = append(stack, n)
		if samePackage(n, id) {
			return true, nil
		}
		if !seen[pkgPart(n)] {
			seen[pkgPart(n)] = true
			next, err := g.successors(n)
			if err != nil {
				return false, err
			}
			for _, m := range next {
				if found, err := dfs(m); found || err != nil {
					return found, err
				}
			}
		}
		stack = stack[:len(stack)-1]
		return false, nil
	}
	for _, target := range targets {
		stack = []PackageID{id}
		found, err := dfs(target)
		if err != nil {
			return err
		}
		if found {
			names := make([]string, len(stack))
			for i, n := range stack {
				names[i] = n.String()
			}
			return errs.New(errs.Conflict, "dependency_cycle", "Dependency would create a cycle: %s", strings.Join(names, " -> "))
		}
	}
	return nil
}

// txnGraph reads the dependency graph in one transaction, memoized. It implements Graph.
type txnGraph struct {
	t        store.Txn
	depCache map[string][]depRec
	verCache map[string][]PackageID
	rngCache map[string]dsl.Range
	err      error
}

func newTxnGraph(t store.Txn) *txnGraph {
	return &txnGraph{t: t, depCache: map[string][]depRec{}, verCache: map[string][]PackageID{}, rngCache: map[string]dsl.Range{}}
}

func (g *txnGraph) deps(id PackageID) ([]depRec, error) {
	k := pkgPart(id)
	if d, ok := g.depCache[k]; ok {
		return d, nil
	}
	var out []depRec
	err := iterateJSON(g.t, depPrefix(id), func(d *depRec) error {
		out = append(out, *d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	g.depCache[k] = out
	return out, nil
}

func (g *txnGraph) versions(name string) ([]PackageID, error) {
	k := lower(name)
	if v, ok := g.verCache[k]; ok {
		return v, nil
	}
	v, err := packageVersions(g.t, name)
	if err != nil {
		return nil, err
	}
	g.verCache[k] = v
	return v, nil
}

func (g *txnGraph) rangeOf(s string) (dsl.Range, error) {
	if r, ok := g.rngCache[s]; ok {
		return r, nil
	}
	r, err := dsl.ParseRange(s)
	if err != nil {
		return r, internal("stored range %q: %v", s, err)
	}
	g.rngCache[s] = r
	return r, nil
}

// successors are the package versions a dependency of n may resolve to.
func (g *txnGraph) successors(n PackageID) ([]PackageID, error) {
	deps, err := g.deps(n)
	if err != nil {
		return nil, err
	}
	var out []PackageID
	for _, d := range deps {
		if d.Range == "" {
			out = append(out, PackageID{Name: d.Name, Version: d.Version})
			continue
		}
		r, err := g.rangeOf(d.Range)
		if err != nil {
			return nil, err
		}
		vs, err := g.versions(d.Name)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if r.Contains(v.Version) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// highestIn is the highest registered version in a range dependency (zero when none).
func (g *txnGraph) highestIn(d depRec) (PackageID, error) {
	r, err := g.rangeOf(d.Range)
	if err != nil {
		return PackageID{}, err
	}
	vs, err := g.versions(d.Name)
	if err != nil {
		return PackageID{}, err
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if r.Contains(vs[i].Version) {
			return vs[i], nil
		}
	}
	return PackageID{Name: d.Name}, nil
}

func (g *txnGraph) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}
