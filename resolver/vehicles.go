package resolver

import (
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"sota/dsl"
	"sota/errs"
	"sota/store"
)

// PutVehicle creates the vehicle, or keeps it as it is when it exists.
func (s *Service) PutVehicle(vin string) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		ok, err := t.Has(vehicleKey(vin))
		if err != nil || ok {
			return err
		}
		if err := s.writeVehicle(t, &vehicleRec{VIN: vin}); err != nil {
			return err
		}
		return s.vehicleCreated(t, vin)
	})
}

// PutVehicleAttributes creates the vehicle when it is new and gives it exactly attrs, in one
// transaction (PUT /vehicles/:vin with a body).
func (s *Service) PutVehicleAttributes(vin string, attrs Attributes) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	if attrs == nil {
		attrs = Attributes{}
	}
	return s.write(func(t store.Txn) error {
		v, err := getVehicle(t, vin)
		if errors.Is(err, store.ErrNotFound) {
			if err := s.writeVehicle(t, &vehicleRec{VIN: vin, Attrs: attrs}); err != nil {
				return err
			}
			return s.vehicleCreated(t, vin)
		}
		if err != nil {
			return err
		}
		nv := *v
		nv.Attrs = attrs
		return s.writeVehicle(t, &nv)
	})
}

// CreateVehicle creates the vehicle; an existing VIN is a duplicate_entry conflict.
func (s *Service) CreateVehicle(vin string) (Vehicle, error) {
	if err := ValidVIN(vin); err != nil {
		return Vehicle{}, err
	}
	rec := &vehicleRec{VIN: vin}
	err := s.write(func(t store.Txn) error {
		ok, err := t.Has(vehicleKey(vin))
		if err != nil {
			return err
		}
		if ok {
			return duplicate("VIN already exists: %s", vin)
		}
		if err := s.writeVehicle(t, rec); err != nil {
			return err
		}
		return s.vehicleCreated(t, vin)
	})
	if err != nil {
		return Vehicle{}, err
	}
	return rec.view(), nil
}

// GetVehicle returns one vehicle with its installed packages and components.
func (s *Service) GetVehicle(vin string) (Vehicle, error) {
	if err := ValidVIN(vin); err != nil {
		return Vehicle{}, err
	}
	var v *vehicleRec
	err := s.db.View(func(t store.Txn) (err error) {
		v, err = s.loadVehicle(t, vin)
		return err
	})
	if err != nil {
		return Vehicle{}, err
	}
	return v.view(), nil
}

// VehicleExists reports whether the VIN is registered.
func (s *Service) VehicleExists(vin string) bool {
	_, ok := s.index.ID(vin)
	return ok
}

// VehicleQuery selects vehicles; empty fields select everything. All given criteria must hold.
type VehicleQuery struct {
	Regex          string // unanchored, case-sensitive, on the VIN
	PackageName    string // installed package of this name (case-insensitive) ...
	PackageVersion string // ... and, when set, this exact version (needs PackageName)
	Component      string // installed part number (case-insensitive)
	Expression     string // a filter expression the vehicles match (406 invalid_filter when invalid)
}

