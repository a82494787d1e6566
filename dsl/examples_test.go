package dsl

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// languageCase is a filter with either its canonical form (valid) or the exact first error as the
// CLI prints it, source line and caret included (invalid). The messages are written by hand here and
// are never regenerated.
type languageCase struct {
	name, in string
	want     string // canonical form; empty when the filter is invalid
	err      string // the first error, exactly
	errs     int    // how many errors, when more than one
}

func runLanguageCases(t *testing.T, cases []languageCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.in, goldenRefs)
			if tc.err == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.want, p.String())
				n, err := Parse(tc.in)
				require.NoError(t, err)
				again, err := Parse(Format(n))
				require.NoError(t, err)
				assert.True(t, Equal(n, again), "Parse(Format(x)) differs from x")
				return
			}
			require.Error(t, err)
			list := err.(ErrorList)
			assert.Equal(t, tc.err, list[0].Error())
			if tc.errs > 0 {
				assert.Len(t, list, tc.errs, list.Error())
			}
		})
	}
}

// Every filter DSL.md shows (and ARCHITECTURE.md's example), valid or not.
func TestDSLMDExamples(t *testing.T) {
	runLanguageCases(t, []languageCase{
		{name: "architecture example", in: `vin_matches "^WDD" AND has_component "ECU1234" AND NOT has_package "nav" >= "2.0.0"`,
			want: `vin_matches "^WDD" AND has_component "ECU1234" AND NOT has_package "nav" >= "2.0.0"`},
		{name: "no escape sequences", in: `vin_matches "^\d{3}$"`, want: `vin_matches "^\d{3}$"`},
		{name: "other quote embeds one", in: `has_package 'a"b' ""`, want: `has_package 'a"b' ""`},
		{name: "no space where the boundary is clear", in: `NOT(vin_matches"a")AND(TRUE)`, want: `NOT vin_matches "a" AND TRUE`},
		{name: "unquoted argument says so", in: `vin_matches abc`,
			err: "vin_matches abc\n            ^ 1:13: unexpected word \"abc\", expected a quoted string (the VIN regex); arguments must be quoted: \"abc\""},
		{name: "OR is not a version", in: `has_package "x" OR`, errs: 2,
			err: "has_package \"x\" OR\n                ^ 1:17: unexpected OR, expected a quoted string (the version regex) or a comparison operator (==, !=, <, <=, >, >=)"},
		{name: "a AND b OR c", in: `has_attr "a" AND has_attr "b" OR has_attr "c"`, want: `has_attr "a" AND has_attr "b" OR has_attr "c"`},
		{name: "NOT a AND b", in: `NOT has_attr "a" AND has_attr "b"`, want: `NOT has_attr "a" AND has_attr "b"`},
		{name: "NOT NOT x", in: `NOT NOT has_attr "x"`, want: `NOT NOT has_attr "x"`},
		{name: "empty expression", in: ``,
			err: "\n^ 1:1: empty expression, expected a predicate, NOT, TRUE, FALSE or \"(\""},
		{name: "vin_matches R", in: `vin_matches "^WDD"`, want: `vin_matches "^WDD"`},
		{name: "has_package N V", in: `has_package "^nav$" "^2\."`, want: `has_package "^nav$" "^2\."`},
		{name: "typed version", in: `has_package "n" >= "2.1.0"`, want: `has_package "n" >= "2.1.0"`},
		{name: "has_component R", in: `has_component "ECU1234"`, want: `has_component "ECU1234"`},
		{name: "attr compare", in: `attr "k" == "v"`, want: `attr "k" == "v"`},
		{name: "attr IN", in: `attr "k" IN ("v", 2)`, want: `attr "k" IN ("v", 2)`},
		{name: "has_attr", in: `has_attr "k"`, want: `has_attr "k"`},
		{name: "filter reference", in: `filter "base"`, want: `filter "base"`},
		{name: "constants and operators", in: `true and not false or TRUE`, want: `TRUE AND NOT FALSE OR TRUE`},
		{name: "empty regexes", in: `has_package "" ""`, want: `has_package "" ""`},
		{name: "error example", in: `vin_matches "SAJNX5745SC......" AND ?`,
			err: "vin_matches \"SAJNX5745SC......\" AND ?\n                                    ^ 1:37: unexpected character \"?\", expected a predicate, NOT, TRUE, FALSE or \"(\""},
		{name: "no-break space is an error", in: "TRUE\u00a0AND TRUE",
			err: "TRUE\u00a0AND TRUE\n    ^ 1:5: unexpected character \"\\u00a0\" (a no-break space; white space is space, tab, CR or LF), expected AND, OR or end of input"},
	})
}

