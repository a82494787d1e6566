package resolver

// Replicas. Several sotad processes may share one PostgreSQL store; each keeps its own fleet index
// and compiled-filter cache. The store's change feed (store/changes.go) hands this process the keys
// under fleet/ that other processes wrote, and apply brings the memory up to date by reading their
// current values:
//
//	fleet/v/<vin>                    the vehicle is read again and indexed (or dropped when gone)
//	fleet/fi/<name>/<version>/<vin>  a package was registered or deleted: the vehicle's installed
//	                                 packages became known or foreign, so it is indexed again
//	fleet/f/<name>                   the compiled programs that reference the filter are dropped
//
// Everything else under fleet/ (packages, components, associations, dependencies, filter texts) is
// read from the store by every request, so there is nothing to refresh. A resolve, dry run or
// solution list first catches up with the feed (store.DB.CatchUp, in selection), so it reflects every
// write any replica acknowledged before it; other reads (vehicle lists) follow within the feed's poll
// interval. On Badger the feed does nothing.

import (
	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
	"sota/store"
)

// follow subscribes to the feed; called before loadIndex, whose end calls s.feed.Ready.
func (s *Service) follow() {
	s.feed = s.db.Follow("fleet/", s.applyFeed)
}

// applyFeed brings the index and the program cache up to date with the keys other processes wrote
// (everything, with reload). It holds the write lock, so that it and this process's own writes
// change the index in the order they read the store. On an error the feed hands the keys over again.
func (s *Service) applyFeed(keys [][]byte, reload bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if reload {
		s.programs.invalidateAll()
		return s.reloadAll()
	}
	vins := map[string]bool{}
	for _, k := range keys {
		key := string(k)
		switch {
		case len(key) > len(pVehicle) && key[:len(pVehicle)] == pVehicle:
			vins[key[len(pVehicle):]] = true
		case len(key) > len(pForeign) && key[:len(pForeign)] == pForeign:
			parts := splitKey(k, pForeign) // name, version, vin
			if len(parts) == 3 {
				vins[parts[2]] = true
			}
		case len(key) > len(pFilter) && key[:len(pFilter)] == pFilter:
			s.programs.invalidate(key[len(pFilter):])
		}
	}
	if len(vins) == 0 {
		return nil
	}
	return s.db.View(func(t store.Txn) error {
		cat, err := loadCatalog(t)
		if err != nil {
			return err
		}
		// one round trip for all the vehicles (store.GetMany), not one each: the time to apply is
		// part of how far this replica lags
		list := make([]string, 0, len(vins))
		keys := make([][]byte, 0, len(vins))
		for vin := range vins {
			list = append(list, vin)
			keys = append(keys, vehicleKey(vin))
		}
		vals, err := store.GetMany(t, keys)
		if err != nil {
			return err
		}
		var put []dsl.Vehicle
		for i, vin := range list {
			if vals[i] == nil {
				s.index.Delete(vin)
				continue
			}
			v, err := decodeVehicle(vals[i])
			if err != nil {
				return err
			}
			put = append(put, toDSL(v, cat.has))
		}
		s.index.PutMany(put)
		return nil
	})
}

// reloadAll indexes every stored vehicle again and drops the indexed ones no longer stored (the
// feed could not tell what changed).
func (s *Service) reloadAll() error {
	stored := map[string]bool{}
	err := s.db.View(func(t store.Txn) error {
		cat, err := loadCatalog(t)
		if err != nil {
			return err
		}
		batch := make([]dsl.Vehicle, 0, indexChunk)
		err = t.Iterate([]byte(pVehicle), func(_, val []byte) error {
			v, err := decodeVehicle(val)
			if err != nil {
				return err
			}
			stored[v.VIN] = true
			batch = append(batch, toDSL(v, cat.has))
			if len(batch) == indexChunk {
				s.index.PutMany(batch)
				batch = make([]dsl.Vehicle, 0, indexChunk)
			}
			return nil
		})
		s.index.PutMany(batch)
		return err
	})
	if err != nil {
		return err
	}
	var gone []string
	s.index.ReadView(func(v View) {
		var all *roaring.Bitmap = v.Universe()
		it := all.Iterator()
		for it.HasNext() {
			if vin := v.VIN(it.Next()); !stored[vin] {
				gone = append(gone, vin)
			}
		}
	})
	for _, vin := range gone {
		s.index.Delete(vin)
	}
	return nil
}
