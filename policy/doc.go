// Package policy holds SmartDeviceLink policy tables: the data dictionary, validation, snapshot,
// merge, the PTU state machine and the PTU builder of the policy server.
package policy
