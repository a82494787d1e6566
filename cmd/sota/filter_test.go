package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCLI(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestFilterValidate(t *testing.T) {
	code, out, errOut := runCLI(`vin_matches "^WDD" AND NOT has_package "nav" >= "2.0.0"`, "filter", "validate", "-")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "OK\n", out)

	code, out, errOut = runCLI(`vin_matches "SAJNX5745SC......" AND ?`+"\n", "filter", "validate", "-")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, "vin_matches \"SAJNX5745SC......\" AND ?\n"+
		"                                    ^ 1:37: unexpected character \"?\", expected a predicate, NOT, TRUE, FALSE or \"(\"\n", errOut)

	dir := t.TempDir()
	file := filepath.Join(dir, "f.filter")
	require.NoError(t, os.WriteFile(file, []byte("TRUE junk\n"), 0o600))
	code, _, errOut = runCLI("", "filter", "validate", file)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `1:6: unexpected word "junk", expected AND, OR or end of input`)

	code, _, errOut = runCLI("", "filter", "validate", filepath.Join(dir, "missing"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no such file")
}

func TestFilterReferencesFromFile(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, "filters.json")
	require.NoError(t, os.WriteFile(saved, []byte(`[{"name":"Germany","expression":"vin_matches '^W'"}]`), 0o600))

	code, out, errOut := runCLI(`filter "germany" AND TRUE`, "filter", "validate", "--filters", saved, "-")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "OK\n", out)

	code, _, errOut = runCLI(`filter "germany"`, "filter", "validate", "-")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `unknown filter "germany"`)
}

func TestFilterFmt(t *testing.T) {
	code, out, errOut := runCLI("not(vin_matches'^WDD')and has_package\"nav\"\"\" // comment\n", "filter", "fmt", "-")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "NOT vin_matches \"^WDD\" AND has_package \"nav\" \"\"\n", out)

	code, out, errOut = runCLI(`has_component "a{2,1}"`, "filter", "fmt", "-")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Equal(t, "has_component \"a{2,1}\"\n                ^ 1:17: invalid regular expression \"a{2,1}\": invalid repeat count \"{2,1}\"\n", errOut)
}

func TestFilterHelpAndUsage(t *testing.T) {
	code, out, errOut := runCLI("", "filter", "fmt", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Usage: sota filter fmt", "help is an answer: on standard output")
	assert.Empty(t, errOut)
	code, _, _ = runCLI("", "filter", "validate")
	assert.Equal(t, 2, code)
}

// The CLI prints exactly the golden error text of every dsl/testdata/errors input, exit 1.
func TestFilterValidateGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "dsl", "testdata", "errors")
	inputs, err := filepath.Glob(filepath.Join(dir, "*.filter"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	saved := filepath.Join(dir, "saved_filters.json")
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(in, ".filter") + ".golden")
			require.NoError(t, err)
			for _, verb := range []string{"validate", "fmt"} {
				code, out, errOut := runCLI("", "filter", verb, "--filters", saved, in)
				assert.Equal(t, 1, code)
				assert.Empty(t, out)
				assert.Equal(t, string(want), errOut)
			}
		})
	}
}

func TestFilterLintOffline(t *testing.T) {
	code, out, errOut := runCLI("has_pakage \"nav\" \"\"\n", "filter", "lint", "-")
	assert.Equal(t, 1, code, errOut)
	assert.Equal(t, "has_pakage \"nav\" \"\"\n"+
		"^ 1:1: unexpected word \"has_pakage\", expected a predicate, NOT, TRUE, FALSE or \"(\"; did you mean has_package?\n", out)

	// warnings alone: exit 0
	code, out, _ = runCLI(`has_attr "x" OR NOT has_attr "x"`, "filter", "lint", "-")
	assert.Equal(t, 0, code)
	assert.Equal(t, "has_attr \"x\" OR NOT has_attr \"x\"\n"+
		"^ 1:1: warning: this OR is always true: it has both has_attr \"x\" and NOT has_attr \"x\"\n", out)

	code, out, _ = runCLI(`TRUE`, "filter", "lint", "-")
	assert.Equal(t, 0, code)
	assert.Equal(t, "OK\n", out)

	// the saved filters of a file give the nearest name
	saved := filepath.Join(t.TempDir(), "filters.json")
	require.NoError(t, os.WriteFile(saved, []byte(`{"production": "TRUE"}`), 0o600))
	code, out, _ = runCLI(`filter "prodution"`, "filter", "lint", "--filters", saved, "-")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `unknown filter "prodution", expected the name of a saved filter; did you mean "production"?`)

	code, out, _ = runCLI("", "filter", "lint", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Usage: sota filter lint")
}

func TestFilterLintOnServer(t *testing.T) {
	url, token, rs := importServer(t)
	require.NoError(t, rs.PutVehicle("WDD12345678900003"))
	_, err := rs.CreateComponent("ECU1234", "engine")
	require.NoError(t, err)
	require.NoError(t, rs.InstallComponent("WDD12345678900003", "ECU1234"))

	code, out, errOut := runCLI(`has_component "ECU1243"`, "filter", "lint", "--server", url, "--token", token, "-")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "has_component \"ECU1243\"\n"+
		"              ^ 1:15: warning: no installed part number contains \"ECU1243\"; did you mean \"ECU1234\"?\n", out)

	code, _, errOut = runCLI(`TRUE`, "filter", "lint", "--server", url, "--token", "wrong", "-")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "401")
}
