package resolver

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
	"sota/examples"
)

// filterGen writes random filters over the vocabulary of the example fleet, with values that
// match, values that do not, and every predicate form.
type filterGen struct{ r *rand.Rand }

func (g filterGen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g filterGen) leaf() string {
	switch g.r.IntN(10) {
	case 0:
		return fmt.Sprintf("vin_matches %q", g.pick("^WDD", "^W", "^1FT", "^5YJ3", "^JTD", "^VF1R", "7$", "^.{9}[MNP]", "", "^WBA.{6}[KL]", "^(SAJ|YV1)", "X", "^ZZZ",
			"X.*9$", "(?i)^wdd", "(?i)x[0-9]$", "[13579]$", "^W.*(7|X)$", "(?i)(bd4|e1e)"))
	case 1:
		return fmt.Sprintf("has_component %q", g.pick("0261S19234", "^BMS", "EYEQ", "TCU5G3105", "nothing", "^A2C", "(?i)^hu"))
	case 2:
		return fmt.Sprintf("has_package %q %q", g.pick("^nav", "openssl", "^OPENSSL$", "", "carplay", "(?i)^OTA"), g.pick("", "^3\\.", "^2\\.0", "rc", "^1\\."))
	case 3:
		return fmt.Sprintf("has_package %q %s %q", g.pick("nav-engine", "OpenSSL", "ota-client", "infotainment-ui", "ghost"),
			g.pick("==", "!=", "<", "<=", ">", ">="), g.pick("3.0.0", "2.0.0", "9.0.0", "10.0.0-beta.2", "1.1.1"))
	case 4:
		return fmt.Sprintf("attr %q %s %q", g.pick("region", "market", "model", "none"), g.pick("==", "!=", "<", ">="), g.pick("EU", "NA", "DE", "C-Class", "M"))
	case 5:
		return fmt.Sprintf("attr \"year\" %s %s", g.pick("==", "!=", "<", "<=", ">", ">="), g.pick("2014", "2020", "2022.5", "2026", "\"2020\""))
	case 6:
		return fmt.Sprintf("attr %q IN (%s)", g.pick("market", "year", "region"), g.pick(`"DE", "FR"`, `2021, 2022`, `"CN"`, `"US", 2020`))
	case 7:
		return fmt.Sprintf("has_attr %q", g.pick("market", "year", "legacy"))
	case 8:
		return g.pick("TRUE", "FALSE")
	}
	return fmt.Sprintf("has_component %q", g.pick("BCM210477", "8966147D31"))
}

func (g filterGen) expr(depth int) string {
	if depth == 0 || g.r.IntN(3) == 0 {
		return g.leaf()
	}
	switch g.r.IntN(4) {
	case 0:
		return "NOT " + g.expr(depth-1)
	case 1:
		return "(" + g.expr(depth-1) + " OR " + g.expr(depth-1) + ")"
	default:
		return g.expr(depth-1) + " AND " + g.expr(depth-1)
	}
}

// Property: over generated fleets in the real FleetIndex (after inserts, replacements and deletes,
// so ids are not in VIN order), the index plan, the expr program and the reference evaluator
// select the same vehicles for generated filters and for every example filter.
func TestIndexPlanAgreesWithExprAndReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	fleet := examples.FleetDSL(31, 1200)
	x := NewFleetIndex()
	x.PutMany(fleet[:800])
	live := map[string]dsl.Vehicle{}
	for _, v := range fleet[:800] {
		live[v.VIN] = v
	}
	for _, v := range fleet[800:] {
		v = mutate(r, v)
		x.Put(v)
		live[v.VIN] = v
	}
	for i := 0; i < 150; i++ {
		vin := fleet[r.IntN(len(fleet))].VIN
		x.Delete(vin)
		delete(live, vin)
	}
	vehicles := make([]dsl.Vehicle, 0, len(live))
	for _, v := range live {
		vehicles = append(vehicles, v)
	}
	sort.Slice(vehicles, func(i, j int) bool { return vehicles[i].VIN < vehicles[j].VIN })

	lookup := dsl.LookupFunc(func(name string) (string, bool) {
		for _, f := range examples.Filters {
			if strings.EqualFold(f.Name, name) {
				return f.Expression, true
			}
		}
		return "", false
	})
	var filters []string
	for _, f := range examples.Filters {
		filters = append(filters, f.Expression)
	}
	g := filterGen{r}
	for i := 0; i < 400; i++ {
		filters = append(filters, g.expr(4))
	}
	nonEmpty := 0
	for _, src := range filters {
		p, err := dsl.Compile(src, lookup)
		require.NoError(t, err, src)
		var byExpr, byRef []string
		for i := range vehicles {
			v := &vehicles[i]
			m, e := p.Match(v), p.Eval(v)
			require.Equal(t, e, m, "expr and reference disagree on %s for %s", v.VIN, src)
			if m {
				byExpr = append(byExpr, v.VIN)
			}
			if e {
				byRef = append(byRef, v.VIN)
			}
		}
		var byPlan []string
		var count uint64
		x.Read(func(idx dsl.Index) {
			bm := p.Select(idx)
			count = p.Count(idx)
			bm.Iterate(func(id uint32) bool {
				byPlan = append(byPlan, idx.Vehicle(id).VIN)
				return true
			})
		})
		sort.Strings(byPlan)
		require.Equal(t, byRef, byPlan, "index plan and reference disagree on %s", src)
		require.Equal(t, uint64(len(byPlan)), count, src)
		if len(byPlan) > 0 && len(byPlan) < len(vehicles) {
			nonEmpty++
		}
	}
	assert.Greater(t, nonEmpty, len(filters)/4, "the generated filters mostly select some, not all, vehicles")
}
