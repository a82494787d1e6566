package dsl_test

import (
	"fmt"

	"sota/dsl"
)

// saved is a FilterLister: saved filters that can also be listed, for the nearest-name suggestion.
type saved map[string]string

func (s saved) LookupFilter(name string) (string, bool) { e, ok := s[name]; return e, ok }
func (s saved) FilterNames() []string                   { return []string{"production"} }

// Lint suggests the nearest keyword or saved filter for a misspelt one; each diagnostic says which
// part of the source its suggestion replaces.
func ExampleLint() {
	src := `filter "prodution" adn has_attr "year"`
	res := dsl.Lint(src, dsl.LintOptions{Filters: saved{"production": `attr "stage" == "production"`}})
	fmt.Println(res.Valid)
	for _, d := range res.Errors {
		fmt.Printf("%d:%d %s\n  replace %q with %s\n", d.Line, d.Column, d.Message, src[d.Offset:d.Offset+d.Length], d.Suggestion)
	}
	// Output:
	// false
	// 1:8 unknown filter "prodution", expected the name of a saved filter; did you mean "production"?
	//   replace "\"prodution\"" with "production"
	// 1:20 unexpected word "adn", expected AND, OR or end of input; did you mean AND?
	//   replace "adn" with AND
}

// Complete names what may come at the cursor and which part of the source an item replaces.
func ExampleComplete() {
	src := `seen_within "7d" AND update_status "nav" "3.2.0" == "fa`
	c, _ := dsl.Complete(src, len(src), dsl.CompleteOptions{})
	for _, it := range c.Items {
		fmt.Printf("%s %s -> %s\n", it.Kind, src[c.From:c.To], it.Insert)
	}
	// Output:
	// status "fa -> "failed"
}
