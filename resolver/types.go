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

// Hooks are the parts other domains take in the resolver's cascades, inside the same transaction:
// the engine's updates, data plans and contacts, the device tokens of auth. Each is built by its
// domain over the transaction (store.NewPart) and reaches only that domain's records; the resolver's
// side of the transaction is the Tx it passes.
type Hooks struct {
	// VehicleCreated runs inside the transaction that creates a vehicle (not for the bulk import).
	VehicleCreated *store.Part[VehicleHook]
	// VehicleDeleted runs inside the transaction that deletes the vehicle.
	VehicleDeleted *store.Part[VehicleHook]
	// PackageDeleting runs inside the transaction that deletes the package; an error refuses the delete.
	PackageDeleting *store.Part[PackageHook]
}

// VehicleHook is a domain's part in a transaction that creates or deletes the vehicle vin.
type VehicleHook func(x *Tx, vin string) error

// PackageHook is a domain's part in the transaction that deletes the package id.
type PackageHook func(x *Tx, id PackageID) error
