package policy

import (
	"sort"
	"strings"
)

// Type is the JSON shape a dictionary field takes.
type Type int

// Field types. Bounds (Min, Max) apply to the value of Int, the byte length of String and the
// number of entries of Array and Map.
const (
	Object Type = iota // fixed keys, listed as their own fields
	Map                // free keys, each value described by the field "<path>.*"
	Array              // elements described by the field "<path>[]"
	String
	Int
	Number // any JSON number (vehicle data min/max values)
	Bool
	Enum // a string from Enums[Field.Enum]
)

var typeNames = [...]string{"an object", "an object (map)", "an array", "a string", "an integer", "a number", "a boolean", "a string"}

// Presence is a field's status for one kind of table.
type Presence byte

// Presences, as the data dictionary spells them.
const (
	Required Presence = 'R'
	Optional Presence = 'O'
	Omitted  Presence = 'X'
)

// Field is one row of the data dictionary.
//
// Path is the JSON path below the document root: object keys joined by ".", "*" for any key of a
// map, "[]" for any element of an array; a literal key under a map (".default") adds rules for
// that key on top of the "*" row. Presence has one letter per kind, in the order
// preloaded (PT), snapshot (PTS), update (PTU): R required, O optional, X omitted; rows under "*"
// and "[]" leave it empty. Drop lists the kinds (P, S, U) in which SDL Core silently removes a
// value that is not in the enumeration (for Map rows: a key not in KeyEnum) instead of rejecting
// the table; the validator reports those as warnings.
type Field struct {
	Path     string
	Type     Type
	Presence string
	Min, Max int64    // bounds, when Max != 0
	Enum     string   // for Enum, and for Map keys (KeyEnum)
	Drop     string   // kinds in which values outside Enum are dropped, not rejected
	Nullable bool     // JSON null is accepted
	Values   []string // strings accepted in place of an object (app_policies: "default")
	Note     string
}

// PresenceIn returns the field's status in a table of kind k (Optional for element rows).
func (f *Field) PresenceIn(k Kind) Presence {
	if len(f.Presence) != 3 {
		return Optional
	}
	return Presence(f.Presence[k])
}

func (f *Field) drops(k Kind) bool {
	return strings.IndexByte(f.Drop, "PSU"[k]) >= 0
}

