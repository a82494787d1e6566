package memlimit

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"1536MiB": 1536 << 20, "2GiB": 2 << 30, "512KiB": 512 << 10, "1000": 1000, "1000B": 1000, "off": math.MaxInt64, " OFF ": math.MaxInt64} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5MiB", "1.5GiB", "lots", "9999999999GiB"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestApply(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	got, err := Apply(Default)
	if err != nil || got != 1536<<20 || debug.SetMemoryLimit(-1) != 1536<<20 {
		t.Fatalf("Apply(Default) = %d, %v; runtime limit %d", got, err, debug.SetMemoryLimit(-1))
	}
	if _, err := Apply("nonsense"); err == nil {
		t.Fatal("a bad size was applied")
	}
}
