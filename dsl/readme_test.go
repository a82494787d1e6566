package dsl

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestREADMEFilters parses and checks every filter of the first code block in the README's "Filter
// language" section (the indented lines that start with a predicate, NOT or a parenthesis).
func TestREADMEFilters(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n## Filter language\n")
	require.True(t, ok, "README has no Filter language section")
	section, _, _ = strings.Cut(section, "\n## ")
	refs := LookupFunc(func(name string) (string, bool) { return `vin_matches "^W"`, strings.EqualFold(name, "germany") })
	n := 0
	for _, line := range strings.Split(section, "\n") {
		code, ok := strings.CutPrefix(line, "    ")
		if !ok || code == "" {
			if n > 0 && strings.TrimSpace(line) != "" {
				break // the end of the first block of filters: what follows is output and commands
			}
			continue
		}
		first := strings.ToLower(strings.FieldsFunc(code, func(r rune) bool { return r == ' ' || r == '(' || r == '"' })[0])
		if !keywords[first] && !strings.HasPrefix(code, "(") {
			continue
		}
		n++
		_, err := Validate(code, refs)
		assert.NoError(t, err, code)
	}
	assert.GreaterOrEqual(t, n, 4, "the README's filters were not found")
}