// Dictionary is the SDL policy table data dictionary as SDL Core 8.2 enforces it (policy_external
// build, EXTERNAL_PROPRIETARY, which checks every "omitted" status; the policy_regular build
// leaves module_config.preloaded_date unchecked in a PTU). It was written from the types, ranges
// and Validate() rules of Core's policy_table_interface_base (see the package comment).
var Dictionary = []Field{
	{Path: "policy_table", Type: Object, Presence: "RRR"},

	// module_config
	{Path: "policy_table.module_config", Type: Object, Presence: "RRR"},
	{Path: "policy_table.module_config.preloaded_pt", Type: Bool, Presence: "OOX"},
	{Path: "policy_table.module_config.preloaded_date", Type: String, Presence: "OOX", Max: 10},
	{Path: "policy_table.module_config.exchange_after_x_ignition_cycles", Type: Int, Presence: "RRR", Max: 255},
	{Path: "policy_table.module_config.exchange_after_x_kilometers", Type: Int, Presence: "RRR", Max: 4294967296},
	{Path: "policy_table.module_config.exchange_after_x_days", Type: Int, Presence: "RRR", Max: 255},
	{Path: "policy_table.module_config.timeout_after_x_seconds", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.module_config.seconds_between_retries", Type: Array, Presence: "RRR", Max: 5},
	{Path: "policy_table.module_config.seconds_between_retries[]", Type: Int, Min: 1, Max: 1000},
	{Path: "policy_table.module_config.endpoints", Type: Map, Presence: "RRR", Min: 1, Max: 255, Note: "service type (0x07 = policy server) -> app id or default -> URLs"},
	{Path: "policy_table.module_config.endpoints.*", Type: Map, Min: 1, Max: 255},
	{Path: "policy_table.module_config.endpoints.*.default", Type: Array, Presence: "RRR", Min: 1, Max: 3, Note: "every service needs default URLs"},
	{Path: "policy_table.module_config.endpoints.*.*", Type: Array, Min: 1, Max: 3},
	{Path: "policy_table.module_config.endpoints.*.*[]", Type: String, Min: 10, Max: 255},
	{Path: "policy_table.module_config.endpoint_properties", Type: Map, Presence: "OOO", Max: 255},
	{Path: "policy_table.module_config.endpoint_properties.*", Type: Object},
	{Path: "policy_table.module_config.endpoint_properties.*.version", Type: String, Presence: "OOO", Max: 100},
	{Path: "policy_table.module_config.endpoint_properties.custom_vehicle_data_mapping_url", Type: Object, Presence: "OOO"},
	{Path: "policy_table.module_config.endpoint_properties.custom_vehicle_data_mapping_url.version", Type: String, Presence: "RRR", Max: 100},
	{Path: "policy_table.module_config.notifications_per_minute_by_priority", Type: Map, Presence: "RRR", Max: 7, Enum: "Priority", Drop: "PSU", Note: "keys are not type-checked; Core drops unknown priorities from a PTU"},
	{Path: "policy_table.module_config.notifications_per_minute_by_priority.*", Type: Int, Max: 255},
	{Path: "policy_table.module_config.subtle_notifications_per_minute_by_priority", Type: Map, Presence: "OOO", Max: 7, Enum: "Priority", Drop: "PSU"},
	{Path: "policy_table.module_config.subtle_notifications_per_minute_by_priority.*", Type: Int, Max: 255},
	{Path: "policy_table.module_config.vehicle_make", Type: String, Presence: "XOO", Max: 100},
	{Path: "policy_table.module_config.vehicle_model", Type: String, Presence: "XOO", Max: 100},
	{Path: "policy_table.module_config.vehicle_year", Type: String, Presence: "XOO", Max: 4},
	{Path: "policy_table.module_config.certificate", Type: String, Presence: "OOO", Max: 65535},
	{Path: "policy_table.module_config.full_app_id_supported", Type: Bool, Presence: "OOO"},
	{Path: "policy_table.module_config.lock_screen_dismissal_enabled", Type: Bool, Presence: "OOO"},

	// functional_groupings
	{Path: "policy_table.functional_groupings", Type: Map, Presence: "RRR", Min: 1, Max: 255},
	{Path: "policy_table.functional_groupings.*", Type: Object},
	{Path: "policy_table.functional_groupings.*.user_consent_prompt", Type: String, Presence: "OOO", Min: 1, Max: 255},
	{Path: "policy_table.functional_groupings.*.rpcs", Type: Map, Presence: "RRR", Max: 4294967295, Nullable: true, Enum: "FunctionID", Drop: "PSU", Note: "null: the group exists for consent only"},
	{Path: "policy_table.functional_groupings.*.rpcs.*", Type: Object},
	{Path: "policy_table.functional_groupings.*.rpcs.*.hmi_levels", Type: Array, Presence: "RRR", Max: 4},
	{Path: "policy_table.functional_groupings.*.rpcs.*.hmi_levels[]", Type: Enum, Enum: "HmiLevel", Drop: "U"},
	{Path: "policy_table.functional_groupings.*.rpcs.*.parameters", Type: Array, Presence: "OOO", Max: 100},
	{Path: "policy_table.functional_groupings.*.rpcs.*.parameters[]", Type: String, Max: 255, Note: "a Parameter or a vehicle_data item name; Core drops others from a PTU"},
	{Path: "policy_table.functional_groupings.*.encryption_required", Type: Bool, Presence: "OOO"},
	{Path: "policy_table.functional_groupings.*.disallowed_by_external_consent_entities_on", Type: Array, Presence: "OOO", Max: 100},
	{Path: "policy_table.functional_groupings.*.disallowed_by_external_consent_entities_on[]", Type: Object},
	{Path: "policy_table.functional_groupings.*.disallowed_by_external_consent_entities_on[].entityType", Type: Int, Presence: "RRR", Max: 128},
	{Path: "policy_table.functional_groupings.*.disallowed_by_external_consent_entities_on[].entityID", Type: Int, Presence: "RRR", Max: 128},
	{Path: "policy_table.functional_groupings.*.disallowed_by_external_consent_entities_off", Type: Array, Presence: "OOO", Max: 100},
	{Path: "policy_table.functional_groupings.*.disallowed_by_external_consent_entities_off[]", Type: Object},
	{Path: "policy_table.functional_groupings.*.disallowed_by_external_consent_entities_off[].entityType", Type: Int, Presence: "RRR", Max: 128},
	{Path: "policy_table.functional_groupings.*.disallowed_by_external_consent_entities_off[].entityID", Type: Int, Presence: "RRR", Max: 128},

	// consumer_friendly_messages
	{Path: "policy_table.consumer_friendly_messages", Type: Object, Presence: "OOO", Note: "a PTU without it keeps the local one (requirement 15)"},
	{Path: "policy_table.consumer_friendly_messages.version", Type: String, Presence: "RRR", Min: 1, Max: 100},
	{Path: "policy_table.consumer_friendly_messages.messages", Type: Map, Presence: "OXO", Max: 255, Note: "removed from a snapshot (requirement 2)"},
	{Path: "policy_table.consumer_friendly_messages.messages.*", Type: Object},
	{Path: "policy_table.consumer_friendly_messages.messages.*.languages", Type: Map, Presence: "RRR", Max: 600},
	{Path: "policy_table.consumer_friendly_messages.messages.*.languages.en-us", Type: Object, Presence: "RRR", Note: "every message needs the default language"},
	{Path: "policy_table.consumer_friendly_messages.messages.*.languages.*", Type: Object},
	{Path: "policy_table.consumer_friendly_messages.messages.*.languages.*.line1", Type: String, Presence: "OOO", Min: 1, Max: 65535},
	{Path: "policy_table.consumer_friendly_messages.messages.*.languages.*.line2", Type: String, Presence: "OOO", Min: 1, Max: 65535},
	{Path: "policy_table.consumer_friendly_messages.messages.*.languages.*.tts", Type: String, Presence: "OOO", Min: 1, Max: 65535},
	{Path: "policy_table.consumer_friendly_messages.messages.*.languages.*.label", Type: String, Presence: "OOO", Min: 1, Max: 65535},
	{Path: "policy_table.consumer_friendly_messages.messages.*.languages.*.textBody", Type: String, Presence: "OOO", Min: 1, Max: 65535},

	// app_policies
	{Path: "policy_table.app_policies", Type: Map, Presence: "RRR", Min: 1, Max: 1000},
	{Path: "policy_table.app_policies.default", Type: Object, Presence: "RRR"},
	{Path: "policy_table.app_policies.pre_DataConsent", Type: Object, Presence: "RRR"},
	{Path: "policy_table.app_policies.device", Type: Object, Presence: "RRR"},
	{Path: "policy_table.app_policies.*", Type: Object, Nullable: true, Values: []string{"default", "pre_DataConsent"}, Note: `an app id; null revokes the app, "default" gives it the default policy`},
	{Path: "policy_table.app_policies.*.groups", Type: Array, Presence: "RRR", Min: 1, Max: 255},
	{Path: "policy_table.app_policies.*.groups[]", Type: String, Min: 1, Max: 255},
	{Path: "policy_table.app_policies.*.preconsented_groups", Type: Array, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.preconsented_groups[]", Type: String, Min: 1, Max: 255},
	{Path: "policy_table.app_policies.*.priority", Type: Enum, Presence: "RRR", Enum: "Priority"},
	{Path: "policy_table.app_policies.*.default_hmi", Type: Enum, Presence: "RRR", Enum: "HmiLevel"},
	{Path: "policy_table.app_policies.*.keep_context", Type: Bool, Presence: "RRR"},
	{Path: "policy_table.app_policies.*.steal_focus", Type: Bool, Presence: "RRR"},
	{Path: "policy_table.app_policies.*.nicknames", Type: Array, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.nicknames[]", Type: String, Min: 1, Max: 255},
	{Path: "policy_table.app_policies.*.AppHMIType", Type: Array, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.AppHMIType[]", Type: Enum, Enum: "AppHMIType", Drop: "U"},
	{Path: "policy_table.app_policies.*.RequestType", Type: Array, Presence: "OOO", Max: 255, Note: "empty: every request type is allowed"},
	{Path: "policy_table.app_policies.*.RequestType[]", Type: Enum, Enum: "RequestType", Drop: "PSU"},
	{Path: "policy_table.app_policies.*.RequestSubType", Type: Array, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.RequestSubType[]", Type: String, Min: 1, Max: 255},
	{Path: "policy_table.app_policies.*.memory_kb", Type: Int, Presence: "OOO", Max: 65225},
	{Path: "policy_table.app_policies.*.heart_beat_timeout_ms", Type: Int, Presence: "OOO", Max: 4294967295},
	{Path: "policy_table.app_policies.*.moduleType", Type: Array, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.moduleType[]", Type: Enum, Enum: "ModuleType", Drop: "PSU"},
	{Path: "policy_table.app_policies.*.certificate", Type: String, Presence: "OOO", Max: 65535},
	{Path: "policy_table.app_policies.*.hybrid_app_preference", Type: Enum, Presence: "OOO", Enum: "HybridAppPreference"},
	{Path: "policy_table.app_policies.*.endpoint", Type: String, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.enabled", Type: Bool, Presence: "OOO"},
	{Path: "policy_table.app_policies.*.auth_token", Type: String, Presence: "OOO", Max: 65535},
	{Path: "policy_table.app_policies.*.cloud_transport_type", Type: String, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.icon_url", Type: String, Presence: "OOO", Max: 65535},
	{Path: "policy_table.app_policies.*.app_services", Type: Map, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.app_services.*", Type: Object},
	{Path: "policy_table.app_policies.*.app_services.*.service_names", Type: Array, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.app_services.*.service_names[]", Type: String, Min: 1, Max: 255},
	{Path: "policy_table.app_policies.*.app_services.*.handled_rpcs", Type: Array, Presence: "OOO", Max: 255},
	{Path: "policy_table.app_policies.*.app_services.*.handled_rpcs[]", Type: Object},
	{Path: "policy_table.app_policies.*.app_services.*.handled_rpcs[].function_id", Type: Int, Presence: "RRR", Max: 2147483647},
	{Path: "policy_table.app_policies.*.allow_unknown_rpc_passthrough", Type: Bool, Presence: "OOO"},
	{Path: "policy_table.app_policies.*.encryption_required", Type: Bool, Presence: "OOO"},

	// module_meta, usage_and_error_counts, device_data: the head unit's own, only in a snapshot
	{Path: "policy_table.module_meta", Type: Object, Presence: "XOX"},
	{Path: "policy_table.module_meta.ccpu_version", Type: String, Presence: "OOO", Max: 250},
	{Path: "policy_table.module_meta.language", Type: String, Presence: "OOO", Max: 250},
	{Path: "policy_table.module_meta.wers_country_code", Type: String, Presence: "OOO", Max: 250},
	{Path: "policy_table.module_meta.pt_exchanged_at_odometer_x", Type: Int, Presence: "OOO", Max: 17000000},
	{Path: "policy_table.module_meta.pt_exchanged_x_days_after_epoch", Type: Int, Presence: "OOO", Max: 65535},
	{Path: "policy_table.module_meta.ignition_cycles_since_last_exchange", Type: Int, Presence: "OOO", Max: 65535},
	{Path: "policy_table.module_meta.vin", Type: String, Presence: "OOO", Max: 250},

	{Path: "policy_table.usage_and_error_counts", Type: Object, Presence: "XOX"},
	{Path: "policy_table.usage_and_error_counts.count_of_iap_buffer_full", Type: Int, Presence: "OOO", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.count_sync_out_of_memory", Type: Int, Presence: "OOO", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.count_of_sync_reboots", Type: Int, Presence: "OOO", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level", Type: Map, Presence: "OOO", Max: 255},
	{Path: "policy_table.usage_and_error_counts.app_level.*", Type: Object},
	{Path: "policy_table.usage_and_error_counts.app_level.*.minutes_in_hmi_full", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.app_registration_language_gui", Type: String, Presence: "RRR", Min: 1, Max: 10},
	{Path: "policy_table.usage_and_error_counts.app_level.*.app_registration_language_vui", Type: String, Presence: "RRR", Max: 10},
	{Path: "policy_table.usage_and_error_counts.app_level.*.minutes_in_hmi_limited", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.minutes_in_hmi_background", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.minutes_in_hmi_none", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_user_selections", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_rejections_sync_out_of_memory", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_rejections_nickname_mismatch", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_rejections_duplicate_name", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_rejected_rpc_calls", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_rpcs_sent_in_hmi_none", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_removals_for_bad_behavior", Type: Int, Presence: "RRR", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_tls_errors", Type: Int, Presence: "OOO", Max: 65535, Note: "Core reads count_of_tls_errors but writes count_of_TLS_errors, so either may arrive"},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_TLS_errors", Type: Int, Presence: "OOO", Max: 65535},
	{Path: "policy_table.usage_and_error_counts.app_level.*.count_of_run_attempts_while_revoked", Type: Int, Presence: "RRR", Max: 65535},

	{Path: "policy_table.device_data", Type: Map, Presence: "XOX", Max: 255},
	{Path: "policy_table.device_data.*", Type: Object},
	{Path: "policy_table.device_data.*.hardware", Type: String, Presence: "OOO", Max: 255},
	{Path: "policy_table.device_data.*.firmware_rev", Type: String, Presence: "OOO", Max: 255, Nullable: true},
	{Path: "policy_table.device_data.*.os", Type: String, Presence: "OOO", Max: 255},
	{Path: "policy_table.device_data.*.os_version", Type: String, Presence: "OOO", Max: 255},
	{Path: "policy_table.device_data.*.carrier", Type: String, Presence: "OOO", Max: 255, Nullable: true},
	{Path: "policy_table.device_data.*.max_number_rfcom_ports", Type: Int, Presence: "OOO", Max: 255},
	{Path: "policy_table.device_data.*.connection_type", Type: String, Presence: "OOO", Max: 255},
	{Path: "policy_table.device_data.*.user_consent_records", Type: Map, Presence: "OOO", Max: 1000},
	{Path: "policy_table.device_data.*.user_consent_records.*", Type: Object},
	{Path: "policy_table.device_data.*.user_consent_records.*.consent_groups", Type: Map, Presence: "OOO", Max: 255},
	{Path: "policy_table.device_data.*.user_consent_records.*.consent_groups.*", Type: Bool},
	{Path: "policy_table.device_data.*.user_consent_records.*.external_consent_status_groups", Type: Map, Presence: "OOO", Max: 255},
	{Path: "policy_table.device_data.*.user_consent_records.*.external_consent_status_groups.*", Type: Bool},
	{Path: "policy_table.device_data.*.user_consent_records.*.input", Type: Enum, Presence: "OOO", Enum: "Input"},
	{Path: "policy_table.device_data.*.user_consent_records.*.time_stamp", Type: String, Presence: "OOO", Min: 1, Max: 255},

	// vehicle_data: custom vehicle data items (a snapshot carries the schema version only)
	{Path: "policy_table.vehicle_data", Type: Object, Presence: "OOO"},
	{Path: "policy_table.vehicle_data.schema_version", Type: String, Presence: "ORO", Max: 100, Note: "PT and PTU: present together with schema_items or not at all"},
	{Path: "policy_table.vehicle_data.schema_items", Type: Array, Presence: "OXO", Max: 4294967295},
	{Path: "policy_table.vehicle_data.schema_items[]", Type: Object},
	{Path: "policy_table.vehicle_data.schema_items[].name", Type: String, Presence: "RRR", Min: 1, Max: 255},
	{Path: "policy_table.vehicle_data.schema_items[].type", Type: String, Presence: "RRR", Min: 1, Max: 255},
	{Path: "policy_table.vehicle_data.schema_items[].key", Type: String, Presence: "RRR", Min: 1, Max: 255},
	{Path: "policy_table.vehicle_data.schema_items[].mandatory", Type: Bool, Presence: "RRR"},
	{Path: "policy_table.vehicle_data.schema_items[].params", Type: Array, Presence: "OOO", Max: 4294967295, Note: "items of a Struct, described like schema_items[]"},
	{Path: "policy_table.vehicle_data.schema_items[].array", Type: Bool, Presence: "OOO"},
	{Path: "policy_table.vehicle_data.schema_items[].since", Type: String, Presence: "OOO", Max: 255},
	{Path: "policy_table.vehicle_data.schema_items[].until", Type: String, Presence: "OOO", Max: 255},
	{Path: "policy_table.vehicle_data.schema_items[].removed", Type: Bool, Presence: "OOO"},
	{Path: "policy_table.vehicle_data.schema_items[].deprecated", Type: Bool, Presence: "OOO"},
	{Path: "policy_table.vehicle_data.schema_items[].defvalue", Type: String, Presence: "OOO", Max: 65535},
	{Path: "policy_table.vehicle_data.schema_items[].minvalue", Type: Number, Presence: "OOO"},
	{Path: "policy_table.vehicle_data.schema_items[].maxvalue", Type: Number, Presence: "OOO"},
	{Path: "policy_table.vehicle_data.schema_items[].minsize", Type: Int, Presence: "OOO", Max: 4294967295},
	{Path: "policy_table.vehicle_data.schema_items[].maxsize", Type: Int, Presence: "OOO", Max: 4294967295},
	{Path: "policy_table.vehicle_data.schema_items[].minlength", Type: Int, Presence: "OOO", Max: 4294967295},
	{Path: "policy_table.vehicle_data.schema_items[].maxlength", Type: Int, Presence: "OOO", Max: 4294967295},
}

// like maps a path whose rows are those of another path (for children the path does not list
// itself): the predefined app policies are app policies, a Struct's params are schema items.
var like = map[string]string{
	"policy_table.app_policies.default":                                              "policy_table.app_policies.*",
	"policy_table.app_policies.pre_DataConsent":                                      "policy_table.app_policies.*",
	"policy_table.app_policies.device":                                               "policy_table.app_policies.*",
	"policy_table.module_config.endpoints.*.default":                                 "policy_table.module_config.endpoints.*.*",
	"policy_table.module_config.endpoint_properties.custom_vehicle_data_mapping_url": "policy_table.module_config.endpoint_properties.*",
	"policy_table.consumer_friendly_messages.messages.*.languages.en-us":             "policy_table.consumer_friendly_messages.messages.*.languages.*",
	"policy_table.vehicle_data.schema_items[].params[]":                              "policy_table.vehicle_data.schema_items[]",
}

// Enums are the enumerations of the dictionary, as SDL Core's policy_table_interface_base lists
// them. Priority follows the Core 8.2 preloaded table's provenance notes: PROJECTION is not a
// priority (Core drops it from notifications_per_minute_by_priority of a PTU).
var Enums = map[string][]string{
	"Priority":            {"EMERGENCY", "NAVIGATION", "VOICECOM", "COMMUNICATION", "NORMAL", "NONE"},
	"HmiLevel":            {"BACKGROUND", "FULL", "LIMITED", "NONE"},
	"AppHMIType":          {"DEFAULT", "COMMUNICATION", "MEDIA", "MESSAGING", "NAVIGATION", "INFORMATION", "SOCIAL", "BACKGROUND_PROCESS", "TESTING", "SYSTEM", "PROJECTION", "REMOTE_CONTROL", "WEB_VIEW"},
	"RequestType":         {"HTTP", "FILE_RESUME", "AUTH_REQUEST", "AUTH_CHALLENGE", "AUTH_ACK", "PROPRIETARY", "QUERY_APPS", "LAUNCH_APP", "LOCK_SCREEN_ICON_URL", "TRAFFIC_MESSAGE_CHANNEL", "DRIVER_PROFILE", "VOICE_SEARCH", "NAVIGATION", "PHONE", "CLIMATE", "SETTINGS", "VEHICLE_DIAGNOSTICS", "EMERGENCY", "MEDIA", "FOTA", "OEM_SPECIFIC", "ICON_URL"},
	"ModuleType":          {"CLIMATE", "RADIO", "SEAT", "AUDIO", "LIGHT", "HMI_SETTINGS"},
	"HybridAppPreference": {"MOBILE", "CLOUD", "BOTH"},
	"Input":               {"GUI", "VUI"},
	"Parameter": {"gps", "speed", "engineTorque", "externalTemperature", "turnSignal", "fuelLevel", "fuelLevel_State",
		"headLampStatus", "instantFuelConsumption", "fuelRange", "cloudAppVehicleID", "odometer", "tirePressure",
		"wiperStatus", "vin", "accPedalPosition", "beltStatus", "electronicParkBrakeStatus", "driverBraking", "prndl",
		"rpm", "steeringWheelAngle", "engineOilLife", "myKey", "airbagStatus", "bodyInformation", "clusterModeStatus",
		"deviceStatus", "emergencyEvent", "eCallInfo", "abs_State", "tirePressureValue", "tpms", "longitudeDegrees",
		"latitudeDegrees", "locationName", "locationDescription", "addressLines", "phoneNumber", "locationImage",
		"deliveryMode", "timeStamp", "address", "EMPTY"},
	"FunctionID": {"RegisterAppInterface", "UnregisterAppInterface", "SetGlobalProperties", "ResetGlobalProperties",
		"AddCommand", "DeleteCommand", "AddSubMenu", "DeleteSubMenu", "CreateInteractionChoiceSet", "PerformInteraction",
		"DeleteInteractionChoiceSet", "Alert", "Show", "Speak", "SetMediaClockTimer", "PerformAudioPassThru",
		"EndAudioPassThru", "SubscribeButton", "UnsubscribeButton", "SubscribeVehicleData", "UnsubscribeVehicleData",
		"GetVehicleData", "ReadDID", "GetDTCs", "ScrollableMessage", "Slider", "ShowConstantTBT", "AlertManeuver",
		"UpdateTurnList", "ChangeRegistration", "GenericResponse", "PutFile", "DeleteFile", "ListFiles", "SetAppIcon",
		"SetDisplayLayout", "DiagnosticMessage", "SystemRequest", "SendLocation", "DialNumber", "ButtonPress",
		"GetInteriorVehicleData", "SetInteriorVehicleData", "GetWayPoints", "SubscribeWayPoints", "UnsubscribeWayPoints",
		"GetSystemCapability", "SendHapticData", "SetCloudAppProperties", "GetCloudAppProperties", "PublishAppService",
		"GetAppServiceData", "GetFile", "PerformAppServiceInteraction", "UnpublishAppService", "CancelInteraction",
		"CloseApplication", "ShowAppMenu", "CreateWindow", "DeleteWindow", "GetInteriorVehicleDataConsent",
		"ReleaseInteriorVehicleDataModule", "SubtleAlert", "EncodedSyncPData", "SyncPData",
		"OnHMIStatus", "OnAppInterfaceUnregistered", "OnButtonEvent", "OnButtonPress", "OnVehicleData", "OnCommand",
		"OnTBTClientState", "OnDriverDistraction", "OnPermissionsChange", "OnAudioPassThru", "OnLanguageChange",
		"OnKeyboardInput", "OnTouchEvent", "OnSystemRequest", "OnHashChange", "OnInteriorVehicleData", "OnWayPointChange",
		"OnRCStatus", "OnAppServiceData", "OnSystemCapabilityUpdated", "OnUpdateFile", "OnUpdateSubMenu",
		"OnSubtleAlertPressed", "OnAppCapabilityUpdated", "OnEncodedSyncPData", "OnSyncPData"},
	// VehicleDataType: the types a vehicle_data item may have: the plain types, Struct, and the
	// Mobile API enumerations SDL Core knows.
	"VehicleDataType": {"Integer", "Float", "Double", "String", "Boolean", "Struct",
		"AmbientLightStatus", "CapacityUnit", "CarModeStatus", "CompassDirection", "ComponentVolumeStatus",
		"DeviceLevelStatus", "Dimension", "DoorStatus", "ECallConfirmationStatus", "ElectronicParkBrakeStatus",
		"EmergencyEventType", "FuelCutoffStatus", "FuelType", "GateStatus", "IgnitionStableStatus", "IgnitionStatus",
		"PRNDL", "PowerModeQualificationStatus", "PowerModeStatus", "PrimaryAudioSource", "RoofStatus", "SeatStatus",
		"TPMS", "TemperatureUnit", "TransmissionType", "TurnSignal", "VehicleDataEventStatus",
		"VehicleDataNotificationStatus", "VehicleDataStatus", "WarningLightStatus", "WiperStatus", "VehicleDataResultCode",
		"VehicleDataType", "WindowType", "VehicleDataActiveStatus", "ElectronicParkBrakeStatus", "SeatOccupancy",
		"StabilityControlsStatus", "Grid", "ModuleData", "SingleTireStatus", "KeyboardLayout", "MassageZone"},
}

// dict is the dictionary indexed for the validator.
type dict struct {
	byPath   map[string]*Field
	children map[string][]*Field // by parent path, in dictionary order
	enums    map[string]map[string]bool
}

var theDict = buildDict()

func buildDict() *dict {
	d := &dict{byPath: map[string]*Field{}, children: map[string][]*Field{}, enums: map[string]map[string]bool{}}
	for i := range Dictionary {
		f := &Dictionary[i]
		if _, dup := d.byPath[f.Path]; dup {
			panic("policy: duplicate dictionary row " + f.Path)
		}
		d.byPath[f.Path] = f
		parent, _ := splitPath(f.Path)
		d.children[parent] = append(d.children[parent], f)
	}
	for name, values := range Enums {
		set := map[string]bool{}
		for _, v := range values {
			set[v] = true
		}
		d.enums[name] = set
	}
	return d
}

// splitPath returns the parent pattern and the last step ("name", "*" or "[]").
func splitPath(p string) (parent, last string) {
	if strings.HasSuffix(p, "[]") {
		return strings.TrimSuffix(p, "[]"), "[]"
	}
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// element returns the row for step ("*", "[]" or a key) under the row at pattern, also looking
// under the path pattern is like.
func (d *dict) element(pattern, step string) *Field {
	join := func(p string) string {
		if step == "[]" {
			return p + "[]"
		}
		return p + "." + step
	}
	if f := d.byPath[join(pattern)]; f != nil {
		return f
	}
	if base, ok := like[pattern]; ok {
		if f := d.byPath[join(base)]; f != nil {
			return f
		}
	}
	if step == "[]" {
		if base, ok := like[join(pattern)]; ok {
			return d.byPath[base]
		}
	}
	return nil
}

// fieldsOf returns the named (object key) rows under pattern: its own, then those of the path it
// is like that it does not override.
func (d *dict) fieldsOf(pattern string) []*Field {
	own := d.children[pattern]
	base, ok := like[pattern]
	if !ok {
		return own
	}
	seen := map[string]bool{}
	for _, f := range own {
		_, last := splitPath(f.Path)
		seen[last] = true
	}
	out := append([]*Field(nil), own...)
	for _, f := range d.children[base] {
		_, last := splitPath(f.Path)
		if !seen[last] {
			out = append(out, f)
		}
	}
	return out
}

// keyRows returns the literal-key rows of a Map pattern (e.g. endpoints.*.default), sorted.
func (d *dict) keyRows(pattern string) []*Field {
	var out []*Field
	for _, f := range d.fieldsOf(pattern) {
		if _, last := splitPath(f.Path); last != "*" && last != "[]" {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
