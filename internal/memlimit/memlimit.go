// Package memlimit sets the Go runtime's soft memory limit of a server process. sotad holds the fleet
// index, Badger's block cache and memtables in memory; with Go's default collector the heap grows to
// about twice what is live before a collection, which at a million vehicles takes the peak RSS past
// ARCHITECTURE.md's 2 GB budget. A soft limit makes the collector work harder as the heap nears it
// instead. sotad applies Default unless told otherwise, and the benchmarks that measure the peak RSS of
// a server-like process apply the same, so that they measure what sotad does.
package memlimit

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Default is the soft memory limit of sotad: three quarters of the 2 GB budget, leaving room for what
// the runtime does not count (memory-mapped store files, stacks, fragmentation).
const Default = "1536MiB"

// Parse reads a size: "off" (no limit), a number of bytes, or a number with a KiB, MiB or GiB suffix.
// It answers math.MaxInt64 for "off".
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return math.MaxInt64, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("memory limit %q: want off, or a positive size such as 1536MiB or 2GiB", s)
	}
	return n * mult, nil
}

// Apply sets the soft memory limit to the size s (see Parse) and answers the limit in effect. The
// GOMEMLIMIT environment variable, when set, wins: the runtime has already applied it.
func Apply(s string) (int64, error) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), nil
	}
	n, err := Parse(s)
	if err != nil {
		return 0, err
	}
	debug.SetMemoryLimit(n)
	return n, nil
}
