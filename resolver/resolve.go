package resolver

import (
	"context"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
	"sota/errs"
	"sota/store"
)

// Resolve returns the vehicles that pass every filter associated with the package and do not have
// that exact version installed, each with what it must install (dependencies first, the package
// last), sorted by VIN. Vehicles whose dependencies cannot be satisfied are left out (DryRun lists
// them). A package without filters is no_filters: associate a TRUE filter to mean every vehicle.
func (s *Service) Resolve(ctx context.Context, id PackageID) ([]Target, error) {
	sols, _, err := s.solve(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(sols))
	for _, sol := range sols {
		if !sol.AlreadyInstalled && sol.Err == nil {
			out = append(out, Target{VIN: sol.VIN, Install: sol.Install})
		}
	}
	return out, nil
}

// Solutions is the per-vehicle answer that Resolve and DryRun summarise: every vehicle passing the
// package's filters (or expr, when not nil), sorted by VIN, with its install list, whether it has the
// package already, or why it is unresolved. The engine derives a launch's groups and a dry run's
// problems from it.
func (s *Service) Solutions(ctx context.Context, id PackageID, expr *string) ([]Solution, error) {
	sols, _, err := s.solve(ctx, id, expr)
	return sols, err
}

// DryRunRequest asks what resolving a package would do, optionally with an unsaved filter expression
// in place of the package's associated filters.
type DryRunRequest struct {
	Package    *PackageID `json:"package"`
	Expression *string    `json:"expression"`
	Sample     *int       `json:"sample"`
}

// Dry-run sample limits.
const (
	DefaultSample = 20
	MaxSample     = 1000
)

// DryRunResult is the answer of a dry run.
type DryRunResult struct {
	Matched          int `json:"matched"`          // pass the filters, exact version not installed
	AlreadyInstalled int `json:"alreadyInstalled"` // pass the filters, exact version installed
	TotalVehicles    int `json:"totalVehicles"`
	// Unresolved is the first matched vehicles by VIN whose dependencies cannot be satisfied (as
	// many as the sample); UnresolvedCount counts them all and UnresolvedByReason groups them.
	Unresolved         []UnresolvedVehicle `json:"unresolved"`
	UnresolvedCount    int                 `json:"unresolvedCount"`
	UnresolvedByReason []UnresolvedGroup   `json:"unresolvedByReason"`
	Sample             []SampleVehicle     `json:"sample"` // resolvable matched vehicles, first by VIN
	ElapsedMs          float64             `json:"elapsedMs"`
}

// UnresolvedVehicle is a matched vehicle whose dependencies cannot be satisfied, with the reason.
type UnresolvedVehicle struct {
	VIN    string `json:"vin"`
	Reason string `json:"reason"`
}

// SampleVehicle is a resolvable matched vehicle with its install list.
type SampleVehicle struct {
	VIN     string      `json:"vin"`
	Install []PackageID `json:"install"`
}

