// Package policy holds SmartDeviceLink policy tables: the data dictionary, validation, snapshot,
// merge, the PTU state machine and the PTU builder of the policy server.
//
// A table is kept as decoded JSON (Table) so that fields this server does not know travel through
// unchanged. The data dictionary (Dictionary, Enums, Rules) is data: one row per field path with
// its type, bounds and its status (required, optional, omitted) in each kind of table — the
// preloaded table (PT), the snapshot (PTS) and the update (PTU). Validate reports every problem
// with its JSON path. The rules follow SDL Core 8.2's policy_table_interface_base in its
// EXTERNAL_PROPRIETARY (policy_external) build, which enforces every "omitted" status; the
// HTTP/PROPRIETARY build (policy_regular) does not check module_config.preloaded_date in a PTU,
// so a PTU carrying it is rejected here as upstream test 268_ATF_pt_update_validation_rules_general
// expects.
//
// Like Core, a PTU is filtered before it is validated: values outside an enumeration that Core
// removes silently (a PROJECTION key in notifications_per_minute_by_priority, unknown RPC names,
// request types, …) are warnings, and Filter removes them.
package policy
