package resolver

import (
	"sota/store"
	"sota/wire"
)

// PackageID names one version of a package (name-version as a string); the device protocol carries it
// too (package wire).
type PackageID = wire.PackageID

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
