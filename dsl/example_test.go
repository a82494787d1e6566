package dsl_test

import (
	"fmt"

	"sota/dsl"
)

// Format prints the canonical form: upper-case operators, lower-case predicates, double quotes,
// only the parentheses precedence needs.
func ExampleFormat() {
	n, err := dsl.Parse(`not(vin_matches'^WDD')and (has_package"nav">="2.0.0" or TRUE) // new nav`)
	if err != nil {
		panic(err)
	}
	fmt.Println(dsl.Format(n))
	// Output: NOT vin_matches "^WDD" AND (has_package "nav" >= "2.0.0" OR TRUE)
}

// Validate reports every error with its line, column, what was expected and a caret.
func ExampleValidate() {
	_, err := dsl.Validate(`vin_matches abc OR has_component "C??????"`, nil)
	fmt.Println(err)
	for _, e := range err.(dsl.ErrorList) {
		fmt.Printf("%d:%d %s\n", e.Line, e.Column, e.Message)
	}
	// Output:
	// vin_matches abc OR has_component "C??????"
	//             ^ 1:13: unexpected word "abc", expected a quoted string (the VIN regex); arguments must be quoted: "abc"
	// vin_matches abc OR has_component "C??????"
	//                                    ^ 1:36: invalid regular expression "C??????": invalid nested repetition operator "????"
	// 1:13 unexpected word "abc", expected a quoted string (the VIN regex); arguments must be quoted: "abc"
	// 1:36 invalid regular expression "C??????": invalid nested repetition operator "????"
}

// Compile once, then evaluate per vehicle; references resolve through a lookup of saved filters.
func ExampleCompile() {
	saved := dsl.LookupFunc(func(name string) (string, bool) {
		return `vin_matches "^W"`, name == "germany"
	})
	p, err := dsl.Compile(`filter "germany" AND NOT has_package "nav" >= "2.0.0"`, saved)
	if err != nil {
		panic(err)
	}
	old := &dsl.Vehicle{VIN: "WDD1234567890ABCD", Packages: []dsl.Package{{Name: "nav", Version: "1.9.0"}}}
	updated := &dsl.Vehicle{VIN: "WDD1234567890ABCE", Packages: []dsl.Package{{Name: "nav", Version: "2.1.0"}}}
	fmt.Println(p.Match(old), p.Match(updated))
	ex := p.Explain(updated)
	for _, c := range ex.Children {
		fmt.Println(c.Expr, c.Value)
	}
	// Output:
	// true false
	// filter "germany" true
	// NOT has_package "nav" >= "2.0.0" false
}
