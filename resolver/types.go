package resolver

import "sota/store"

// PackageID names one version of a package.
type PackageID struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// String is name-version.
func (p PackageID) String() string { return p.Name + "-" + p.Version }

// Target is one vehicle of a resolution and what it must install, dependencies first and the
// package last.
type Target struct {
	VIN     string
	Install []PackageID
}

// Hooks let other parts (the engine, the API's device tokens) take part in resolver cascades inside the
// same transaction.
type Hooks struct {
	// VehicleCreated runs inside the transaction that creates a vehicle (not for the bulk import).
	VehicleCreated func(t store.Txn, vin string) error
	// VehicleDeleted runs inside the transaction that deletes the vehicle.
	VehicleDeleted func(t store.Txn, vin string) error
	// PackageDeleting runs inside the transaction that deletes the package; an error refuses the delete.
	PackageDeleting func(t store.Txn, id PackageID) error
}
