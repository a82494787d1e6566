package dsl

import (
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// Package is one installed package as filters see it.
type Package struct{ Name, Version string }

// Value is an attribute value: a string or a number.
type Value struct {
	Str   string
	Num   float64
	IsNum bool
}

// Vehicle is what a filter is evaluated over. Packages holds known packages only (the caller leaves
// foreign ones out).
type Vehicle struct {
	VIN        string
	Packages   []Package
	Components []string
	Attrs      map[string]Value

	// The fleet state, which the server's engine owns: when the vehicle last called the server (zero:
	// never), the status of its most recent update of each package version it has had updates of,
	// and the moment seen_within is evaluated at (zero: the time of evaluation).
	LastSeen time.Time
	Updates  []UpdateState
	Now      time.Time
}

// UpdateState is the status of a vehicle's most recent update of one package version.
type UpdateState struct {
	Name, Version, Status string
}

// Index answers filter leaves from inverted indexes over a fleet whose vehicles have uint32 ids.
// Returned bitmaps are read-only: the plan clones before it mutates.
type Index interface {
	// Universe is every vehicle id.
	Universe() *roaring.Bitmap
	// VINPrefix is the ids whose VIN starts with prefix.
	VINPrefix(prefix string) *roaring.Bitmap
	// Components is the ids with some installed part number for which match is true.
	Components(match func(part string) bool) *roaring.Bitmap
	// Packages is the ids with one installed package satisfying match.
	Packages(match func(name, version string) bool) *roaring.Bitmap
	// PackageNamed is the ids with an installed package of exactly that name (case-insensitive)
	// whose version satisfies match.
	PackageNamed(name string, match func(version string) bool) *roaring.Bitmap
	// Attr is the ids whose attribute key exists and satisfies match.
	Attr(key string, match func(v Value) bool) *roaring.Bitmap
	// Vehicle returns the vehicle with that id, for residual checks.
	Vehicle(id uint32) *Vehicle
}
