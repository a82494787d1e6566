package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/budget"
)

func TestParseCapturedSample(t *testing.T) {
	f, err := os.Open("testdata/sample.txt")
	require.NoError(t, err)
	defer f.Close()
	var lines int
	res, err := Parse(f, func(string) { lines++ })
	require.NoError(t, err)
	assert.Equal(t, 21, lines, "every line is passed on")
	assert.Empty(t, res.Failures)
	require.Len(t, res.Rows, 4)
	assert.Equal(t, Row{Name: "validate a 200-character filter", Figure: 31.24, Unit: "µs", Budget: 50, Pass: true}, res.Rows[0])
	assert.Equal(t, Row{Name: "dry-run count, 3 indexed filters, 1M vehicles", Figure: 2.113, Unit: "ms", Budget: 5, Ratio: 41.2, Baseline: "hand-written loop", Pass: true}, res.Rows[1])
	assert.Equal(t, Row{Name: "dry-run count, residual regex | 1M vehicles", Figure: 171, Unit: "ms", Budget: 150, Ratio: 1.9, Baseline: "per-vehicle expr", Pass: false}, res.Rows[2])
	assert.Equal(t, Row{Name: "device poll GET /vehicle_updates/:vin", Figure: 12040, Unit: "req/s", Budget: 10000, AtLeast: true, Pass: true}, res.Rows[3])

	assert.Equal(t, `| what | figure | budget | vs baseline | result |
|---|---:|---:|---|---|
| validate a 200-character filter | 31.24 µs | ≤ 50 µs | — | pass |
| dry-run count, 3 indexed filters, 1M vehicles | 2.113 ms | ≤ 5 ms | 41.2× hand-written loop | pass |
| dry-run count, residual regex \| 1M vehicles | 171 ms | ≤ 150 ms | 1.9× per-vehicle expr | **FAIL** |
| device poll GET /vehicle_updates/:vin | 12040 req/s | ≥ 10000 req/s | — | pass |
`, Table(res.Rows))
}

// The format written by internal/budget is the one parsed here, whatever the values.
func TestParseWhatBudgetWrites(t *testing.T) {
	for _, l := range []budget.Line{
		{Name: `quoted "name" = with spaces`, Figure: 0.000123, Unit: "MB/s", Budget: 200, AtLeast: true, Ratio: 3.5, Baseline: "io.Copy"},
		{Name: "restart with 1M vehicles", Figure: 18.5, Unit: "s", Budget: 20},
		{Name: "RSS", Figure: 2100, Unit: "Mi B", Budget: 2048},
	} {
		r, err := ParseLine(strings.TrimPrefix(l.String(), "budget: "))
		require.NoError(t, err, l.String())
		assert.Equal(t, Row{Name: l.Name, Figure: l.Figure, Unit: l.Unit, Budget: l.Budget, AtLeast: l.AtLeast, Ratio: l.Ratio, Baseline: l.Baseline, Pass: l.Pass()}, r)
	}
}

func TestBadLinesAreErrors(t *testing.T) {
	for _, s := range []string{`name="x" figure=abc unit=ms budget=1 pass=true`, `name="x unit=ms`, `figure=1 unit=ms budget=1 pass=true`, `name="x" figure=1 unit=ms budget=1 pass=maybe`, `junk`} {
		_, err := ParseLine(s)
		assert.Error(t, err, s)
	}
}

func TestRunFailsOnGoTestFailureAndWithoutBudgets(t *testing.T) {
	in, err := os.ReadFile("testdata/failed.txt")
	require.NoError(t, err)
	var out bytes.Buffer
	err = run(bytes.NewReader(in), &out, false, "", false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "FAIL\tsota/engine")
	assert.Contains(t, out.String(), "--- FAIL: BenchmarkQueue1M-2", "failures are shown even when not verbose")
	assert.NotContains(t, out.String(), "exit status 1")

	err = run(strings.NewReader("PASS\nok  \tsota/x\t0.1s\n"), &out, false, "", false)
	assert.EqualError(t, err, "no budget lines in the input")

	sample, err := os.ReadFile("testdata/sample.txt")
	require.NoError(t, err)
	assert.NoError(t, run(bytes.NewReader(sample), &out, false, "", false))
	assert.EqualError(t, run(bytes.NewReader(sample), &out, false, "", true), "1 budgets not met")
}

func TestRewriteReadme(t *testing.T) {
	table := "| what |\n|---|\n| x |\n"
	block := beginMarker + "\n\n" + table + "\n" + endMarker + "\n"

	// No section: appended at the end.
	assert.Equal(t, "# T\n\n## A\ntext\n\n## Performance\n\n"+block, Rewrite("# T\n\n## A\ntext\n", table))
	// A section without markers keeps its text; the table goes at its end, before the next section.
	in := "# T\n\n## Performance\n\nMeasured by make bench.\n\n## Next\nmore\n"
	got := Rewrite(in, table)
	assert.Equal(t, "# T\n\n## Performance\n\nMeasured by make bench.\n\n"+block+"\n## Next\nmore\n", got)
	// Markers present: only what is between them changes, and rewriting is stable.
	again := Rewrite(got, "| what |\n|---|\n| y |\n")
	assert.Equal(t, strings.Replace(got, "| x |", "| y |", 1), again)
	assert.Equal(t, again, Rewrite(again, "| what |\n|---|\n| y |\n"))

	now = func() time.Time { return time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC) }
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte(in), 0o644))
	sample, err := os.ReadFile("testdata/sample.txt")
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, run(bytes.NewReader(sample), &out, true, readme, false))
	b, err := os.ReadFile(readme)
	require.NoError(t, err)
	assert.Contains(t, string(b), "| dry-run count, 3 indexed filters, 1M vehicles | 2.113 ms | ≤ 5 ms |")
	assert.True(t, strings.HasSuffix(string(b), "\n## Next\nmore\n"))
	assert.Contains(t, out.String(), "ok  \tsota/dsl\t0.412s", "verbose passes every line")
	assert.Contains(t, out.String(), "3 of 4 budgets met")
	assert.Contains(t, string(b), "| device poll GET /vehicle_updates/:vin | 12040 req/s | ≥ 10000 req/s | — | pass |\n\n3 of 4 budgets met (`make bench`, 2026-12-01).\n\n"+endMarker)
}
