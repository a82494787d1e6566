// Package load puts the example catalogue, filters and fleet of package examples into a resolver:
// what `sotad --examples` runs at start and what the import benchmarks load.
package load

import (
	"context"
	"fmt"
	"io"

	"sota/examples"
	"sota/resolver"
)

// DefaultSeed and DefaultVehicles are the example fleet `sotad --examples` loads: small enough to
// load in a few seconds.
const (
	DefaultSeed     = 1
	DefaultVehicles = 10_000
)

// Summary counts what was loaded.
type Summary struct {
	Packages     int
	Dependencies int
	Components   int
	Filters      int
	Associations int
	Fleet        resolver.ImportResult
}

// Empty tells whether the resolver holds no vehicle, package, component or filter.
func Empty(rs *resolver.Service) (bool, error) {
	one := resolver.Page{Limit: 1}
	counts := []func() (int, error){
		func() (int, error) { _, n, err := rs.ListVehicles(resolver.VehicleQuery{}, one); return n, err },
		func() (int, error) { _, n, err := rs.ListPackages("", one); return n, err },
		func() (int, error) { _, n, err := rs.ListComponents("", one); return n, err },
		func() (int, error) { _, n, err := rs.ListFilters("", one); return n, err },
	}
	for _, count := range counts {
		n, err := count()
		if err != nil || n > 0 {
			return false, err
		}
	}
	return true, nil
}

// Catalogue registers the example packages (with descriptions, vendors and dependencies) and
// components.
func Catalogue(rs *resolver.Service) (Summary, error) {
	var s Summary
	c := examples.Catalogue()
	for _, p := range c.Packages {
		if _, err := rs.PutPackage(id(p.Name, p.Version), resolver.PackageInfo{Description: p.Description, Vendor: p.Vendor}); err != nil {
			return s, fmt.Errorf("package %s %s: %w", p.Name, p.Version, err)
		}
		s.Packages++
	}
	for _, p := range c.Packages {
		for _, d := range p.Dependencies {
			var err error
			if d.Range != "" {
				err = rs.SetRangeDependency(id(p.Name, p.Version), d.Name, d.Range)
			} else {
				err = rs.AddDependency(id(p.Name, p.Version), id(d.Name, d.Version))
			}
			if err != nil {
				return s, fmt.Errorf("dependency of %s %s on %s: %w", p.Name, p.Version, d.Name, err)
			}
			s.Dependencies++
		}
	}
	for _, comp := range c.Components {
		if _, err := rs.PutComponent(comp.PartNumber, comp.Description); err != nil {
			return s, fmt.Errorf("component %s: %w", comp.PartNumber, err)
		}
		s.Components++
	}
	return s, nil
}

// Filters saves the example filters (in their order: later ones refer to earlier ones) and their
// package associations. The catalogue must be registered.
func Filters(rs *resolver.Service) (Summary, error) {
	var s Summary
	for _, f := range examples.Filters {
		if _, err := rs.CreateFilter(f.Name, f.Expression); err != nil {
			return s, fmt.Errorf("filter %s: %w", f.Name, err)
		}
		s.Filters++
	}
	for _, a := range examples.Associations {
		if _, err := rs.Associate(id(a.Package.Name, a.Package.Version), a.Filter); err != nil {
			return s, fmt.Errorf("filter %s on %s %s: %w", a.Filter, a.Package.Name, a.Package.Version, err)
		}
		s.Associations++
	}
	return s, nil
}

// Fleet imports the generated fleet of seed and n through the resolver's bulk import (the path
// POST /api/v1/fleet/import takes), generating it as it is read.
func Fleet(ctx context.Context, rs *resolver.Service, seed int64, n int, progress resolver.ImportProgress) (resolver.ImportResult, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(examples.WriteJSONL(pw, seed, n)) }()
	defer pr.Close()
	return rs.Import(ctx, pr, progress)
}

// All loads the catalogue, the fleet of seed and n, and the filters with their associations.
func All(ctx context.Context, rs *resolver.Service, seed int64, n int) (Summary, error) {
	s, err := Catalogue(rs)
	if err != nil {
		return s, err
	}
	if s.Fleet, err = Fleet(ctx, rs, seed, n, nil); err != nil {
		return s, err
	}
	f, err := Filters(rs)
	s.Filters, s.Associations = f.Filters, f.Associations
	return s, err
}

func id(name, version string) resolver.PackageID {
	return resolver.PackageID{Name: name, Version: version}
}
