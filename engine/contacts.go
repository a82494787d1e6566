package engine

// Vehicle contacts: when each vehicle last contacted the server (core/seen/<vin>), the engine's own
// record since the resolver's vehicle record stopped carrying it. The fleet index gets them through
// resolver.SetContacts, for seen_within and the fleet statistics.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
)

// LastSeenResolution is how stale a vehicle's stored lastSeen may get while it keeps polling: a poll
// writes it only when the stored value is older, so a device polling often costs no write per poll.
// With a ConnectedWindow shorter than it, that window is the resolution (seenResolution).
const LastSeenResolution = time.Minute

// seenResolution is how stale a stored lastSeen may get while the vehicle keeps polling: other
// replicas count a vehicle as connected by it (Connected), so it is at most the connected window.
func (s *Service) seenResolution() time.Duration {
	return min(LastSeenResolution, s.opt.ConnectedWindow)
}

func seenKey(vin string) []byte { return []byte(pSeen + vin) }

func encodeSeen(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }

func decodeSeen(b []byte) (time.Time, error) {
	if len(b) != 8 {
		return time.Time{}, fmt.Errorf("engine: corrupt contact record (%d bytes)", len(b))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC(), nil
}

// lastSeen reads the vehicle's stored last contact; zero when it never contacted the server.
func lastSeen(t store.Txn, vin string) (time.Time, error) {
	b, err := t.Get(seenKey(vin))
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return decodeSeen(b)
}

// Seen records a device contact: the vehicle counts as connected (Contact), and its stored lastSeen
// is refreshed when older than the resolution (seenResolution). 400 for a malformed VIN, 404
// missing_vehicle.
func (s *Service) Seen(vin string) error {
	now := s.now()
	res := s.seenResolution()
	if v, ok := s.storedSeen.Load(vin); ok && now.Sub(v.(time.Time)) < res && s.res.VehicleExists(vin) {
		s.Contact(vin)
		return nil
	}
	if err := s.checkVehicle(vin); err != nil {
		return err
	}
	var stored time.Time
	if err := s.db.View(func(t store.Txn) (err error) { stored, err = lastSeen(t, vin); return err }); err != nil {
		return err
	}
	s.Contact(vin)
	if !stored.IsZero() && now.Sub(stored) < res {
		s.storedSeen.Store(vin, stored)
		return nil
	}
	return s.resUpdate(func(t *engineTx, x *resolver.Tx) error {
		if err := x.CheckVehicle(vin); err != nil { // a deletion's cascade removes the contact
			return err
		}
		if err := t.Set(seenKey(vin), encodeSeen(now)); err != nil {
			return err
		}
		s.afterCommit(t, func() {
			s.res.SetContacts([]resolver.Contact{{VIN: vin, At: now}})
			s.storedSeen.Store(vin, now)
		})
		return nil
	})
}

// VehicleState is the engine's state of a vehicle that the vehicle resource shows next to the
// resolver's: its last contact and its data plan (nil: none).
type VehicleState struct {
	LastSeen *time.Time `json:"lastSeen"`
	DataPlan *string    `json:"dataPlan"`
}

// VehicleStates returns the state of each of the vehicles, in the order given (a vehicle the engine
// knows nothing of has an empty state), from one read.
func (s *Service) VehicleStates(vins []string) ([]VehicleState, error) {
	out := make([]VehicleState, len(vins))
	err := s.db.View(func(t store.Txn) error {
		for i, vin := range vins {
			seen, err := lastSeen(t, vin)
			if err != nil {
				return err
			}
			if !seen.IsZero() {
				out[i].LastSeen = &seen
			}
			plan, err := s.vehiclePlan(t, vin)
			if err != nil {
				return err
			}
			if plan != "" {
				out[i].DataPlan = &plan
			}
		}
		return nil
	})
	return out, err
}

// notSeenSince counts the vehicles among vins (sorted) whose last contact is known and older than
// cutoff (a vehicle never seen is not counted: it may not be in service yet), with up to max of them
// as a sample in VIN order.
func (s *Service) notSeenSince(vins []string, cutoff time.Time, max int) (n int, sample []string, err error) {
	check := func(vin string, v []byte) error {
		seen, err := decodeSeen(v)
		if err != nil {
			return err
		}
		if seen.Before(cutoff) {
			n++
			if len(sample) < max {
				sample = append(sample, vin)
			}
		}
		return nil
	}
	err = s.db.View(func(t store.Txn) error {
		if len(vins) < 20000 { // a few point reads
			for _, vin := range vins {
				v, err := t.Get(seenKey(vin))
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if err := check(vin, v); err != nil {
					return err
				}
			}
			return nil
		}
		i := 0 // one merge of the sorted VINs with the contact records
		return t.Iterate([]byte(pSeen), func(k, v []byte) error {
			vin := string(k[len(pSeen):])
			for i < len(vins) && vins[i] < vin {
				i++
			}
			if i < len(vins) && vins[i] == vin {
				return check(vin, v)
			}
			return nil
		})
	})
	return n, sample, err
}

// loadContacts feeds the fleet index with every stored contact, and remembers the recent ones: a
// vehicle polling another replica counts as connected here (Connected).
func (s *Service) loadContacts() error {
	batch := make([]resolver.Contact, 0, 4096)
	recent := s.now().Add(-s.opt.ConnectedWindow - s.seenResolution())
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pSeen), func(k, v []byte) error {
			at, err := decodeSeen(v)
			if err != nil {
				return err
			}
			vin := string(k[len(pSeen):])
			if at.After(recent) {
				s.storedSeen.Store(vin, at)
			}
			batch = append(batch, resolver.Contact{VIN: vin, At: at})
			if len(batch) == cap(batch) {
				s.res.SetContacts(batch)
				batch = batch[:0]
			}
			return nil
		})
	})
	s.res.SetContacts(batch)
	return err
}

// migrateVehicles moves what vehicle records of the resolver's first layout held of the engine's
// state (the last contact and the data plan) into the engine's records, in the transactions that
// rewrite them (resolver.MigrateVehicles). A contact or link the engine already has wins; a data plan
// that no longer exists is not linked.
func (s *Service) migrateVehicles() error {
	n, err := s.res.MigrateVehicles(store.NewPart(func(raw store.Txn) func(*resolver.Tx, []resolver.LegacyVehicle) error {
		return func(x *resolver.Tx, legacy []resolver.LegacyVehicle) error {
			return s.inResolverTx(raw, x, func(t *engineTx) error { return s.adoptLegacy(t, legacy) })
		}
	}))
	if n > 0 {
		s.log.Info("moved the last contact and data plan of vehicle records to the engine's records", "vehicles", n)
	}
	return err
}

func (s *Service) adoptLegacy(t *engineTx, legacy []resolver.LegacyVehicle) error {
	for _, l := range legacy {
		if !l.LastSeen.IsZero() {
			ok, err := t.Has(seenKey(l.VIN))
			if err != nil {
				return err
			}
			if !ok {
				if err := t.Set(seenKey(l.VIN), encodeSeen(l.LastSeen)); err != nil {
					return err
				}
			}
		}
		if l.DataPlan != "" {
			cur, err := s.vehiclePlan(t, l.VIN)
			if err != nil {
				return err
			}
			if cur != "" {
				continue
			}
			p, err := s.plan(t, l.DataPlan)
			if errs.Is(err, "missing_data_plan") {
				continue
			}
			if err != nil {
				return err
			}
			if err := t.Set(vplanKey(l.VIN), []byte(p.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}
