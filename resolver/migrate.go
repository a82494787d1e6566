package resolver

import (
	"errors"

	"sota/store"
)

// migrateChunk is how many vehicle records one transaction of MigrateVehicles rewrites.
const migrateChunk = 2000

// MigrateVehicles rewrites the vehicle records of layout 1 (which also held the engine's last contact
// and data plan of the vehicle) in layout 2, in transactions of a few thousand vehicles. In each, op
// (the engine's part) gets what those records held of its state, and stores it in its own records:
// a record is rewritten only in the transaction that hands its state over, so a stop half-way loses
// nothing and the next start goes on. It returns how many records it rewrote; with none of layout 1
// at start it reads nothing.
func (s *Service) MigrateVehicles(op *store.Part[func(x *Tx, legacy []LegacyVehicle) error]) (int, error) {
	if s.legacy == 0 {
		return 0, nil
	}
	var vins []string
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pVehicle), func(k, v []byte) error {
			if len(v) > 0 && v[0] == vehicleLayout1 {
				vins = append(vins, string(k[len(pVehicle):]))
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for len(vins) > 0 {
		chunk := vins[:min(migrateChunk, len(vins))]
		vins = vins[len(chunk):]
		var legacy []LegacyVehicle
		err := s.write(func(t store.Txn) error {
			legacy = make([]LegacyVehicle, 0, len(chunk))
			for _, vin := range chunk {
				b, err := t.Get(vehicleKey(vin))
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				v, l, err := decodeVehicleAny(b)
				if err != nil {
					return err
				}
				if l == nil {
					continue
				}
				if err := putVehicle(t, v); err != nil { // the same vehicle: the index is unchanged
					return err
				}
				legacy = append(legacy, *l)
			}
			return op.In(rawTxn(t))(s.txOf(t), legacy)
		})
		if err != nil {
			return n, err
		}
		n += len(legacy)
	}
	s.legacy = 0
	return n, nil
}
