package resolver

import (
	"sort"
	"strings"

	"sota/dsl"
	"sota/store"
)

// The fleet's vocabulary for filter authoring: lint warns about names no vehicle has and completion
// offers the names vehicles have, both from the index (distinct terms with their bitmaps), never by
// scanning vehicles.

// term is a distinct term with the number of vehicles that have it.
type term struct {
	s string
	n int
}

// Terms implements dsl.Vocabulary. The terms are copied under the read lock and fn runs after it is
// released, so fn may call the index again.
func (x *FleetIndex) Terms(kind dsl.TermKind, of string, fn func(term string, vehicles int) bool) {
	for _, t := range x.terms(kind, of) {
		if !fn(t.s, t.n) {
			return
		}
	}
}

func (x *FleetIndex) terms(kind dsl.TermKind, of string) []term {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []term
	switch kind {
	case dsl.TermPackage:
		out = make([]term, 0, len(x.byName))
		for _, pids := range x.byName {
			n := 0
			for _, pid := range pids {
				n += int(x.pvs.bms[pid].GetCardinality())
			}
			out = append(out, term{x.pvs.vals[pids[0]].Name, n})
		}
		out = append(out, x.stateTerms(kind, out)...)
	case dsl.TermVersion:
		for _, pid := range x.byName[strings.ToLower(of)] {
			out = append(out, term{x.pvs.vals[pid].Version, int(x.pvs.bms[pid].GetCardinality())})
		}
	case dsl.TermComponent:
		for i, bm := range x.parts.bms {
			if bm != nil {
				out = append(out, term{x.parts.vals[i], int(bm.GetCardinality())})
			}
		}
	case dsl.TermAttribute:
		out = make([]term, 0, len(x.attrs))
		for k, vals := range x.attrs {
			n := 0
			for _, e := range vals {
				n += int(e.bm.GetCardinality())
			}
			out = append(out, term{k, n})
		}
	}
	return out
}

// Values implements dsl.Vocabulary: the distinct values of an attribute key.
func (x *FleetIndex) Values(key string, fn func(v dsl.Value, vehicles int) bool) {
	type value struct {
		v dsl.Value
		n int
	}
	x.mu.RLock()
	vals := make([]value, 0, len(x.attrs[key]))
	for _, e := range x.attrs[key] {
		vals = append(vals, value{e.val, int(e.bm.GetCardinality())})
	}
	x.mu.RUnlock()
	for _, v := range vals {
		if !fn(v.v, v.n) {
			return
		}
	}
}

// HasVINPrefix implements dsl.Vocabulary.
func (x *FleetIndex) HasVINPrefix(prefix string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return !view{x}.VINPrefix(prefix).IsEmpty()
}

// FilterNames lists the saved filters' names, sorted: with LookupFilter it makes the Service a
// dsl.FilterLister, so that an unknown reference suggests the nearest name and completion offers them.
func (s *Service) FilterNames() []string {
	var names []string
	s.db.View(func(t store.Txn) error {
		return iterateJSON(t, []byte(pFilter), func(f *Filter) error {
			names = append(names, f.Name)
			return nil
		})
	})
	sort.Strings(names)
	return names
}

// Vocabulary is the fleet's vocabulary for lint and completion: the index's distinct names.
func (s *Service) Vocabulary() dsl.Vocabulary { return s.index }
