package dsl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lintFleet is testdata/lint/fleet.json: saved filters and a few vehicles, the fleet the lint golden
// files and the completion table are checked against.
type lintFleet struct {
	filters map[string]string
	idx     *memIndex
}

func loadLintFleet(t testing.TB) *lintFleet {
	b, err := os.ReadFile(filepath.Join("testdata", "lint", "fleet.json"))
	require.NoError(t, err)
	var raw struct {
		Filters  map[string]string
		Vehicles []*Vehicle
	}
	require.NoError(t, json.Unmarshal(b, &raw))
	return &lintFleet{filters: raw.Filters, idx: newMemIndex(raw.Vehicles)}
}

func (f *lintFleet) LookupFilter(name string) (string, bool) {
	e, ok := f.filters[strings.ToLower(name)]
	return e, ok
}

func (f *lintFleet) FilterNames() []string {
	names := make([]string, 0, len(f.filters))
	for n := range f.filters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TestLintGolden lints every testdata/lint/NAME.filter against testdata/lint/fleet.json and compares
// what `sota filter lint` prints (errors, then warnings, each with its caret), followed by the
// JSON of POST /filters/lint (offsets, lengths and suggestions), with NAME.golden.
// `go test ./dsl -run TestLintGolden -update` rewrites them; review the diff.
func TestLintGolden(t *testing.T) {
	fleet := loadLintFleet(t)
	inputs, err := filepath.Glob(filepath.Join("testdata", "lint", "*.filter"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".filter")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			require.NoError(t, err)
			src := strings.TrimSuffix(string(b), "\n")
			res := Lint(src, LintOptions{Filters: fleet, Fleet: fleet.idx})
			js, err := json.MarshalIndent(res, "", "  ")
			require.NoError(t, err)
			got := res.Print(src) + "\n---\n" + string(js) + "\n"
			golden := strings.TrimSuffix(in, ".filter") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "no golden file: run go test ./dsl -run TestLintGolden -update")
			assert.Equal(t, string(want), got)

			// Lint and the validity rule agree; every suggestion applied gives a filter without that
			// diagnostic at that place.
			_, verr := ValidateFilter("", src, fleet)
			assert.Equal(t, verr == nil, res.Valid)
			for _, d := range append(append([]Diagnostic{}, res.Errors...), res.Warnings...) {
				assert.LessOrEqual(t, d.Offset+d.Length, len(src))
				if d.Suggestion == "" {
					continue
				}
				fixed := src[:d.Offset] + d.Suggestion + src[d.Offset+d.Length:]
				again := Lint(fixed, LintOptions{Filters: fleet, Fleet: fleet.idx})
				for _, e := range append(append([]Diagnostic{}, again.Errors...), again.Warnings...) {
					assert.False(t, e.Offset == d.Offset && e.Message == d.Message, "applying %q left %q", d.Suggestion, e.Message)
				}
			}
		})
	}
}

func TestLintWithoutFleetGivesNoFleetWarnings(t *testing.T) {
	res := Lint(`has_component "NOPE" AND (has_attr "x" OR NOT has_attr "x")`, LintOptions{})
	assert.True(t, res.Valid)
	require.Len(t, res.Warnings, 1)
	assert.Equal(t, `this OR is always true: it has both has_attr "x" and NOT has_attr "x"`, res.Warnings[0].Message)
}

func TestLintNameFindsCycleThroughTheEditedFilter(t *testing.T) {
	fleet := loadLintFleet(t)
	res := Lint(`filter "production"`, LintOptions{Filters: fleet, Name: "production"})
	assert.False(t, res.Valid)
	require.Len(t, res.Errors, 1)
	assert.Contains(t, res.Errors[0].Message, "filter reference cycle")
}

func TestValidateFilterIsValidateWithTheFilterItself(t *testing.T) {
	fleet := loadLintFleet(t)
	_, err := ValidateFilter("europe", `filter "EUROPE" OR TRUE`, fleet)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `filter reference cycle: "europe" -> "europe"`)
	n, err := ValidateFilter("newone", `filter "europe"`, fleet)
	require.NoError(t, err)
	assert.Equal(t, `filter "europe"`, Format(n))
}

func TestRefsListsDirectReferencesOnce(t *testing.T) {
	n, err := Parse(`filter "B" OR (filter "a" AND NOT filter "b") OR has_attr "filter"`)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, Refs(n))
	n, err = Parse(`TRUE`)
	require.NoError(t, err)
	assert.Empty(t, Refs(n))
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"has_pakage", "has_package", 1},
		{"adn", "and", 1}, // a swap of neighbours is one edit
		{"nav-engin", "nav-engine", 1},
		{"kitten", "sitting", 3},
		{"", "abc", 3},
		{"same", "same", 0},
	} {
		assert.Equal(t, c.want, distance(c.a, c.b, 10), "%s/%s", c.a, c.b)
	}
	assert.Equal(t, 3, distance("kitten", "sitting", 2), "stops past max")
	assert.Equal(t, "has_package", suggestName("HAS_PAKAGE", lang.primaries))
	assert.Equal(t, "", suggestName("junk", []string{"AND", "OR"}))
}
