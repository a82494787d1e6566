package examples_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
	"sota/examples"
	"sota/resolver"
)

// Every example filter parses, checks (references included), keeps its meaning through the
// canonical form, and selects some but not all of a generated fleet (except the TRUE one).
func TestExampleFiltersAreValidAndMeaningful(t *testing.T) {
	lookup := dsl.LookupFunc(func(name string) (string, bool) {
		for _, f := range examples.Filters {
			if strings.EqualFold(f.Name, name) {
				return f.Expression, true
			}
		}
		return "", false
	})
	fleet := examples.FleetDSL(2, 20000)
	names := map[string]bool{}
	for _, f := range examples.Filters {
		t.Run(f.Name, func(t *testing.T) {
			require.False(t, names[f.Name], "duplicate name")
			names[f.Name] = true
			p, err := dsl.Compile(f.Expression, lookup)
			require.NoError(t, err)
			canon, err := dsl.Compile(p.String(), lookup)
			require.NoError(t, err, p.String())
			n := 0
			for i := range fleet {
				m := p.Match(&fleet[i])
				require.Equal(t, m, canon.Match(&fleet[i]), fleet[i].VIN)
				if m {
					n++
				}
			}
			if f.Expression == "TRUE" {
				assert.Equal(t, len(fleet), n)
				return
			}
			assert.Greater(t, n, 0, "selects no vehicle")
			assert.Less(t, n, len(fleet), "selects every vehicle")
			t.Logf("%d of %d vehicles", n, len(fleet))
		})
	}
}

// What the examples hold is accepted by the API as it is: filter names, part numbers, package ids
// and dependency ranges pass the resolver's validation, so `sotad --examples` and `sota fleet
// import` load them unchanged.
func TestExamplesPassTheAPIValidation(t *testing.T) {
	for _, f := range examples.Filters {
		assert.NoError(t, resolver.ValidFilterName(f.Name), f.Name)
	}
	c := examples.Catalogue()
	for _, comp := range c.Components {
		assert.NoError(t, resolver.ValidPartNumber(comp.PartNumber), comp.PartNumber)
	}
	for _, p := range c.Packages {
		assert.NoError(t, resolver.ValidPackageID(resolver.PackageID{Name: p.Name, Version: p.Version}))
		for _, d := range p.Dependencies {
			assert.NoError(t, resolver.ValidPackageName(d.Name))
			if d.Range != "" {
				_, err := dsl.ParseRange(d.Range)
				assert.NoError(t, err, d.Range)
			} else {
				assert.NoError(t, resolver.ValidVersion(d.Version))
			}
		}
	}
	for _, v := range examples.Fleet(3, 2000) {
		require.NoError(t, resolver.ValidVIN(v.VIN))
		for _, part := range v.Components {
			require.NoError(t, resolver.ValidPartNumber(part), part)
		}
	}
}