// ListVehicles returns the page of vehicles matching q, sorted by VIN, and how many match in all.
func (s *Service) ListVehicles(q VehicleQuery, p Page) ([]Vehicle, int, error) {
	var re *regexp.Regexp
	if q.Regex != "" {
		r, err := validRegex("regex", q.Regex)
		if err != nil {
			return nil, 0, err
		}
		re = r
	}
	if q.PackageVersion != "" && q.PackageName == "" {
		return nil, 0, errs.InvalidEntity("packageVersion needs packageName")
	}
	if q.PackageName != "" {
		if err := ValidPackageName(q.PackageName); err != nil {
			return nil, 0, err
		}
	}
	if q.PackageVersion != "" {
		if err := ValidVersion(q.PackageVersion); err != nil {
			return nil, 0, err
		}
	}
	if q.Component != "" {
		if err := ValidPartNumber(q.Component); err != nil {
			return nil, 0, err
		}
	}
	var prog *dsl.Program
	if q.Expression != "" {
		err := s.db.View(func(t store.Txn) (err error) {
			prog, err = s.compile(t, q.Expression)
			return err
		})
		if err != nil {
			return nil, 0, err
		}
	}
	var vins []string
	var err error
	var matched *roaring.Bitmap // the ids the expression selects
	page, total := []string(nil), -1
	s.index.ReadView(func(v View) {
		var bm *roaring.Bitmap // nil: every vehicle
		if prog != nil {
			matched = prog.Select(v)
			bm = matched
		}
		if q.Component != "" {
			bm = and(bm, v.Components(func(p string) bool { return strings.EqualFold(p, q.Component) }))
		}
		if q.PackageName != "" {
			bm = and(bm, v.PackageNamed(q.PackageName, func(ver string) bool { return q.PackageVersion == "" || ver == q.PackageVersion }))
		}
		if bm == nil {
			bm = v.Universe()
		}
		if q.PackageName == "" && re == nil {
			// Every criterion is a bitmap: the count is its cardinality and only the page is
			// looked up, in VIN order (dryrun.go), however many match.
			total = int(bm.GetCardinality())
			lo, hi := p.window(total)
			for _, id := range s.index.firstByVIN(bm, hi)[lo:] {
				page = append(page, v.VIN(id))
			}
			return
		}
		it := bm.Iterator()
		for it.HasNext() {
			if vin := v.VIN(it.Next()); re == nil || re.MatchString(vin) {
				vins = append(vins, vin)
			}
		}
	})
	if q.PackageName != "" {
		// Foreign installs count for the search too (the index holds known packages only).
		err = s.db.View(func(t store.Txn) error {
			foreign, err := foreignVINs(t, q.PackageName, q.PackageVersion)
			if err != nil {
				return err
			}
			for _, vin := range foreign {
				v, err := getVehicle(t, vin)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if matched != nil {
					if id, ok := s.index.ID(vin); !ok || !matched.Contains(id) {
						continue
					}
				}
				if (re == nil || re.MatchString(vin)) && (q.Component == "" || slices.ContainsFunc(v.Components, func(c string) bool { return strings.EqualFold(c, q.Component) })) {
					vins = append(vins, vin)
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, 0, err
	}
	if total < 0 {
		slices.Sort(vins)
		vins = slices.Compact(vins)
		page, total = pageOf(vins, p), len(vins)
	}
	out := make([]Vehicle, 0, len(page))
	err = s.db.View(func(t store.Txn) error {
		for _, vin := range page {
			v, err := getVehicle(t, vin)
			if errors.Is(err, store.ErrNotFound) {
				continue // deleted since
			}
			if err != nil {
				return err
			}
			out = append(out, v.view())
		}
		return nil
	})
	return out, total, err
}

// DeleteVehicle removes the vehicle with its installed packages and components and its data-plan
// link, and lets the engine cancel its pending updates, in one transaction.
func (s *Service) DeleteVehicle(vin string) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		v, err := s.loadVehicle(t, vin)
		if err != nil {
			return err
		}
		for _, id := range v.Packages {
			if err := t.Delete(foreignKey(id, vin)); err != nil {
				return err
			}
		}
		if err := t.Delete(vehicleKey(vin)); err != nil {
			return err
		}
		if err := s.vehicleDeleted(t, vin); err != nil {
			return err
		}
		return afterCommit(t, func() { s.index.Delete(vin) })
	})
}

// loadVehicle reads a vehicle; a missing one is missing_vehicle.
func (s *Service) loadVehicle(t store.Txn, vin string) (*vehicleRec, error) {
	v, err := getVehicle(t, vin)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missingVehicle(vin)
	}
	return v, err
}

// writeVehicle stores the record and queues its index update.
func (s *Service) writeVehicle(t store.Txn, v *vehicleRec) error {
	if err := putVehicle(t, v); err != nil {
		return err
	}
	return s.indexVehicle(t, v)
}

// InstalledPackages returns the vehicle's installed packages (known and foreign), sorted.
func (s *Service) InstalledPackages(vin string) ([]PackageID, error) {
	v, err := s.GetVehicle(vin)
	return v.Packages, err
}

// InstallPackage marks a registered package as installed on the vehicle (idempotent).
func (s *Service) InstallPackage(vin string, id PackageID) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	if err := ValidPackageID(id); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		v, err := s.loadVehicle(t, vin)
		if err != nil {
			return err
		}
		pkg, err := s.loadPackage(t, id)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(v.Packages, func(p PackageID) bool { return samePackage(p, id) }) {
			return nil
		}
		return s.setInstalled(t, v, append(slices.Clone(v.Packages), pkg.ID))
	})
}

