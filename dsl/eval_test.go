package dsl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A small fleet that exercises every line of DSL.md's "Meaning" table.
var meaningFleet = []*Vehicle{
	0: {VIN: "WDD1234567890ABCD", Packages: []Package{{"nav", "2.1.0"}, {"radio", "1.0.0"}}, Components: []string{"ECU1234", "TCU9"},
		Attrs: map[string]Value{"market": {Str: "EU"}, "year": {Num: 2019, IsNum: true}}},
	1: {VIN: "WDD9999999999ZZZZ", Packages: []Package{{"Nav", "1.9.0"}}, Components: []string{"ECU1235"},
		Attrs: map[string]Value{"market": {Str: "US"}, "year": {Num: 2021, IsNum: true}}},
	2: {VIN: "SAJNX5745SC000001", Packages: []Package{{"nav", "2.1.0-rc.1"}, {"maps", "3.0.0+b7"}},
		Attrs: map[string]Value{"year": {Str: "2020"}}},
	3: {VIN: "SAJNX5745SC00000X"},
}

func TestMeaning(t *testing.T) {
	cases := []struct {
		filter string
		want   []int // ids for which the filter is true
	}{
		{`TRUE`, []int{0, 1, 2, 3}},
		{`FALSE`, nil},
		{`vin_matches "^WDD"`, []int{0, 1}},
		{`vin_matches "WDD"`, []int{0, 1}},
		{`vin_matches "ABC"`, []int{0}},
		{`vin_matches "^wdd"`, nil},
		{`vin_matches "(?i)^wdd"`, []int{0, 1}},
		{`vin_matches "X$"`, []int{3}},
		{`vin_matches "^SAJNX5745SC.....[0-9]$"`, []int{2}},
		{`vin_matches "SAJNX5745SC......"`, []int{2, 3}},
		{`vin_matches "^\d"`, nil},
		{`vin_matches ""`, []int{0, 1, 2, 3}},
		{`has_package "nav" "2\.1"`, []int{0, 2}},
		{`has_package "^nav$" ""`, []int{0, 2}},
		{`has_package "" ""`, []int{0, 1, 2}},
		{`NOT has_package "" ""`, []int{3}},
		{`has_package "radio" "2\.1\.0"`, nil}, // one single package must match both
		{`has_package "nav" >= "2.1.0"`, []int{0}},
		{`has_package "NAV" >= "2.0.0"`, []int{0, 2}},
		{`has_package "nav" < "2.1.0"`, []int{1, 2}},
		{`has_package "nav" == "2.1.0"`, []int{0}},
		{`has_package "nav" != "2.1.0"`, []int{1, 2}},
		{`has_package "maps" == "3.0.0"`, []int{2}}, // build metadata takes no part in precedence
		{`has_package "na" >= "0.0.0"`, nil},        // exact name, not a regex
		{`has_component "ECU123[45]"`, []int{0, 1}},
		{`has_component "^TCU"`, []int{0}},
		{`has_component ""`, []int{0, 1}},
		{`attr "market" == "EU"`, []int{0}},
		{`attr "market" != "EU"`, []int{1}}, // a missing attribute makes != false too
		{`attr "year" >= 2020`, []int{1}},   // "2020" is a string: numbers and strings do not compare
		{`attr "year" == "2020"`, []int{2}},
		{`attr "year" < 2020.5`, []int{0}},
		{`attr "market" > "A"`, []int{0, 1}},
		{`attr "market" IN ("US", "JP", 2019)`, []int{1}},
		{`attr "year" IN (2019, "2020")`, []int{0, 2}},
		{`has_attr "year"`, []int{0, 1, 2}},
		{`NOT has_attr "year"`, []int{3}},
		{`vin_matches "^WDD" AND has_component "ECU1234" AND NOT has_package "nav" >= "2.0.0"`, nil},
		{`vin_matches "^WDD" AND NOT has_package "nav" >= "2.0.0"`, []int{1}},
		{`has_attr "market" AND attr "year" > 2020 OR vin_matches "X$"`, []int{1, 3}},
		{`NOT vin_matches "^S" AND has_component "ECU"`, []int{0, 1}},
		{`NOT (vin_matches "^S" OR has_component "1235")`, []int{0}},
		{`vin_matches "1$" OR vin_matches "Z$" OR has_attr "nothing"`, []int{1, 2}},
	}
	idx := newMemIndex(meaningFleet)
	for _, tc := range cases {
		t.Run(tc.filter, func(t *testing.T) {
			p, err := Compile(tc.filter, nil)
			require.NoError(t, err)
			var eval, match []int
			for i, v := range meaningFleet {
				if p.Eval(v) {
					eval = append(eval, i)
				}
				if p.Match(v) {
					match = append(match, i)
				}
			}
			var sel []int
			for _, id := range p.Select(idx).ToArray() {
				sel = append(sel, int(id))
			}
			assert.Equal(t, tc.want, eval, "reference evaluator")
			assert.Equal(t, tc.want, match, "expr program")
			assert.Equal(t, tc.want, sel, "index plan")
			assert.Equal(t, uint64(len(tc.want)), p.Count(idx))
		})
	}
}

func TestReferencesAreInlined(t *testing.T) {
	saved := map[string]string{
		"germany": `vin_matches "^W"`,
		"newnav":  `has_package "nav" >= "2.0.0"`,
		"target":  `filter "Germany" AND NOT filter "newNav"`,
	}
	refs := LookupFunc(func(n string) (string, bool) { e, ok := saved[strings.ToLower(n)]; return e, ok })
	p, err := Compile(`filter "TARGET" OR has_attr "force"`, refs)
	require.NoError(t, err)
	assert.Equal(t, []string{"germany", "newnav", "target"}, p.Refs())
	assert.Equal(t, `filter "TARGET" OR has_attr "force"`, p.String())
	assert.True(t, p.Match(meaningFleet[1]))
	assert.False(t, p.Match(meaningFleet[0]))
	ex := p.Explain(meaningFleet[0])
	assert.False(t, ex.Value)
	require.Len(t, ex.Children, 2)
	assert.Equal(t, `filter "TARGET"`, ex.Children[0].Expr)
	assert.Equal(t, `filter "Germany" AND NOT filter "newNav"`, ex.Children[0].Children[0].Expr)
}