// The language of the original GENIVI resolver, which filters written for it keep.
func TestOriginalResolverLanguage(t *testing.T) {
	runLanguageCases(t, []languageCase{
		{name: "quoted arguments", in: `vin_matches "^WDD" AND has_package "nav" "2.0" AND has_component "ECU"`,
			want: `vin_matches "^WDD" AND has_package "nav" "2.0" AND has_component "ECU"`},
		{name: "single quotes", in: `vin_matches '^WDD' AND has_package 'nav' '2.0'`, want: `vin_matches "^WDD" AND has_package "nav" "2.0"`},
		{name: "both quote kinds mixed", in: `has_package "nav" '2.0'`, want: `has_package "nav" "2.0"`},
		{name: "backslash is ordinary", in: `vin_matches "^\d{3}$" OR vin_matches '\w\\'`, want: `vin_matches "^\d{3}$" OR vin_matches "\w\\"`},
		{name: "block comment", in: `/* German cars */ vin_matches "^W"`, want: `vin_matches "^W"`},
		{name: "line comment", in: "vin_matches \"^W\" // German cars\nAND TRUE", want: `vin_matches "^W" AND TRUE`},
		{name: "no-space tokens", in: `has_package"a""b"`, want: `has_package "a" "b"`},
		{name: "no-space operators", in: `TRUE AND(FALSE)OR(TRUE)`, want: `TRUE AND FALSE OR TRUE`},
		{name: "keywords in any case", in: `Vin_Matches "a" aNd NoT TrUe`, want: `vin_matches "a" AND NOT TRUE`},
		{name: "invalid regex *", in: `vin_matches "*"`,
			err: "vin_matches \"*\"\n             ^ 1:14: invalid regular expression \"*\": missing argument to repetition operator"},
		{name: "invalid regex (", in: `has_component "("`,
			err: "has_component \"(\"\n               ^ 1:16: invalid regular expression \"(\": missing closing )"},
		{name: "invalid regex a{2,1}", in: `vin_matches "a{2,1}"`,
			err: "vin_matches \"a{2,1}\"\n              ^ 1:15: invalid regular expression \"a{2,1}\": invalid repeat count \"{2,1}\""},
		{name: "invalid regex C??????", in: `has_component "C??????"`,
			err: "has_component \"C??????\"\n                ^ 1:17: invalid regular expression \"C??????\": invalid nested repetition operator \"????\""},
		{name: "invalid version regex", in: `has_package "nav" "*"`,
			err: "has_package \"nav\" \"*\"\n                   ^ 1:20: invalid regular expression \"*\": missing argument to repetition operator"},
		{name: "unclosed double quote", in: `vin_matches "abc`,
			err: "vin_matches \"abc\n            ^ 1:13: unclosed string, expected a closing \" before the end of the line"},
		{name: "unclosed single quote", in: `has_package "nav" '2.0`,
			err: "has_package \"nav\" '2.0\n                  ^ 1:19: unclosed string, expected a closing ' before the end of the line"},
		{name: "string ends at the line", in: "vin_matches \"ab\nc\"",
			err: "vin_matches \"ab\n            ^ 1:13: unclosed string, expected a closing \" before the end of the line"},
		{name: "trailing junk", in: `TRUE junk`,
			err: "TRUE junk\n     ^ 1:6: unexpected word \"junk\", expected AND, OR or end of input"},
		{name: "empty input", in: ``,
			err: "\n^ 1:1: empty expression, expected a predicate, NOT, TRUE, FALSE or \"(\""},
		{name: "blank input", in: " \t\n",
			err: "\n^ 2:1: empty expression, expected a predicate, NOT, TRUE, FALSE or \"(\""},
		{name: "unquoted regex", in: `has_component ECU1234`,
			err: "has_component ECU1234\n              ^ 1:15: unexpected word \"ECU1234\", expected a quoted string (the part number regex); arguments must be quoted: \"ECU1234\""},
		{name: "unquoted version regex", in: `has_package "nav" 2.0`,
			err: "has_package \"nav\" 2.0\n                  ^ 1:19: unexpected number 2.0, expected a quoted string (the version regex) or a comparison operator (==, !=, <, <=, >, >=); arguments must be quoted: \"2.0\""},
		{name: "unquoted regex with symbols", in: `vin_matches ^WDD.*`,
			err: "vin_matches ^WDD.*\n            ^ 1:13: unexpected character \"^\", expected a quoted string (the VIN regex); arguments must be quoted: \"^WDD.*\""},
	})
}