// UninstallPackage removes a package from the vehicle's installed set.
func (s *Service) UninstallPackage(vin string, id PackageID) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	if err := ValidPackageID(id); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		v, err := s.loadVehicle(t, vin)
		if err != nil {
			return err
		}
		if _, err := s.loadPackage(t, id); err != nil {
			return err
		}
		i := slices.IndexFunc(v.Packages, func(p PackageID) bool { return samePackage(p, id) })
		if i < 0 {
			return errs.New(errs.Conflict, "not_installed", "Package is not installed on VIN: %s on %s", id, vin)
		}
		return s.setInstalled(t, v, slices.Delete(slices.Clone(v.Packages), i, i+1))
	})
}

// SetInstalled replaces the vehicle's installed set in its own transaction. Packages the resolver
// does not know are kept as foreign: listed, but ignored by filters and the solver.
func (s *Service) SetInstalled(vin string, ids []PackageID) error {
	return s.write(func(t store.Txn) error { return s.replaceInstalled(t, vin, ids) })
}

// ReplaceInstalled replaces the vehicle's installed set (what the vehicle reported it has), in x.
func (x *Tx) ReplaceInstalled(vin string, ids []PackageID) error {
	return x.s.replaceInstalled(x.x, vin, ids)
}

func (s *Service) replaceInstalled(t store.Txn, vin string, ids []PackageID) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	for _, id := range ids {
		if err := ValidPackageID(id); err != nil {
			return err
		}
	}
	v, err := s.loadVehicle(t, vin)
	if err != nil {
		return err
	}
	return s.setInstalled(t, v, ids)
}

// ApplyInstalled adds packages to the vehicle's installed set after a successful install, in x. An
// installed package replaces the other installed versions of the same name: installing nav 2.0.0
// upgrades nav 1.0.0.
func (x *Tx) ApplyInstalled(vin string, ids []PackageID) error {
	s, t := x.s, x.x
	if err := ValidVIN(vin); err != nil {
		return err
	}
	for _, id := range ids {
		if err := ValidPackageID(id); err != nil {
			return err
		}
	}
	v, err := s.loadVehicle(t, vin)
	if err != nil {
		return err
	}
	next := slices.DeleteFunc(slices.Clone(v.Packages), func(p PackageID) bool {
		return slices.ContainsFunc(ids, func(id PackageID) bool { return strings.EqualFold(id.Name, p.Name) })
	})
	return s.setInstalled(t, v, append(next, ids...))
}

// setInstalled stores ids as the vehicle's installed set: duplicates dropped, known packages in the
// case of their registration, sorted; foreign markers kept in step.
func (s *Service) setInstalled(t store.Txn, v *vehicleRec, ids []PackageID) error {
	next := make([]PackageID, 0, len(ids))
	for _, id := range ids {
		if slices.ContainsFunc(next, func(p PackageID) bool { return samePackage(p, id) }) {
			continue
		}
		pkg, found, err := s.findPackage(t, id)
		if err != nil {
			return err
		}
		if found {
			id = pkg.ID
		}
		next = append(next, id)
	}
	slices.SortFunc(next, comparePackageIDs)
	for _, id := range v.Packages {
		if err := t.Delete(foreignKey(id, v.VIN)); err != nil {
			return err
		}
	}
	for _, id := range next {
		found, err := t.Has(packageKey(id))
		if err != nil {
			return err
		}
		if !found {
			if err := t.Set(foreignKey(id, v.VIN), nil); err != nil {
				return err
			}
		}
	}
	nv := *v
	nv.Packages = next
	return s.writeVehicle(t, &nv)
}

// VehicleComponents returns the part numbers installed on the vehicle.
func (s *Service) VehicleComponents(vin string) ([]string, error) {
	v, err := s.GetVehicle(vin)
	return v.Components, err
}

