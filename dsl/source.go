package dsl

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Pos is a position in a filter's source: byte Offset, 1-based Line, and 1-based Column counted in
// characters (runes), so that a caret under the source line points at the right place.
type Pos struct {
	Offset int
	Line   int
	Column int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }

// Limits the parser and the checker enforce.
const (
	MaxLength = 64 << 10 // bytes of source
	MaxDepth  = 256      // nesting: each parenthesis level and each NOT counts one
	MaxErrors = 10       // errors reported for one source; the rest are dropped
	// MaxExpanded bounds the nodes of a filter with its references inlined (what Compile builds);
	// one filter of MaxLength bytes has fewer than 22,000.
	MaxExpanded = 1 << 15
)

// Error is one positioned problem in a filter: where it is, the offending token as written (empty at
// the end of the input), and a message that says what was expected.
// It encodes to JSON as {"line","column","message"}, the shape of the 406 body's "errors".
type Error struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Offset  int    `json:"-"`
	Token   string `json:"-"`
	Message string `json:"message"`
	// Length is how many bytes of the source the error covers from Offset (0: a point).
	Length int `json:"-"`
	// Suggestion, when not empty, is the text that could replace the source's [Offset, Offset+Length)
	// (the message says "did you mean …?"); editors offer it as a quick fix.
	Suggestion string `json:"-"`
	// More is how many further errors the list left out after this one (set on the last error of a
	// capped ErrorList).
	More int    `json:"-"`
	line string // the source line the error is on, for the caret snippet
}

// Error prints the source line and, under it, a caret at the column followed by "line:column: message".
func (e *Error) Error() string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e *Error) write(b *strings.Builder) {
	b.WriteString(e.line)
	b.WriteByte('\n')
	// Keep tabs so that the caret lines up under the source line in a terminal.
	col := 1
	for _, r := range e.line {
		if col >= e.Column {
			break
		}
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
		col++
	}
	for ; col < e.Column; col++ {
		b.WriteByte(' ')
	}
	fmt.Fprintf(b, "^ %d:%d: %s", e.Line, e.Column, e.Message)
	if e.More > 0 {
		fmt.Fprintf(b, "\n%s", moreErrors(e.More))
	}
}

func moreErrors(n int) string {
	if n == 1 {
		return "… and 1 more error"
	}
	return fmt.Sprintf("… and %d more errors", n)
}

// Short is "line:column: message", without the source snippet.
func (e *Error) Short() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message) }

// ErrorList is every error found in one filter, in source order. Parse, Check and Compile return it.
type ErrorList []*Error

// Error prints every error with its caret snippet, one after the other.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		e.write(&b)
	}
	return b.String()
}

// Short is every error as "line:column: message", joined with "; ".
func (l ErrorList) Short() string {
	parts := make([]string, len(l), len(l)+1)
	for i, e := range l {
		parts[i] = e.Short()
	}
	if len(l) > 0 && l[len(l)-1].More > 0 {
		parts = append(parts, moreErrors(l[len(l)-1].More))
	}
	return strings.Join(parts, "; ")
}

// capErrors sorts errs by position and keeps the first MaxErrors; the last one kept says how many
// were left out, counting dropped (errors already left out before the list was built).
func capErrors(errs ErrorList, dropped int) ErrorList {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Offset < errs[j].Offset })
	if len(errs) > MaxErrors {
		dropped += len(errs) - MaxErrors
		errs = errs[:MaxErrors]
	}
	if dropped > 0 && len(errs) > 0 {
		errs[len(errs)-1].More = dropped
	}
	return errs
}

// source is the text of one filter with a line table for turning offsets into positions.
type source struct {
	text  string
	lines []int // byte offset at which each line starts
}

func newSource(text string) *source {
	s := &source{text: text, lines: []int{0}}
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// pos converts a byte offset into a position.
func (s *source) pos(off int) Pos {
	if off > len(s.text) {
		off = len(s.text)
	}
	lo, hi := 0, len(s.lines)-1
	for lo < hi { // last line start <= off
		mid := (lo + hi + 1) / 2
		if s.lines[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	start := s.lines[lo]
	return Pos{Offset: off, Line: lo + 1, Column: utf8.RuneCountInString(s.text[start:off]) + 1}
}

// line is the text of the 1-based line n, without its line break.
func (s *source) line(n int) string {
	if n < 1 || n > len(s.lines) {
		return ""
	}
	start := s.lines[n-1]
	end := len(s.text)
	if n < len(s.lines) {
		end = s.lines[n] - 1
	}
	return strings.TrimSuffix(s.text[start:end], "\r")
}

// errorAt builds an error at byte offset off.
func (s *source) errorAt(off int, token, format string, args ...any) *Error {
	p := s.pos(off)
	return &Error{Line: p.Line, Column: p.Column, Offset: off, Token: token, Message: fmt.Sprintf(format, args...), line: s.line(p.Line)}
}
