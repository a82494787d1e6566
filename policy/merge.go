package policy

// Merge applies a PTU to the local table and returns the new local table; neither input is
// modified. The PTU is first filtered as SDL Core does and validated as a PTU (requirement 10);
// when it is invalid, Merge returns the local table unchanged with the report (requirement 11:
// discard it). Otherwise module_config, functional_groupings and app_policies are replaced by the
// PTU's (requirement 13); consumer_friendly_messages is replaced only when the PTU's carries
// messages (requirement 14) and kept otherwise (requirement 15); vehicle_data, when the PTU
// carries it, is replaced as SDL Core does.
func Merge(local, ptu Table) (Table, Report) {
	ptu = Filter(Update, ptu)
	r := Validate(Update, ptu)
	if !r.Valid {
		return local, r
	}
	out := local.Clone()
	body := out.Body()
	if body == nil {
		body = map[string]any{}
		out["policy_table"] = body
	}
	update := ptu.Body()
	for _, section := range []string{"module_config", "functional_groupings", "app_policies"} {
		body[section] = update[section]
	}
	if cfm, ok := update["consumer_friendly_messages"].(map[string]any); ok {
		if _, has := cfm["messages"]; has {
			body["consumer_friendly_messages"] = cfm
		}
	}
	if vd, ok := update["vehicle_data"]; ok {
		body["vehicle_data"] = vd
	}
	return out, r
}
