// Package wire holds the device-facing protocol of the SOTA server: the JSON bodies of the device API
// (/api/v1/vehicle_updates/:vin/...), the update notification, the transfer and chunk messages, the
// install report with its result codes, the signed wake-up and the custom field of the director's TUF
// targets. The server (engine, api, signing) and the device client (client/) both use these types, so
// that one definition decides what goes over the wire.
//
// wire imports nothing of this module: the device client builds on it without linking a domain package.
// API.md is the contract; the API tests pin the exact bytes.
package wire
