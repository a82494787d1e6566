package policy

import (
	_ "embed"
	"fmt"

	"sota/errs"
)

// snapshotSections are the sections the official SDL policy server demands of a snapshot, with
// the message it answers (400 {"error": …}) when one is missing, in the order it checks them.
var snapshotSections = []struct{ name, message string }{
	{"app_policies", "Please provide app policies information"},
	{"consumer_friendly_messages", "Please provide consumer friendly messages information"},
	{"device_data", "Please provide device data information"},
	{"functional_groupings", "Please provide functional groupings information"},
	{"module_config", "Please provide module config information"},
	{"usage_and_error_counts", "Please provide usage and error counts information"},
}

// CheckSnapshot answers whether the policy server can build a PTU for pts: an *errs.Error (400
// invalid_snapshot, with the policy server's message also as "error") when a section is missing.
func CheckSnapshot(pts Table) error {
	body, ok := pts["policy_table"].(map[string]any)
	if !ok {
		return snapshotError("Please provide policy table information")
	}
	for _, s := range snapshotSections {
		if v, ok := body[s.name]; !ok || v == nil {
			return snapshotError(s.message)
		}
	}
	return nil
}

func snapshotError(msg string) error {
	return errs.New(errs.Invalid, "invalid_snapshot", "%s", msg).With("error", msg)
}

// predefinedApps are the app_policies entries every PTU carries.
var predefinedApps = []string{"default", "device", "pre_DataConsent"}

// BuildPTU answers a snapshot from the master table as the policy server does: module_config and
// functional_groupings of the master; consumer_friendly_messages with its messages only when the
// snapshot's version differs from the master's (else the version alone, and the head unit keeps
// its messages); vehicle_data only when the snapshot's schema version differs; app_policies with
// the predefined entries and, for every other app of the snapshot, the master's policy when the
// master knows the app and "default" when it does not. Values SDL Core would drop are filtered out,
// so the PTU validates as a PTU whenever the master does.
func BuildPTU(master, pts Table) (Table, error) {
	if err := CheckSnapshot(pts); err != nil {
		return nil, err
	}
	m := master.Clone().Body()
	if m == nil {
		return nil, fmt.Errorf("policy: master table has no policy_table")
	}
	snap := pts.Body()
	out := map[string]any{
		"module_config":        m["module_config"],
		"functional_groupings": m["functional_groupings"],
	}
	if cfm, ok := m["consumer_friendly_messages"].(map[string]any); ok {
		theirs, _ := snap["consumer_friendly_messages"].(map[string]any)
		if theirs != nil && theirs["version"] == cfm["version"] {
			out["consumer_friendly_messages"] = map[string]any{"version": cfm["version"]}
		} else {
			out["consumer_friendly_messages"] = cfm
		}
	}
	if vd, ok := m["vehicle_data"].(map[string]any); ok {
		theirs, _ := snap["vehicle_data"].(map[string]any)
		if theirs == nil || theirs["schema_version"] != vd["schema_version"] {
			out["vehicle_data"] = vd
		}
	}
	masterApps, _ := m["app_policies"].(map[string]any)
	apps := map[string]any{}
	for _, id := range predefinedApps {
		apps[id] = masterApps[id]
	}
	snapApps, _ := snap["app_policies"].(map[string]any)
	for id := range snapApps {
		if _, done := apps[id]; done {
			continue
		}
		if policy, known := masterApps[id]; known {
			apps[id] = policy
		} else {
			apps[id] = "default"
		}
	}
	out["app_policies"] = apps
	return Filter(Update, Table{"policy_table": out}), nil
}

//go:embed testdata/sdl_core-sdl_preloaded_pt.json
var preloadedJSON []byte

// PreloadedTable returns SDL Core 8.2's preloaded policy table (sdl_preloaded_pt.json, BSD-3;
// provenance in testdata/SOURCES.md).
func PreloadedTable() Table {
	t, err := Parse(preloadedJSON)
	if err != nil {
		panic("policy: embedded preloaded table: " + err.Error())
	}
	return t
}

// DefaultMaster is the master table a policy server environment starts with: the preloaded
// table made a valid PTU source (without preloaded_pt and preloaded_date, filtered as Core
// filters a PTU).
func DefaultMaster() Table {
	t := PreloadedTable()
	mc := t.Section("module_config")
	delete(mc, "preloaded_pt")
	delete(mc, "preloaded_date")
	return Filter(Update, t)
}
