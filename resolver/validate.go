package resolver

import (
	"regexp"
	"strconv"

	"sota/errs"
)

// The input rules of the API contract (API.md, Conventions), in one place.

func isLetterOrDigit(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// ValidVIN checks a VIN: 17 characters of A-Z and 0-9 except I, O and Q.
func ValidVIN(vin string) error {
	ok := len(vin) == 17
	for i := 0; ok && i < len(vin); i++ {
		c := vin[i]
		ok = (c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') && c != 'I' && c != 'O' && c != 'Q'
	}
	if !ok {
		return errs.InvalidEntity("Invalid VIN %q: a VIN is 17 characters of A-Z and 0-9 except I, O and Q", vin)
	}
	return nil
}

// ValidFilterName checks a filter name: 2 to 100 letters or digits.
func ValidFilterName(name string) error {
	ok := len(name) >= 2 && len(name) <= 100
	for i := 0; ok && i < len(name); i++ {
		ok = isLetterOrDigit(name[i])
	}
	if !ok {
		return errs.InvalidEntity("Invalid filter name %q: 2 to 100 letters or digits", name)
	}
	return nil
}

// ValidPartNumber checks a component part number: 1 to 30 letters or digits.
func ValidPartNumber(part string) error {
	ok := len(part) >= 1 && len(part) <= 30
	for i := 0; ok && i < len(part); i++ {
		ok = isLetterOrDigit(part[i])
	}
	if !ok {
		return errs.InvalidEntity("Invalid part number %q: 1 to 30 letters or digits", part)
	}
	return nil
}

// ValidPackageName checks a package name: 1 to 100 of letters, digits, '-', '+', '.', '_', and not
// . or ..
func ValidPackageName(name string) error {
	ok := len(name) >= 1 && len(name) <= 100
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = isLetterOrDigit(c) || c == '-' || c == '+' || c == '.' || c == '_'
	}
	if !ok {
		return errs.InvalidEntity("Invalid package name %q: 1 to 100 of letters, digits, '-', '+', '.', '_'", name)
	}
	if name == "." || name == ".." {
		// devices store a package under its name: these would be their packages folder or its parent
		return errs.InvalidEntity("Invalid package name %q: . and .. name folders, not packages", name)
	}
	return nil
}

// semverRE is the regular expression of semver.org for Semantic Versioning 2.0.0.
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// ValidVersion checks a version: Semantic Versioning 2.0.0 (1.0.0, 1.2.3-rc.1+b7; not 1.0, not v1.0.0).
func ValidVersion(v string) error {
	if len(v) > 100 || !semverRE.MatchString(v) {
		return errs.InvalidEntity("Invalid version %q: versions follow Semantic Versioning 2.0.0 (e.g. 1.2.3 or 1.2.3-rc.1)", v)
	}
	return nil
}

// ValidPackageID checks a package name and version.
func ValidPackageID(id PackageID) error {
	if err := ValidPackageName(id.Name); err != nil {
		return err
	}
	return ValidVersion(id.Version)
}

// validRegex compiles a search or filter regex (RE2, case-sensitive, unanchored).
func validRegex(param, re string) (*regexp.Regexp, error) {
	r, err := regexp.Compile(re)
	if err != nil {
		return nil, errs.InvalidEntity("Invalid regular expression in %s: %v", param, err)
	}
	return r, nil
}

// Page is a window of a sorted list.
type Page struct {
	Limit  int
	Offset int
}

// Paging limits of list endpoints.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// ParsePage reads the limit and offset query parameters ("" = default: limit 1000, offset 0;
// limit at most 10000).
func ParsePage(limit, offset string) (Page, error) {
	p := Page{Limit: DefaultLimit}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		if err != nil || n < 0 || n > MaxLimit {
			return p, errs.InvalidEntity("Invalid limit %q: a number from 0 to %d", limit, MaxLimit)
		}
		p.Limit = n
	}
	if offset != "" {
		n, err := strconv.Atoi(offset)
		if err != nil || n < 0 {
			return p, errs.InvalidEntity("Invalid offset %q: a number from 0", offset)
		}
		p.Offset = n
	}
	return p, nil
}

// window returns the bounds [lo, hi) of the page in a list of n items.
func (p Page) window(n int) (lo, hi int) {
	lo = min(p.Offset, n)
	hi = min(lo+p.Limit, n)
	return lo, hi
}

func pageOf[T any](list []T, p Page) []T {
	lo, hi := p.window(len(list))
	return list[lo:hi:hi]
}

func missingVehicle(vin string) error {
	return errs.New(errs.NotFound, "missing_vehicle", "VIN does not exist: %s", vin)
}

func packageNotFound(id PackageID) error {
	return errs.New(errs.NotFound, "package_not_found", "Package ID does not exist: %s", id)
}

func missingComponent(part string) error {
	return errs.New(errs.NotFound, "missing_component", "Component does not exist: %s", part)
}

func filterNotFound(name string) error {
	return errs.New(errs.NotFound, "filter_not_found", "Filter label does not exist: %s", name)
}

func duplicate(format string, args ...any) error {
	return errs.New(errs.Conflict, "duplicate_entry", format, args...)
}
