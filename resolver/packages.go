package resolver

import (
	"context"
	"errors"
	"regexp"
	"slices"

	"sota/errs"
	"sota/store"
)

// PackageInfo is the metadata a client sets on a package.
type PackageInfo struct {
	Description string `json:"description"`
	Vendor      string `json:"vendor"`
}

const (
	maxDescription = 10000
	maxVendor      = 200
)

func (i PackageInfo) validate() error {
	if len(i.Description) > maxDescription {
		return errs.InvalidEntity("description is at most %d bytes", maxDescription)
	}
	if len(i.Vendor) > maxVendor {
		return errs.InvalidEntity("vendor is at most %d bytes", maxVendor)
	}
	return nil
}

// ListPackages returns the page of packages whose name or version matches regex ("" = all), sorted by
// name (case-insensitively) then version precedence, and how many match in all.
func (s *Service) ListPackages(regex string, p Page) ([]Package, int, error) {
	var re *regexp.Regexp
	if regex != "" {
		r, err := validRegex("regex", regex)
		if err != nil {
			return nil, 0, err
		}
		re = r
	}
	var all []Package
	err := s.db.View(func(t store.Txn) error {
		return iterateJSON(t, []byte(pPackage), func(pkg *Package) error {
			if re == nil || re.MatchString(pkg.ID.Name) || re.MatchString(pkg.ID.Version) {
				all = append(all, *pkg)
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(all, func(a, b Package) int { return comparePackageIDs(a.ID, b.ID) })
	return append([]Package{}, pageOf(all, p)...), len(all), nil
}

// Package returns one package.
func (s *Service) Package(id PackageID) (Package, error) {
	if err := ValidPackageID(id); err != nil {
		return Package{}, err
	}
	var pkg Package
	err := s.db.View(func(t store.Txn) error {
		p, err := s.loadPackage(t, id)
		pkg = p
		return err
	})
	return pkg, err
}

// PutPackage creates the package or updates its description and vendor (upsert).
func (s *Service) PutPackage(id PackageID, info PackageInfo) (Package, error) {
	return s.savePackage(id, info, false)
}

// CreatePackage creates the package; an existing one is a duplicate_entry conflict.
func (s *Service) CreatePackage(id PackageID, info PackageInfo) (Package, error) {
	return s.savePackage(id, info, true)
}

func (s *Service) savePackage(id PackageID, info PackageInfo, create bool) (Package, error) {
	if err := ValidPackageID(id); err != nil {
		return Package{}, err
	}
	if err := info.validate(); err != nil {
		return Package{}, err
	}
	var pkg Package
	err := s.write(func(t store.Txn) error {
		old, found, err := s.findPackage(t, id)
		if err != nil {
			return err
		}
		if found && create {
			return duplicate("Package already exists: %s", old.ID)
		}
		if found {
			pkg = old
		} else {
			pkg = Package{ID: id}
		}
		pkg.Description, pkg.Vendor = info.Description, info.Vendor
		if err := putJSON(t, packageKey(id), pkg); err != nil {
			return err
		}
		if !found {
			return s.adoptForeign(t, pkg.ID)
		}
		return nil
	})
	return pkg, err
}

// UploadInfo is what a binary upload records on the package: the description and vendor when given
// (nil keeps the stored ones). The binary itself (size, sha256, file name) is the engine's record.
type UploadInfo struct {
	Description *string
	Vendor      *string
}

// ValidateUploadInfo checks the metadata of an upload before its bytes are stored.
func ValidateUploadInfo(u UploadInfo) error {
	info := PackageInfo{}
	if u.Description != nil {
		info.Description = *u.Description
	}
	if u.Vendor != nil {
		info.Vendor = *u.Vendor
	}
	return info.validate()
}

// PackageUploaded records an upload's metadata on the package in x, creating the package when it does
// not exist.
func (x *Tx) PackageUploaded(id PackageID, u UploadInfo) error {
	s, t := x.s, x.x
	if err := ValidPackageID(id); err != nil {
		return err
	}
	if err := ValidateUploadInfo(u); err != nil {
		return err
	}
	pkg, found, err := s.findPackage(t, id)
	if err != nil {
		return err
	}
	if !found {
		pkg = Package{ID: id}
	}
	if u.Description != nil {
		pkg.Description = *u.Description
	}
	if u.Vendor != nil {
		pkg.Vendor = *u.Vendor
	}
	if err := putJSON(t, packageKey(id), pkg); err != nil {
		return err
	}
	if !found {
		return s.adoptForeign(t, id)
	}
	return nil
}

// adoptForeign turns the foreign installs of a newly registered package into known ones.
func (s *Service) adoptForeign(t store.Txn, id PackageID) error {
	var vins []string
	err := t.IterateKeys(foreignPrefix(id), func(key []byte) error {
		parts := splitKey(key, pForeign)
		vins = append(vins, parts[len(parts)-1])
		return nil
	})
	if err != nil {
		return err
	}
	for _, vin := range vins {
		if err := t.Delete(foreignKey(id, vin)); err != nil {
			return err
		}
		v, err := getVehicle(t, vin)
		if err != nil {
			return err
		}
		nv := *v
		nv.Packages = slices.Clone(v.Packages)
		for i, p := range nv.Packages {
			if samePackage(p, id) {
				nv.Packages[i] = id
			}
		}
		if err := s.writeVehicle(t, &nv); err != nil {
			return err
		}
	}
	return nil
}

// DeletePackage removes the package with its filter links and dependencies (both directions); the
// engine's hook drops its binary or refuses while an update uses it (package_in_use). Vehicles that
// have it installed keep it, as a foreign package.
func (s *Service) DeletePackage(id PackageID) error {
	if err := ValidPackageID(id); err != nil {
		return err
	}
	// the index lists the vehicles that have the package: with the change feed applied it has every
	// install any replica acknowledged before this call (feed.go)
	if err := s.db.CatchUp(context.Background()); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		pkg, err := s.loadPackage(t, id)
		if err != nil {
			return err
		}
		id = pkg.ID
		if err := s.packageDeleting(t, id); err != nil {
			return err
		}
		if err := deletePrefix(t, pkgFilterPrefix(id), func(key []byte) error {
			parts := splitKey(key, pPkgFilter)
			return t.Delete(filterPkgKey(parts[len(parts)-1], id))
		}); err != nil {
			return err
		}
		if err := deletePrefix(t, depPrefix(id), func(key []byte) error {
			parts := splitKey(key, pDep) // name, version, depname, =depver or ~
			if last := parts[3]; last[0] == '=' {
				return t.Delete(revDepKey(PackageID{Name: parts[2], Version: last[1:]}, id))
			}
			return nil
		}); err != nil {
			return err
		}
		if err := deletePrefix(t, revDepPrefix(id), func(key []byte) error {
			parts := splitKey(key, pRevDep) // depname, depver, name, version
			return t.Delete(depExactKey(PackageID{Name: parts[2], Version: parts[3]}, id))
		}); err != nil {
			return err
		}
		if err := t.Delete(packageKey(id)); err != nil {
			return err
		}
		// Vehicles that have it installed keep it as a foreign package. Each is read in this
		// transaction: another replica may have changed its installed set since the index learned of it.
		for _, vin := range s.vinsWithPackage(id) {
			v, err := getVehicle(t, vin)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(v.Packages, func(p PackageID) bool { return lower(p.Name) == lower(id.Name) && p.Version == id.Version }) {
				continue
			}
			if err := t.Set(foreignKey(id, vin), nil); err != nil {
				return err
			}
			if err := s.indexVehicle(t, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// PackageVehicles returns the page of VINs that have the package installed, sorted, and their number.
func (s *Service) PackageVehicles(id PackageID, p Page) ([]string, int, error) {
	if err := ValidPackageID(id); err != nil {
		return nil, 0, err
	}
	var vins []string
	err := s.db.View(func(t store.Txn) error {
		if _, err := s.loadPackage(t, id); err != nil {
			return err
		}
		vins = s.vinsWithPackage(id)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return append([]string{}, pageOf(vins, p)...), len(vins), nil
}

// loadPackage reads a package; a missing one is package_not_found.
func (s *Service) loadPackage(t store.Txn, id PackageID) (Package, error) {
	pkg, found, err := s.findPackage(t, id)
	if err == nil && !found {
		err = packageNotFound(id)
	}
	return pkg, err
}

func (s *Service) findPackage(t store.Txn, id PackageID) (Package, bool, error) {
	var pkg Package
	found, err := getJSON(t, packageKey(id), &pkg)
	return pkg, found, err
}

// iterateJSON decodes every record under prefix.
func iterateJSON[T any](t store.Txn, prefix []byte, fn func(*T) error) error {
	return t.Iterate(prefix, func(key, val []byte) error {
		var v T
		if err := jsonUnmarshal(key, val, &v); err != nil {
			return err
		}
		return fn(&v)
	})
}

// deletePrefix deletes every key under prefix, calling each (when non-nil) first.
func deletePrefix(t store.Txn, prefix []byte, each func(key []byte) error) error {
	var keys [][]byte
	err := t.IterateKeys(prefix, func(key []byte) error {
		keys = append(keys, slices.Clone(key))
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if each != nil {
			if err := each(k); err != nil {
				return err
			}
		}
		if err := t.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
