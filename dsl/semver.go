package dsl

import (
	"errors"
	"fmt"
	"strings"
)

// Version is a parsed Semantic Versioning 2.0.0 version. The numeric parts are kept as digit strings,
// so that precedence is exact for numbers of any size.
type Version struct {
	major, minor, patch string
	pre                 []string
	build               string
	text                string
}

// ParseVersion parses a SemVer 2.0.0 version: MAJOR.MINOR.PATCH without leading zeros, an optional
// -pre-release of dot-separated identifiers and an optional +build. "v1.0.0" and "1.0" are errors.
func ParseVersion(s string) (Version, error) {
	v := Version{text: s}
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.build = rest[i+1:]
		rest = rest[:i]
		if err := checkIdents(v.build, false); err != nil {
			return Version{}, fmt.Errorf("invalid version %q: build metadata %v", s, err)
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		pre := rest[i+1:]
		rest = rest[:i]
		if err := checkIdents(pre, true); err != nil {
			return Version{}, fmt.Errorf("invalid version %q: pre-release %v", s, err)
		}
		v.pre = strings.Split(pre, ".")
	}
	var parts [3]string
	for i := range parts {
		end := strings.IndexByte(rest, '.')
		if i == 2 {
			end = len(rest)
		} else if end < 0 {
			return Version{}, fmt.Errorf("invalid version %q: expected MAJOR.MINOR.PATCH such as 1.2.3", s)
		}
		parts[i], rest = rest[:end], rest[min(end+1, len(rest)):]
	}
	for _, p := range parts {
		if !isNumeric(p) {
			return Version{}, fmt.Errorf("invalid version %q: expected MAJOR.MINOR.PATCH such as 1.2.3", s)
		}
		if len(p) > 1 && p[0] == '0' {
			return Version{}, fmt.Errorf("invalid version %q: %q has a leading zero", s, p)
		}
	}
	v.major, v.minor, v.patch = parts[0], parts[1], parts[2]
	return v, nil
}

// checkIdents checks dot-separated identifiers of [0-9A-Za-z-]; numeric pre-release identifiers
// may not have leading zeros.
func checkIdents(s string, pre bool) error {
	if s == "" {
		return errors.New("is empty")
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return errors.New("has an empty identifier")
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(isDigit(c) || isLetter(c) || c == '-') {
				return fmt.Errorf("has %q, expected only letters, digits, '-' and '.'", string(rune(c)))
			}
		}
		if pre && isNumeric(id) && len(id) > 1 && id[0] == '0' {
			return fmt.Errorf("identifier %q has a leading zero", id)
		}
	}
	return nil
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// String is the version as it was written.
func (v Version) String() string { return v.text }

// Prerelease is the pre-release part without its '-', or "".
func (v Version) Prerelease() string { return strings.Join(v.pre, ".") }

// Build is the build metadata without its '+', or "". It takes no part in precedence.
func (v Version) Build() string { return v.build }

// Compare orders by SemVer precedence: -1, 0 or +1. Build metadata is ignored.
func (v Version) Compare(w Version) int {
	if c := cmpNumeric(v.major, w.major); c != 0 {
		return c
	}
	if c := cmpNumeric(v.minor, w.minor); c != 0 {
		return c
	}
	if c := cmpNumeric(v.patch, w.patch); c != 0 {
		return c
	}
	switch {
	case len(v.pre) == 0 && len(w.pre) == 0:
		return 0
	case len(v.pre) == 0:
		return 1
	case len(w.pre) == 0:
		return -1
	}
	for i := 0; i < len(v.pre) && i < len(w.pre); i++ {
		a, b := v.pre[i], w.pre[i]
		an, bn := isNumeric(a), isNumeric(b)
		var c int
		switch {
		case an && bn:
			c = cmpNumeric(a, b)
		case an:
			c = -1
		case bn:
			c = 1
		default:
			c = strings.Compare(a, b)
		}
		if c != 0 {
			return c
		}
	}
	return cmpInt(len(v.pre), len(w.pre))
}

// cmpNumeric compares digit strings without leading zeros as numbers.
func cmpNumeric(a, b string) int {
	if len(a) != len(b) {
		return cmpInt(len(a), len(b))
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CompareVersions orders two version strings by SemVer precedence. An invalid version sorts before
// every valid one; two invalid ones compare byte-wise, so that the order is total.
func CompareVersions(a, b string) int {
	va, ea := ParseVersion(a)
	vb, eb := ParseVersion(b)
	switch {
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return -1
	case eb != nil:
		return 1
	}
	return va.Compare(vb)
}

// compareOp applies a comparison operator to the result of a three-way comparison.
func compareOp(op CmpOp, c int) bool {
	switch op {
	case OpEq:
		return c == 0
	case OpNe:
		return c != 0
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	case OpGe:
		return c >= 0
	}
	return false
}

// Range is a version constraint such as ">=1.2.0 <2.0.0": comparators that must all hold. The zero
// Range has no comparators and contains every valid version.
type Range struct {
	spec *rangeSpec
}

type rangeSpec struct {
	ops  []CmpOp
	vers []Version
}

var rangeOps = []CmpOp{OpEq, OpNe, OpLe, OpGe, OpLt, OpGt} // two-character operators first

// ParseRange parses space-separated comparators (= == != < <= > >=) each followed by a version,
// with or without a space between them; a bare version means ==.
func ParseRange(s string) (Range, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return Range{}, fmt.Errorf("invalid range %q: expected comparators such as \">=1.2.0 <2.0.0\"", s)
	}
	spec := &rangeSpec{}
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		op := OpEq
		for _, o := range rangeOps {
			if strings.HasPrefix(f, string(o)) {
				op, f = o, f[len(o):]
				break
			}
		}
		if op == OpEq && strings.HasPrefix(f, "=") { // single '=' means ==
			f = f[1:]
		}
		if f == "" { // operator and version separated by a space
			if i+1 >= len(fields) {
				return Range{}, fmt.Errorf("invalid range %q: %s needs a version after it", s, op)
			}
			i++
			f = fields[i]
		}
		v, err := ParseVersion(f)
		if err != nil {
			return Range{}, fmt.Errorf("invalid range %q: %v", s, err)
		}
		spec.ops = append(spec.ops, op)
		spec.vers = append(spec.vers, v)
	}
	return Range{spec: spec}, nil
}

// Contains reports whether version is valid and satisfies every comparator.
func (r Range) Contains(version string) bool {
	v, err := ParseVersion(version)
	if err != nil {
		return false
	}
	return r.ContainsVersion(v)
}

// ContainsVersion is Contains for a parsed version.
func (r Range) ContainsVersion(v Version) bool {
	if r.spec == nil {
		return true
	}
	for i, op := range r.spec.ops {
		if !compareOp(op, v.Compare(r.spec.vers[i])) {
			return false
		}
	}
	return true
}

// IsZero reports whether r is the zero Range (no comparators).
func (r Range) IsZero() bool { return r.spec == nil }

// String is the canonical form: comparators separated by single spaces, ">=1.2.0 <2.0.0".
func (r Range) String() string {
	if r.spec == nil {
		return ""
	}
	parts := make([]string, len(r.spec.ops))
	for i, op := range r.spec.ops {
		parts[i] = string(op) + r.spec.vers[i].text
	}
	return strings.Join(parts, " ")
}
