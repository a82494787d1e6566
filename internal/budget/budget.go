// Package budget reports a benchmark's figure against its performance budget of ARCHITECTURE.md as one
// machine-readable line, which cmd/benchtable collects into the table that `make bench` prints and the
// README's performance section shows. Every budget benchmark reports through Report, so the format lives
// here once.
package budget

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Line is one budget row: the measured figure, the budget it is held to, and the ratio against the
// baseline measured in the same run.
type Line struct {
	Name     string  // what was measured, e.g. "dry-run count, 3 indexed filters, 1M vehicles"
	Figure   float64 // the measured value, in Unit
	Unit     string  // e.g. "ms", "µs", "s", "req/s", "MB/s", "MiB"
	Budget   float64 // the budget, in Unit
	AtLeast  bool    // true when the figure must reach the budget (throughput); false when it must stay under it
	Ratio    float64 // baseline time / measured time (how many times faster than the baseline); 0 when none
	Baseline string  // the baseline, e.g. "hand-written loop"; "" when none
}

// Pass tells whether the figure meets its budget.
func (l Line) Pass() bool {
	if l.AtLeast {
		return l.Figure >= l.Budget
	}
	return l.Figure <= l.Budget
}

// String is the line cmd/benchtable parses: `budget: name="…" figure=… unit=… budget=… atleast=… ratio=… baseline="…" pass=…`.
func (l Line) String() string {
	return fmt.Sprintf("budget: name=%q figure=%.4g unit=%s budget=%g atleast=%t ratio=%.3g baseline=%q pass=%t",
		l.Name, l.Figure, strings.ReplaceAll(l.Unit, " ", "_"), l.Budget, l.AtLeast, l.Ratio, l.Baseline, l.Pass())
}

// Report logs the line on the benchmark (benchmark logs are printed without -v) and as metrics.
func Report(tb testing.TB, l Line) {
	tb.Helper()
	tb.Log(l.String())
	if b, ok := tb.(*testing.B); ok {
		b.ReportMetric(l.Figure, strings.ReplaceAll(l.Unit, " ", "_")+"-figure")
		if l.Ratio > 0 {
			b.ReportMetric(l.Ratio, "x-vs-baseline")
		}
	}
}

// StatusKB reads a "Name: N kB" line of /proc/self/status: VmHWM (the peak RSS, which the memory
// budgets are held to), RssAnon, RssFile.
func StatusKB(name string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s line in /proc/self/status", name)
}

// ResetPeakRSS resets the kernel's peak-RSS mark of this process (VmHWM), so that a later StatusKB
// ("VmHWM") measures one stage only, and reports whether it could.
func ResetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
