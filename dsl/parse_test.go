package dsl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Valid filters and their canonical form.
var formatCases = []struct{ name, in, want string }{
	{"architecture example", `vin_matches "^WDD" AND has_component "ECU1234" AND NOT has_package "nav" >= "2.0.0"`,
		`vin_matches "^WDD" AND has_component "ECU1234" AND NOT has_package "nav" >= "2.0.0"`},
	{"DSL.md error example fixed", `vin_matches "SAJNX5745SC......" AND TRUE`, `vin_matches "SAJNX5745SC......" AND TRUE`},
	{"keywords any case", `Vin_Matches "a" and not Has_Component "b" Or true`, `vin_matches "a" AND NOT has_component "b" OR TRUE`},
	{"single quotes", `vin_matches 'abc'`, `vin_matches "abc"`},
	{"single quotes kept for a double quote", `has_attr 'a"b'`, `has_attr 'a"b'`},
	{"double quotes may hold a single quote", `has_attr "a'b"`, `has_attr "a'b"`},
	{"no escapes", `vin_matches "^\d{3}$"`, `vin_matches "^\d{3}$"`},
	{"backslash before quote is ordinary", `vin_matches "a\" OR TRUE`, `vin_matches "a\" OR TRUE`},
	{"comments", "/* fleet */ TRUE // all\nAND FALSE", `TRUE AND FALSE`},
	{"no-space has_package", `has_package"a""b"`, `has_package "a" "b"`},
	{"no-space parens", `NOT(vin_matches"a")AND(TRUE)`, `NOT vin_matches "a" AND TRUE`},
	{"precedence AND over OR", `TRUE AND FALSE OR TRUE`, `TRUE AND FALSE OR TRUE`},
	{"parens kept where needed", `TRUE AND (FALSE OR TRUE)`, `TRUE AND (FALSE OR TRUE)`},
	{"redundant parens dropped", `((TRUE AND FALSE)) OR (TRUE)`, `TRUE AND FALSE OR TRUE`},
	{"NOT binds tighter than AND", `NOT TRUE AND FALSE`, `NOT TRUE AND FALSE`},
	{"NOT of a group", `NOT (TRUE AND FALSE)`, `NOT (TRUE AND FALSE)`},
	{"NOT NOT", `not not TRUE`, `NOT NOT TRUE`},
	{"typed version", `has_package 'nav' >= '2.1.0'`, `has_package "nav" >= "2.1.0"`},
	{"attr number", `attr "year">=2019`, `attr "year" >= 2019`},
	{"attr number canonical", `attr "x" == 1.50`, `attr "x" == 1.5`},
	{"attr negative", `attr "t" < -4.25`, `attr "t" < -4.25`},
	{"attr in", `attr "market" in ("EU",'US' , 3)`, `attr "market" IN ("EU", "US", 3)`},
	{"has_attr and filter", `has_attr "x" OR filter "base"`, `has_attr "x" OR filter "base"`},
	{"whitespace kinds", "TRUE\tAND\r\nFALSE", `TRUE AND FALSE`},
	{"nested same operator keeps its tree", `TRUE OR (FALSE OR TRUE)`, `TRUE OR (FALSE OR TRUE)`},
	{"empty regexes", `has_package "" ""`, `has_package "" ""`},
}

func TestParseAndFormat(t *testing.T) {
	for _, tc := range formatCases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse(tc.in)
			require.NoError(t, err)
			got := Format(n)
			assert.Equal(t, tc.want, got)
			again, err := Parse(got)
			require.NoError(t, err)
			assert.True(t, Equal(n, again), "Parse(Format(x)) differs from x")
			assert.Equal(t, got, Format(again), "Format is not idempotent")
		})
	}
}

func TestPrecedenceShapes(t *testing.T) {
	n, err := Parse(`has_attr "a" AND has_attr "b" OR has_attr "c"`)
	require.NoError(t, err)
	or, ok := n.(*Or)
	require.True(t, ok, "a AND b OR c is an OR at the top, got %T", n)
	require.Len(t, or.Terms, 2)
	assert.IsType(t, &And{}, or.Terms[0])

	n, err = Parse(`NOT has_attr "a" AND has_attr "b"`)
	require.NoError(t, err)
	and, ok := n.(*And)
	require.True(t, ok, "NOT a AND b is an AND at the top, got %T", n)
	assert.IsType(t, &Not{}, and.Terms[0])
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"DSL.md example", `vin_matches "SAJNX5745SC......" AND ?`,
			"vin_matches \"SAJNX5745SC......\" AND ?\n                                    ^ 1:37: unexpected character \"?\", expected a predicate, NOT, TRUE, FALSE or \"(\""},
		{"trailing junk", `TRUE junk`, "TRUE junk\n     ^ 1:6: unexpected word \"junk\", expected AND, OR or end of input"},
		{"empty", ``, "\n^ 1:1: empty expression, expected a predicate, NOT, TRUE, FALSE or \"(\""},
		{"unquoted argument", `vin_matches abc`, "vin_matches abc\n            ^ 1:13: unexpected word \"abc\", expected a quoted string (the VIN regex); arguments must be quoted: \"abc\""},
		{"unclosed string", `vin_matches "abc`, "vin_matches \"abc\n            ^ 1:13: unclosed string, expected a closing \" before the end of the line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			require.Error(t, err)
			var list ErrorList
			require.ErrorAs(t, err, &list)
			assert.Equal(t, tc.want, list[0].Error())
		})
	}
}
