package resolver

import "strings"

// compareVersions orders SemVer 2.0.0 versions by precedence (build metadata ignored); a version
// that does not parse sorts before every valid one, and two such compare as strings.
func compareVersions(a, b string) int {
	av, aok := splitVersion(a)
	bv, bok := splitVersion(b)
	switch {
	case !aok && !bok:
		return strings.Compare(a, b)
	case !aok:
		return -1
	case !bok:
		return 1
	}
	for i := 0; i < 3; i++ {
		if c := compareNumeric(av.core[i], bv.core[i]); c != 0 {
			return c
		}
	}
	switch {
	case av.pre == "" && bv.pre == "":
		return 0
	case av.pre == "":
		return 1
	case bv.pre == "":
		return -1
	}
	ap, bp := strings.Split(av.pre, "."), strings.Split(bv.pre, ".")
	for i := 0; i < len(ap) && i < len(bp); i++ {
		an, aNum := numericIdent(ap[i])
		bn, bNum := numericIdent(bp[i])
		var c int
		switch {
		case aNum && bNum:
			c = compareNumeric(an, bn)
		case aNum:
			c = -1
		case bNum:
			c = 1
		default:
			c = strings.Compare(ap[i], bp[i])
		}
		if c != 0 {
			return c
		}
	}
	return compareInts(len(ap), len(bp))
}

type splitVer struct {
	core [3]string
	pre  string
}

func splitVersion(s string) (splitVer, bool) {
	var v splitVer
	if ValidVersion(s) != nil {
		return v, false
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre = s[i+1:]
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	copy(v.core[:], parts)
	return v, true
}

func numericIdent(s string) (string, bool) {
	if s == "" {
		return s, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return s, false
		}
	}
	return s, true
}

// compareNumeric compares decimal digit strings without leading zeros of any length.
func compareNumeric(a, b string) int {
	if c := compareInts(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func compareInts(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