// DryRun resolves without queuing anything and counts the outcome: counts from the index's
// bitmaps, install lists solved once per class of vehicles (DryRunSelected), and only the vehicles
// shown looked at one by one.
func (s *Service) DryRun(ctx context.Context, req DryRunRequest) (DryRunResult, error) {
	start := time.Now()
	if req.Package == nil {
		return DryRunResult{}, errs.InvalidEntity(`The body needs "package": {"name","version"}`)
	}
	n := DefaultSample
	if req.Sample != nil {
		n = *req.Sample
		if n < 0 || n > MaxSample {
			return DryRunResult{}, errs.InvalidEntity("sample must be from 0 to %d, not %d", MaxSample, n)
		}
	}
	var c DryRunCounts
	res := DryRunResult{Unresolved: []UnresolvedVehicle{}, UnresolvedByReason: []UnresolvedGroup{}, Sample: []SampleVehicle{}}
	err := s.selection(ctx, *req.Package, req.Expression, func(root PackageID, sel func(dsl.Index) *roaring.Bitmap, g Graph) {
		c = s.index.DryRunSelected(sel, g, root, n)
		res.TotalVehicles = s.index.Len()
	})
	if err != nil {
		return DryRunResult{}, err
	}
	res.Matched, res.AlreadyInstalled, res.UnresolvedCount = c.Matched, c.AlreadyInstalled, c.Unresolvable
	res.Unresolved = append(res.Unresolved, c.Unresolved...)
	res.UnresolvedByReason = append(res.UnresolvedByReason, c.ByReason...)
	res.Sample = append(res.Sample, c.Sample...)
	res.ElapsedMs = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// solve selects the vehicles passing the package's filters (or expr when not nil), ANDed, with the
// index plan, and solves the package's dependencies for each, sorted by VIN.
func (s *Service) solve(ctx context.Context, id PackageID, expr *string) (sols []Solution, total int, err error) {
	err = s.selection(ctx, id, expr, func(root PackageID, sel func(dsl.Index) *roaring.Bitmap, g Graph) {
		sols = s.index.SolveSelected(sel, g, root)
		total = s.index.Len()
	})
	return sols, total, err
}

// selection compiles the package's filters (or expr when not nil) and calls fn, inside one store
// view, with the package as stored, the selection of their AND by the index plan, and the
// dependency graph.
func (s *Service) selection(ctx context.Context, id PackageID, expr *string, fn func(root PackageID, sel func(dsl.Index) *roaring.Bitmap, g Graph)) error {
	if err := ValidPackageID(id); err != nil {
		return err
	}
	// every write any replica acknowledged before this request is in the index (feed.go)
	if err := s.db.CatchUp(ctx); err != nil {
		return err
	}
	return s.db.View(func(t store.Txn) error {
		pkg, err := s.loadPackage(t, id)
		if err != nil {
			return err
		}
		var progs []*dsl.Program
		if expr != nil {
			p, err := s.compile(t, *expr)
			if err != nil {
				return err
			}
			progs = append(progs, p)
		} else {
			fs, err := packageFilters(t, pkg.ID)
			if err != nil {
				return err
			}
			if len(fs) == 0 {
				return errs.New(errs.NotFound, "no_filters", "No filters associated with package %s", pkg.ID)
			}
			for _, f := range fs {
				p, err := s.compile(t, f.Expression)
				if err != nil {
					return err
				}
				progs = append(progs, p)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		g := newTxnGraph(t)
		sel := func(idx dsl.Index) *roaring.Bitmap {
			bm := progs[0].Select(idx)
			for _, p := range progs[1:] {
				if bm.IsEmpty() {
					break
				}
				bm = roaring.And(bm, p.Select(idx))
			}
			return bm
		}
		fn(pkg.ID, sel, g)
		return g.err
	})
}

// Deps is the Graph view for the solver: errors are kept and reported by Err.
func (g *txnGraph) Deps(id PackageID) []Dep {
	deps, err := g.deps(id)
	if err != nil {
		g.fail(err)
		return nil
	}
	out := make([]Dep, 0, len(deps))
	for _, d := range deps {
		if d.Range == "" {
			out = append(out, Dep{Name: d.Name, Exact: d.Version})
			continue
		}
		r, err := g.rangeOf(d.Range)
		if err != nil {
			g.fail(err)
			return nil
		}
		out = append(out, Dep{Name: d.Name, Range: r})
	}
	return out
}

// Versions is the Graph view of the registered versions of a name.
func (g *txnGraph) Versions(name string) []string {
	vs, err := g.versions(name)
	if err != nil {
		g.fail(err)
		return nil
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out
}

// Matcher compiles expr (with the saved filters it references) and selects the vehicles it matches
// now: the answer tells whether a VIN is among them. An invalid expression is 406 invalid_filter.
func (s *Service) Matcher(expr string) (func(vin string) bool, error) {
	var prog *dsl.Program
	err := s.db.View(func(t store.Txn) error {
		var err error
		prog, err = s.compile(t, expr)
		return err
	})
	if err != nil {
		return nil, err
	}
	var bm *roaring.Bitmap
	s.index.Read(func(idx dsl.Index) { bm = prog.Select(idx).Clone() })
	return func(vin string) bool {
		id, ok := s.index.ID(vin)
		return ok && bm.Contains(id)
	}, nil
}

// CheckExpression validates expr as an unsaved filter expression: 406 invalid_filter.
func (s *Service) CheckExpression(expr string) error {
	return s.db.View(func(t store.Txn) error {
		_, err := s.compile(t, expr)
		return err
	})
}
