package dsl

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from what the code prints now")

// goldenRefs are the saved filters the golden inputs may reference: testdata/errors/saved_filters.json,
// which `sota filter validate --filters` reads in the CLI's golden test too.
var goldenRefs = func() LookupFunc {
	b, err := os.ReadFile(filepath.Join("testdata", "errors", "saved_filters.json"))
	if err != nil {
		panic(err)
	}
	saved := map[string]string{}
	if err := json.Unmarshal(b, &saved); err != nil {
		panic(err)
	}
	return func(name string) (string, bool) {
		e, ok := saved[strings.ToLower(name)]
		return e, ok
	}
}()

// TestErrorGolden compiles every testdata/errors/NAME.filter (with goldenRefs) and compares the
// error, exactly as the CLI prints it (each error with its source line and caret), with NAME.golden.
// `go test ./dsl -run TestErrorGolden -update` rewrites the golden files; review the diff.
func TestErrorGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "errors", "*.filter"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".filter")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			require.NoError(t, err)
			_, cerr := Compile(string(src), goldenRefs)
			require.Error(t, cerr, "the input of an error golden file must be invalid")
			list, ok := cerr.(ErrorList)
			require.True(t, ok, "Compile's error is an ErrorList, got %T", cerr)
			got := list.Error() + "\n"
			golden := strings.TrimSuffix(in, ".filter") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "no golden file: run go test ./dsl -run TestErrorGolden -update")
			assert.Equal(t, string(want), got)

			// Parse alone reports the syntax errors among them, in the same words.
			if _, perr := Parse(string(src)); perr != nil {
				for _, e := range perr.(ErrorList) {
					assert.Contains(t, got, e.Error())
				}
			}
			assert.LessOrEqual(t, len(list), MaxErrors)
		})
	}
}
