package policy

import "encoding/json"

// SnapshotInfo is what the head unit knows beside its local table when it makes a snapshot.
type SnapshotInfo struct {
	VIN      string   // module_meta.vin
	Language string   // module_meta.language, e.g. "EN-US"
	Apps     []string // app ids registered now: each gets an app_policies entry ("default" when new) and usage counters
	DeviceID string   // a device_data entry for the phone the PTS travels through (none when empty)
}

// MakeSnapshot builds a Policy Table Snapshot from the local table (requirement 2): a copy of it
// without consumer_friendly_messages.messages, with the sections only a PTS has — module_meta,
// usage_and_error_counts, device_data — and with only the schema version of vehicle_data. local
// is not modified.
func MakeSnapshot(local Table, info SnapshotInfo) Table {
	pts := local.Clone()
	body := pts.Body()
	if body == nil {
		body = map[string]any{}
		pts["policy_table"] = body
	}
	if cfm, ok := body["consumer_friendly_messages"].(map[string]any); ok {
		delete(cfm, "messages")
	}
	if vd, ok := body["vehicle_data"].(map[string]any); ok {
		delete(vd, "schema_items")
	}

	meta := objectIn(body, "module_meta")
	if info.VIN != "" {
		meta["vin"] = info.VIN
	}
	if info.Language != "" {
		meta["language"] = info.Language
	}

	apps := objectIn(body, "app_policies")
	counts := objectIn(body, "usage_and_error_counts")
	for _, k := range []string{"count_of_iap_buffer_full", "count_sync_out_of_memory", "count_of_sync_reboots"} {
		if _, ok := counts[k]; !ok {
			counts[k] = json.Number("0")
		}
	}
	levels := objectIn(counts, "app_level")
	for _, id := range info.Apps {
		if _, ok := apps[id]; !ok {
			apps[id] = "default"
		}
		if _, ok := levels[id]; !ok {
			levels[id] = newAppLevel(info.Language)
		}
	}

	devices := objectIn(body, "device_data")
	if info.DeviceID != "" {
		if _, ok := devices[info.DeviceID]; !ok {
			devices[info.DeviceID] = map[string]any{"user_consent_records": map[string]any{}}
		}
	}
	return pts
}

// newAppLevel is a zeroed usage record of one app (every field an AppLevel requires).
func newAppLevel(language string) map[string]any {
	if language == "" {
		language = "EN-US"
	}
	level := map[string]any{"app_registration_language_gui": language, "app_registration_language_vui": language}
	for _, f := range Dictionary {
		parent, name := splitPath(f.Path)
		if parent == "policy_table.usage_and_error_counts.app_level.*" && f.Type == Int && f.PresenceIn(Snapshot) == Required {
			level[name] = json.Number("0")
		}
	}
	return level
}

// objectIn returns m[key] as an object, creating it when absent or not an object.
func objectIn(m map[string]any, key string) map[string]any {
	o, ok := m[key].(map[string]any)
	if !ok {
		o = map[string]any{}
		m[key] = o
	}
	return o
}
