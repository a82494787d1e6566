package resolver

import (
	"slices"
	"sort"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
	"sota/store"
)

// The fleet index mirrors the committed vehicle records: rebuilt from the store at start, changed
// only after a transaction commits (see Service.Update).

// loadChunk is how many vehicles a restart or an import hands to the index at once.
const loadChunk = 1 << 16

// catalog is the set of registered package versions, by pkgPart, for bulk paths (restart, import).
type catalog map[string]PackageID

func (c catalog) has(id PackageID) bool { _, ok := c[pkgPart(id)]; return ok }

func loadCatalog(t store.Txn) (catalog, error) {
	c := catalog{}
	err := iterateJSON(t, []byte(pPackage), func(p *Package) error {
		c[pkgPart(p.ID)] = p.ID
		return nil
	})
	return c, err
}

// indexChunk is how many vehicles the index rebuild hands over at once: small, so that few decoded
// vehicles wait in memory for the index.
const indexChunk = 4096

// loadIndex rebuilds the fleet index from the vehicle records.
func (s *Service) loadIndex() error {
	// Reading and decoding the records and indexing them run side by side: the index takes the
	// vehicles in chunks while the next chunk is being read.
	chunks := make(chan []dsl.Vehicle)
	indexed := make(chan struct{})
	go func() {
		defer close(indexed)
		for c := range chunks {
			s.index.PutMany(c)
		}
	}()
	err := s.db.View(func(t store.Txn) error {
		cat, err := loadCatalog(t)
		if err != nil {
			return err
		}
		batch := make([]dsl.Vehicle, 0, indexChunk)
		err = t.Iterate([]byte(pVehicle), func(_, val []byte) error {
			v, legacy, err := decodeVehicleAny(val)
			if err != nil {
				return err
			}
			if legacy != nil {
				s.legacy++
			}
			batch = append(batch, toDSL(v, cat.has))
			if len(batch) == indexChunk {
				chunks <- batch
				batch = make([]dsl.Vehicle, 0, indexChunk)
			}
			return nil
		})
		if err != nil {
			return err
		}
		chunks <- batch
		return nil
	})
	close(chunks)
	<-indexed
	s.index.Optimize()
	return err
}

// toDSL is the vehicle as filters see it: foreign packages left out.
func toDSL(v *vehicleRec, known func(PackageID) bool) dsl.Vehicle {
	out := dsl.Vehicle{VIN: v.VIN, Components: v.Components, Attrs: v.Attrs}
	if len(v.Packages) > 0 {
		out.Packages = make([]dsl.Package, 0, len(v.Packages))
		for _, p := range v.Packages {
			if known(p) {
				out.Packages = append(out.Packages, dsl.Package{Name: p.Name, Version: p.Version})
			}
		}
	}
	return out
}

// indexVehicle queues the index update of a vehicle record written in t.
func (s *Service) indexVehicle(t store.Txn, v *vehicleRec) error {
	var err error
	dv := toDSL(v, func(id PackageID) bool {
		ok, e := t.Has(packageKey(id))
		if e != nil && err == nil {
			err = e
		}
		return ok
	})
	if err != nil {
		return err
	}
	return afterCommit(t, func() { s.index.Put(dv) })
}

// Index is the fleet index (read-only use: Read, ReadView, Get, Len).
func (s *Service) Index() *FleetIndex { return s.index }

// sortedVINs returns the VINs of the ids in bm, sorted.
func sortedVINs(v View, bm *roaring.Bitmap) []string {
	vins := make([]string, 0, bm.GetCardinality())
	it := bm.Iterator()
	for it.HasNext() {
		vins = append(vins, v.VIN(it.Next()))
	}
	sort.Strings(vins)
	return vins
}

// vinsWithPackage lists, sorted, the vehicles that have the registered package version installed.
func (s *Service) vinsWithPackage(id PackageID) []string {
	var vins []string
	s.index.ReadView(func(v View) {
		vins = sortedVINs(v, v.PackageNamed(id.Name, func(ver string) bool { return ver == id.Version }))
	})
	return vins
}

// vinsWithComponent lists, sorted, the vehicles that have the part number installed.
func (s *Service) vinsWithComponent(part string) []string {
	var vins []string
	s.index.ReadView(func(v View) {
		vins = sortedVINs(v, v.Components(func(p string) bool { return strings.EqualFold(p, part) }))
	})
	return vins
}

// foreignVINs lists the vehicles that have an unregistered package of that name (and version, when
// not "") installed.
func foreignVINs(t store.Txn, name, version string) ([]string, error) {
	prefix := pForeign + lower(name) + "/"
	if version != "" {
		prefix += version + "/"
	}
	var vins []string
	err := t.IterateKeys([]byte(prefix), func(key []byte) error {
		parts := splitKey(key, pForeign)
		vins = append(vins, parts[len(parts)-1])
		return nil
	})
	slices.Sort(vins)
	return slices.Compact(vins), err
}