// Precedence, checked on the tree rather than on the printed form.
func TestPrecedence(t *testing.T) {
	same := []struct{ a, b string }{
		{`has_attr "a" AND has_attr "b" OR has_attr "c"`, `(has_attr "a" AND has_attr "b") OR has_attr "c"`},
		{`has_attr "a" OR has_attr "b" AND has_attr "c"`, `has_attr "a" OR (has_attr "b" AND has_attr "c")`},
		{`NOT has_attr "a" AND has_attr "b"`, `(NOT has_attr "a") AND has_attr "b"`},
		{`NOT has_attr "a" OR has_attr "b"`, `(NOT has_attr "a") OR has_attr "b"`},
		{`NOT NOT has_attr "a"`, `NOT (NOT has_attr "a")`},
	}
	for _, tc := range same {
		t.Run(tc.a, func(t *testing.T) {
			a, err := Parse(tc.a)
			require.NoError(t, err)
			b, err := Parse(tc.b)
			require.NoError(t, err)
			assert.True(t, Equal(a, b), "%s is not %s", tc.a, tc.b)
		})
	}
	a, err := Parse(`has_attr "a" AND (has_attr "b" OR has_attr "c")`)
	require.NoError(t, err)
	b, err := Parse(`has_attr "a" AND has_attr "b" OR has_attr "c"`)
	require.NoError(t, err)
	assert.False(t, Equal(a, b), "parentheses change the tree")
}

// The limits of DSL.md: 64 KiB of source, nesting 256 deep (each parenthesis level and each NOT
// counts one), exactly at the limit and one past it.
func TestLimits(t *testing.T) {
	nots := func(n int) string { return strings.Repeat("NOT ", n) + "TRUE" }
	parens := func(n int) string { return strings.Repeat("(", n) + "TRUE" + strings.Repeat(")", n) }
	mixed := func(n int) string { return strings.Repeat("NOT (", n) + "TRUE" + strings.Repeat(")", n) }
	long := func(n int) string { // vin_matches "aaa…" of n bytes
		return `vin_matches "` + strings.Repeat("a", n-len(`vin_matches ""`)) + `"`
	}
	for _, ok := range []string{nots(MaxDepth), parens(MaxDepth), mixed(MaxDepth / 2), "TRUE AND " + parens(MaxDepth), long(MaxLength)} {
		_, err := Validate(ok, nil)
		assert.NoError(t, err, "%.40s… (%d bytes)", ok, len(ok))
	}
	deep := "nesting is deeper than 256, expected at most 256 levels of parentheses and NOT"
	for _, tc := range []struct {
		in   string
		col  int
		want string
	}{
		{nots(MaxDepth + 1), 4*MaxDepth + 1, deep},
		{parens(MaxDepth + 1), MaxDepth + 1, deep},
		{mixed(MaxDepth/2) + " OR " + nots(MaxDepth+1), 5*(MaxDepth/2) + 4 + MaxDepth/2 + 4 + 4*MaxDepth + 1, deep},
		{long(MaxLength + 1), MaxLength + 1, "expression is 65537 bytes long, expected at most 65536"},
	} {
		_, err := Validate(tc.in, nil)
		require.Error(t, err)
		list := err.(ErrorList)
		require.Len(t, list, 1)
		assert.Equal(t, tc.want, list[0].Message)
		assert.Equal(t, 1, list[0].Line)
		assert.Equal(t, tc.col, list[0].Column, "%.40s…", tc.in)
	}
}

// A few small filters that each reference the next twice would expand to 2^n nodes when Compile
// inlines them: the checker stops that at MaxExpanded, at the reference, before anything is built.
func TestReferenceExpansionIsBounded(t *testing.T) {
	chain := func(n int) FilterLookup {
		return LookupFunc(func(name string) (string, bool) {
			var i int
			if _, err := fmt.Sscanf(strings.ToLower(name), "f%d", &i); err != nil || i > n {
				return "", false
			}
			if i == n {
				return `vin_matches "^W"`, true
			}
			return fmt.Sprintf(`filter "f%d" OR NOT filter "f%d"`, i+1, i+1), true
		})
	}
	// 2^10 leaves: fine, and the program answers like the reference evaluator
	p, err := Compile(`has_attr "x" AND filter "f0"`, chain(10))
	require.NoError(t, err)
	v := &Vehicle{VIN: "WDD1", Attrs: map[string]Value{"x": {Str: "y"}}}
	assert.Equal(t, p.Eval(v), p.Match(v))

	for _, n := range []int{14, 60} {
		_, err := Validate(`has_attr "x" AND filter "f0"`, chain(n))
		require.Error(t, err, "%d levels", n)
		assert.Equal(t, "has_attr \"x\" AND filter \"f0\"\n"+
			"                        ^ 1:25: filter \"f0\" expands to more than 32768 nodes with the filters it references, expected at most 32768",
			err.Error())
		_, err = Compile(`filter "f0"`, chain(n))
		require.Error(t, err)
	}

	// the densest filter of MaxLength bytes stays under the bound on its own
	dense := strings.Repeat("NOT TRUE OR ", MaxLength/12-1) + "TRUE"
	require.LessOrEqual(t, len(dense), MaxLength)
	_, err = Compile(dense, nil)
	require.NoError(t, err)
}
