package dsl

import (
	"testing"

	"sort"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// memIndex is a small in-memory Index for tests: inverted maps from each distinct part number,
// package, and attribute value to the ids that have it, and VINs sorted for prefix lookups. (The
// fleet's real index is the resolver's; this one is written independently, as simply as possible.)
type memIndex struct {
	vehicles []*Vehicle
	all      *roaring.Bitmap
	parts    map[string]*roaring.Bitmap
	pkgs     map[Package]*roaring.Bitmap
	attrs    map[string]map[Value]*roaring.Bitmap
	vins     []string // sorted
	vinIDs   map[string][]uint32
}

func newMemIndex(vs []*Vehicle) *memIndex {
	x := &memIndex{vehicles: vs, all: roaring.New(), parts: map[string]*roaring.Bitmap{},
		pkgs: map[Package]*roaring.Bitmap{}, attrs: map[string]map[Value]*roaring.Bitmap{}, vinIDs: map[string][]uint32{}}
	add := func(m *roaring.Bitmap, id uint32) *roaring.Bitmap {
		if m == nil {
			m = roaring.New()
		}
		m.Add(id)
		return m
	}
	for i, v := range vs {
		id := uint32(i)
		x.all.Add(id)
		for _, c := range v.Components {
			x.parts[c] = add(x.parts[c], id)
		}
		for _, p := range v.Packages {
			x.pkgs[p] = add(x.pkgs[p], id)
		}
		for k, a := range v.Attrs {
			if x.attrs[k] == nil {
				x.attrs[k] = map[Value]*roaring.Bitmap{}
			}
			x.attrs[k][a] = add(x.attrs[k][a], id)
		}
		if x.vinIDs[v.VIN] == nil {
			x.vins = append(x.vins, v.VIN)
		}
		x.vinIDs[v.VIN] = append(x.vinIDs[v.VIN], id)
	}
	sort.Strings(x.vins)
	return x
}

func (x *memIndex) Universe() *roaring.Bitmap { return x.all }

func (x *memIndex) VINPrefix(prefix string) *roaring.Bitmap {
	out := roaring.New()
	for i := sort.SearchStrings(x.vins, prefix); i < len(x.vins) && strings.HasPrefix(x.vins[i], prefix); i++ {
		out.AddMany(x.vinIDs[x.vins[i]])
	}
	return out
}

func (x *memIndex) Components(match func(string) bool) *roaring.Bitmap {
	out := roaring.New()
	for part, ids := range x.parts {
		if match(part) {
			out.Or(ids)
		}
	}
	return out
}

func (x *memIndex) Packages(match func(name, version string) bool) *roaring.Bitmap {
	out := roaring.New()
	for p, ids := range x.pkgs {
		if match(p.Name, p.Version) {
			out.Or(ids)
		}
	}
	return out
}

func (x *memIndex) PackageNamed(name string, match func(string) bool) *roaring.Bitmap {
	out := roaring.New()
	for p, ids := range x.pkgs {
		if strings.EqualFold(p.Name, name) && match(p.Version) {
			out.Or(ids)
		}
	}
	return out
}

func (x *memIndex) Attr(key string, match func(Value) bool) *roaring.Bitmap {
	out := roaring.New()
	for v, ids := range x.attrs[key] {
		if match(v) {
			out.Or(ids)
		}
	}
	return out
}

func (x *memIndex) Vehicle(id uint32) *Vehicle { return x.vehicles[id] }

// gramMemIndex is memIndex with the VIN grams, so the plan takes the gram path.
type gramMemIndex struct {
	*memIndex
	grams map[Gram]*roaring.Bitmap
}

func newGramMemIndex(vs []*Vehicle) *gramMemIndex {
	x := &gramMemIndex{memIndex: newMemIndex(vs), grams: map[Gram]*roaring.Bitmap{}}
	for i, v := range vs {
		Grams(v.VIN, func(g Gram) {
			if x.grams[g] == nil {
				x.grams[g] = roaring.New()
			}
			x.grams[g].Add(uint32(i))
		})
	}
	return x
}

func (x *gramMemIndex) VINGram(g Gram) *roaring.Bitmap { return x.grams[g] }

func (x *gramMemIndex) VIN(id uint32) string { return x.vehicles[id].VIN }

// posMemIndex is gramMemIndex with the VIN bytes by position (of VINs up to posMemPositions
// bytes of ASCII; the others are unpositioned), so the plan can answer vin_matches from them.
type posMemIndex struct {
	*gramMemIndex
	at      map[[2]int]*roaring.Bitmap
	lens    map[int]*roaring.Bitmap
	unpos   *roaring.Bitmap
	aligned bool
}

const posMemPositions = 17

func newPosMemIndex(vs []*Vehicle) *posMemIndex {
	x := &posMemIndex{gramMemIndex: newGramMemIndex(vs), at: map[[2]int]*roaring.Bitmap{}, lens: map[int]*roaring.Bitmap{}, unpos: roaring.New()}
	bm := func(m map[[2]int]*roaring.Bitmap, k [2]int) *roaring.Bitmap {
		if m[k] == nil {
			m[k] = roaring.New()
		}
		return m[k]
	}
	for i, v := range vs {
		ascii := len(v.VIN) <= posMemPositions
		for k := 0; k < len(v.VIN); k++ {
			ascii = ascii && v.VIN[k] < 0x80
		}
		if !ascii {
			x.unpos.Add(uint32(i))
			continue
		}
		for k := 0; k < len(v.VIN); k++ {
			bm(x.at, [2]int{k, int(v.VIN[k])}).Add(uint32(i))
		}
		if x.lens[len(v.VIN)] == nil {
			x.lens[len(v.VIN)] = roaring.New()
		}
		x.lens[len(v.VIN)].Add(uint32(i))
	}
	return x
}

func (x *posMemIndex) VINPositions() int                     { return posMemPositions }
func (x *posMemIndex) VINByte(p int, c byte) *roaring.Bitmap { return x.at[[2]int{p, int(c)}] }
func (x *posMemIndex) VINLen(n int) *roaring.Bitmap          { return x.lens[n] }
func (x *posMemIndex) VINUnpositioned() *roaring.Bitmap      { return x.unpos }

// allPositions makes the plan answer every vin_matches leaf it can from the positions, however
// few its gram candidates, until the test ends.
func allPositions(t *testing.T) {
	from, density := positionsFrom, positionsDensity
	positionsFrom, positionsDensity = 0, 1<<40
	t.Cleanup(func() { positionsFrom, positionsDensity = from, density })
}

// Terms implements Vocabulary for lint and completion tests.
func (x *memIndex) Terms(kind TermKind, of string, fn func(string, int) bool) {
	counts := map[string]*roaring.Bitmap{}
	addTo := func(term string, ids *roaring.Bitmap) {
		if counts[term] == nil {
			counts[term] = roaring.New()
		}
		counts[term].Or(ids)
	}
	switch kind {
	case TermPackage:
		for p, ids := range x.pkgs {
			addTo(p.Name, ids)
		}
	case TermVersion:
		for p, ids := range x.pkgs {
			if strings.EqualFold(p.Name, of) {
				addTo(p.Version, ids)
			}
		}
	case TermComponent:
		for part, ids := range x.parts {
			addTo(part, ids)
		}
	case TermAttribute:
		for k, vals := range x.attrs {
			for _, ids := range vals {
				addTo(k, ids)
			}
		}
	}
	terms := make([]string, 0, len(counts))
	for t := range counts {
		terms = append(terms, t)
	}
	sort.Strings(terms)
	for _, t := range terms {
		if !fn(t, int(counts[t].GetCardinality())) {
			return
		}
	}
}

// Values implements Vocabulary.
func (x *memIndex) Values(key string, fn func(Value, int) bool) {
	for v, ids := range x.attrs[key] {
		if !fn(v, int(ids.GetCardinality())) {
			return
		}
	}
}

// HasVINPrefix implements Vocabulary.
func (x *memIndex) HasVINPrefix(prefix string) bool { return !x.VINPrefix(prefix).IsEmpty() }

// Now, SeenSince and UpdateStatus make memIndex a FleetStateIndex: the generated vehicles' own
// state, evaluated at genNow.
func (x *memIndex) Now() time.Time { return genNow }

func (x *memIndex) SeenSince(t time.Time) *roaring.Bitmap {
	out := roaring.New()
	for i, v := range x.vehicles {
		if !v.LastSeen.IsZero() && (v.LastSeen.Equal(t) || v.LastSeen.After(t)) {
			out.Add(uint32(i))
		}
	}
	return out
}

func (x *memIndex) UpdateStatus(name, version, status string) *roaring.Bitmap {
	out := roaring.New()
	for i, v := range x.vehicles {
		latest := ""
		for _, u := range v.Updates {
			if strings.EqualFold(u.Name, name) && u.Version == version {
				latest = u.Status
			}
		}
		if latest == status {
			out.Add(uint32(i))
		}
	}
	return out
}

// withoutFleetState hides the fleet-state bitmaps of an index: the plan checks those leaves vehicle
// by vehicle.
type withoutFleetState struct{ Index }
