package policy

import (
	"fmt"
	"strings"
)

// Rule is a check that spans several fields of the dictionary. Rules are data too: Path says where
// the rule reports, Kinds in which kinds it applies (P, S, U), Text what it demands.
type Rule struct {
	Path  string
	Kinds string
	Text  string
	check func(w *walker, body map[string]any)
}

// Rules are the cross-field checks SDL Core applies after the per-field ones.
var Rules = []Rule{
	{Path: "policy_table.app_policies.*.preconsented_groups", Kinds: "PSU",
		Text: "an app cannot have more preconsented groups than groups", check: checkPreconsented},
	{Path: "policy_table.app_policies.*.groups", Kinds: "PS",
		Text: "an app cannot have more groups than there are functional groupings", check: checkGroupCount},
	{Path: "policy_table.app_policies.*.groups[]", Kinds: "PSU",
		Text: "(warning) a group should name a functional grouping of the table", check: checkGroupNames},
	{Path: "policy_table.vehicle_data", Kinds: "PU",
		Text: "schema_version and schema_items come together or not at all", check: checkVehicleDataPair},
	{Path: "policy_table.vehicle_data.schema_items[]", Kinds: "PSU",
		Text: "a Struct item has params, other types have none; name and key have no spaces or !@#$%^&*; type is known", check: checkVehicleDataItems},
}

func (w *walker) rules(t Table) {
	body := t.Body()
	if body == nil {
		return
	}
	for _, r := range Rules {
		if strings.IndexByte(r.Kinds, "PSU"[w.kind]) >= 0 {
			r.check(w, body)
		}
	}
}

// apps yields the object-valued app policies in key order.
func apps(body map[string]any, fn func(id string, app map[string]any)) {
	all, _ := body["app_policies"].(map[string]any)
	for _, id := range sortedKeys(all) {
		if app, ok := all[id].(map[string]any); ok {
			fn(id, app)
		}
	}
}

func appPath(id, field string) string {
	return join(join("policy_table.app_policies", id), field)
}

func checkPreconsented(w *walker, body map[string]any) {
	apps(body, func(id string, app map[string]any) {
		groups, _ := app["groups"].([]any)
		pre, ok := app["preconsented_groups"].([]any)
		if ok && len(pre) > len(groups) {
			w.errorf(appPath(id, "preconsented_groups"), "has %d groups, more than the %d of groups", len(pre), len(groups))
		}
	})
}

func checkGroupCount(w *walker, body map[string]any) {
	fg, ok := body["functional_groupings"].(map[string]any)
	if !ok {
		return
	}
	apps(body, func(id string, app map[string]any) {
		if groups, _ := app["groups"].([]any); len(groups) > len(fg) {
			w.errorf(appPath(id, "groups"), "has %d groups, more than the %d functional groupings", len(groups), len(fg))
		}
	})
}

func checkGroupNames(w *walker, body map[string]any) {
	fg, ok := body["functional_groupings"].(map[string]any)
	if !ok {
		return
	}
	apps(body, func(id string, app map[string]any) {
		groups, _ := app["groups"].([]any)
		for i, g := range groups {
			name, ok := g.(string)
			if _, exists := fg[name]; ok && !exists {
				w.warnf(fmt.Sprintf("%s[%d]", appPath(id, "groups"), i), "%q is not a functional grouping of this table", name)
			}
		}
	})
}

func checkVehicleDataPair(w *walker, body map[string]any) {
	vd, ok := body["vehicle_data"].(map[string]any)
	if !ok {
		return
	}
	_, hasVersion := vd["schema_version"]
	_, hasItems := vd["schema_items"]
	if hasVersion != hasItems {
		w.errorf("policy_table.vehicle_data", "schema_version and schema_items must both be present or both be absent in %s", coreNames[w.kind])
	}
}

func checkVehicleDataItems(w *walker, body map[string]any) {
	vd, _ := body["vehicle_data"].(map[string]any)
	items, _ := vd["schema_items"].([]any)
	w.vehicleDataItems(items, "policy_table.vehicle_data.schema_items")
}

func (w *walker) vehicleDataItems(items []any, path string) {
	for i, it := range items {
		item, ok := it.(map[string]any)
		if !ok {
			continue
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		for _, field := range []string{"name", "key"} {
			if s, ok := item[field].(string); ok && !goodName(s) {
				w.errorf(p+"."+field, "%q must not be empty or contain spaces or any of !@#$%%^&*", s)
			}
		}
		typ, _ := item["type"].(string)
		params, hasParams := item["params"].([]any)
		switch {
		case typ == "":
		case !w.d.enums["VehicleDataType"][typ]:
			w.errorf(p+".type", "unknown type %q", typ)
		case typ == "Struct" && len(params) == 0:
			w.errorf(p+".params", "a Struct needs at least one param")
		case typ != "Struct" && hasParams && len(params) > 0:
			w.errorf(p+".params", "only a Struct has params, not %s", typ)
		}
		w.vehicleDataItems(params, p+".params")
	}
}

func goodName(s string) bool {
	return strings.TrimSpace(s) != "" && !strings.ContainsAny(s, " \t\r\n\v\f!@#$%^&*")
}

// vehicleDataNames returns the names of the top-level vehicle_data items of a table.
func vehicleDataNames(doc map[string]any) map[string]bool {
	names := map[string]bool{}
	body, _ := doc["policy_table"].(map[string]any)
	vd, _ := body["vehicle_data"].(map[string]any)
	items, _ := vd["schema_items"].([]any)
	for _, it := range items {
		if item, ok := it.(map[string]any); ok {
			if n, ok := item["name"].(string); ok {
				names[n] = true
			}
		}
	}
	return names
}
