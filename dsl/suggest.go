package dsl

import (
	"strings"
	"unicode/utf8"
)

// Suggestions: the nearest name to a misspelt one, by edit distance (optimal string alignment:
// insertions, deletions, substitutions and swaps of two neighbours each cost one), compared
// case-insensitively.

// distance is the optimal string alignment distance between a and b, or max+1 when it is larger
// than max (the computation stops early).
func distance(a, b string, max int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > max || -d > max {
		return max + 1
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			best = min(best, v)
		}
		if best > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// maxDistance is how far a name may be from what was written to be suggested: one edit for short
// words, two from five characters, three from twelve.
func maxDistance(word string) int {
	switch n := utf8.RuneCountInString(word); {
	case n < 5:
		return 1
	case n < 12:
		return 2
	default:
		return 3
	}
}

// nearest keeps the candidate closest to word within maxDistance(word); ties go to the first
// offered. A candidate equal to word (ignoring case) is not a suggestion.
type nearest struct {
	word  string
	lower string
	max   int
	best  string
	dist  int
}

func newNearest(word string) *nearest {
	m := maxDistance(word)
	return &nearest{word: word, lower: strings.ToLower(word), max: m, dist: m + 1}
}

func (n *nearest) offer(candidate string) {
	lc := strings.ToLower(candidate)
	if lc == n.lower {
		return
	}
	if d := distance(n.lower, lc, n.dist-1); d < n.dist {
		n.best, n.dist = candidate, d
	}
}

func (n *nearest) found() bool { return n.best != "" }

// suggestName is the nearest of names to word, or "".
func suggestName(word string, names []string) string {
	n := newNearest(word)
	for _, c := range names {
		n.offer(c)
	}
	return n.best
}
