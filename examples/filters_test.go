package examples_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
	"sota/examples"
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