// InstallComponent marks a registered component as installed on the vehicle.
func (s *Service) InstallComponent(vin, part string) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	if err := ValidPartNumber(part); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		v, err := s.loadVehicle(t, vin)
		if err != nil {
			return err
		}
		c, err := s.loadComponent(t, part)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(v.Components, func(p string) bool { return strings.EqualFold(p, part) }) {
			return duplicate("Component is already installed on VIN: %s on %s", c.PartNumber, vin)
		}
		nv := *v
		nv.Components = append(slices.Clone(v.Components), c.PartNumber)
		slices.SortFunc(nv.Components, func(a, b string) int { return strings.Compare(lower(a), lower(b)) })
		return s.writeVehicle(t, &nv)
	})
}

// UninstallComponent removes a part number from the vehicle.
func (s *Service) UninstallComponent(vin, part string) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	if err := ValidPartNumber(part); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		v, err := s.loadVehicle(t, vin)
		if err != nil {
			return err
		}
		if _, err := s.loadComponent(t, part); err != nil {
			return err
		}
		i := slices.IndexFunc(v.Components, func(p string) bool { return strings.EqualFold(p, part) })
		if i < 0 {
			return errs.New(errs.NotFound, "missing_component", "Component is not installed on VIN: %s on %s", part, vin)
		}
		nv := *v
		nv.Components = slices.Delete(slices.Clone(v.Components), i, i+1)
		return s.writeVehicle(t, &nv)
	})
}

// VehicleAttributes returns the vehicle's attributes.
func (s *Service) VehicleAttributes(vin string) (Attributes, error) {
	v, err := s.GetVehicle(vin)
	return v.Attributes, err
}

// SetAttributes replaces the vehicle's attributes.
func (s *Service) SetAttributes(vin string, attrs Attributes) (Attributes, error) {
	if err := ValidVIN(vin); err != nil {
		return nil, err
	}
	if attrs == nil {
		attrs = Attributes{}
	}
	err := s.write(func(t store.Txn) error {
		v, err := s.loadVehicle(t, vin)
		if err != nil {
			return err
		}
		nv := *v
		nv.Attrs = attrs
		return s.writeVehicle(t, &nv)
	})
	return attrs, err
}

// ModifyAttributes changes the vehicle's attributes in x: fn gets a copy of the current ones and
// returns the new set, which must keep the attribute limits (400). 404 missing_vehicle.
func (x *Tx) ModifyAttributes(vin string, fn func(Attributes) (Attributes, error)) (Attributes, error) {
	s, t := x.s, x.x
	v, err := s.loadVehicle(t, vin)
	if err != nil {
		return nil, err
	}
	cur := make(Attributes, len(v.Attrs))
	for k, a := range v.Attrs {
		cur[k] = a
	}
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if err := checkAttributes(next); err != nil {
		return nil, err
	}
	nv := *v
	nv.Attrs = next
	return next, s.writeVehicle(t, &nv)
}

// CheckVehicle answers 400 for a malformed VIN and 404 missing_vehicle for one that does not exist,
// as x reads it: a domain that records something about the vehicle (a contact, a data plan) does so
// in x, so that a concurrent deletion and its cascade cannot leave the record behind.
func (x *Tx) CheckVehicle(vin string) error { return checkVehicleIn(x.x, vin) }

// VehicleCheck is Tx.CheckVehicle as the resolver's part of a transaction that another domain opens
// (a device token is minted in auth's, a traffic report in the engine's): the write checks the
// vehicle as its own transaction reads it, not in this process's index, which learns of a vehicle
// created on another replica only from the change feed.
func VehicleCheck() *store.Part[func(vin string) error] {
	return store.NewPart(func(t store.Txn) func(string) error {
		return func(vin string) error { return checkVehicleIn(t, vin) }
	})
}

func checkVehicleIn(t store.Txn, vin string) error {
	if err := ValidVIN(vin); err != nil {
		return err
	}
	ok, err := t.Has(vehicleKey(vin))
	if err == nil && !ok {
		err = missingVehicle(vin)
	}
	return err
}

// CheckVehicleStored is VehicleCheck in a read of its own: a vehicle this process's index does not
// know yet may have been created on another replica a moment ago.
func (s *Service) CheckVehicleStored(vin string) error {
	return s.db.View(func(t store.Txn) error { return checkVehicleIn(t, vin) })
}

// and intersects the read-only bitmap b with acc (nil: every vehicle), into a new bitmap.
func and(acc, b *roaring.Bitmap) *roaring.Bitmap {
	if acc == nil {
		return b
	}
	return roaring.And(acc, b)
}
