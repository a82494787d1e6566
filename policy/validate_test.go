package policy

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	preloadedFile     = "sdl_core-sdl_preloaded_pt.json"
	validPTUFile      = "sdl_atf_test_scripts-valid_PTU_all_sections.json"
	invalidPTUFile    = "sdl_atf_test_scripts-invalid_PTU_missing_seconds_between_retries.json"
	omittedPTUFile    = "sdl_atf_test_scripts-PTU_has_omitted.json"
	projectionWarning = `"PROJECTION" is not a Priority; SDL Core drops it`
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func loadTable(t testing.TB, name string) Table {
	t.Helper()
	tb, err := Parse(readTestdata(t, name))
	require.NoError(t, err)
	return tb
}

func TestUpstreamTables(t *testing.T) {
	t.Run("preloaded table is a valid PT", func(t *testing.T) {
		r := Validate(Preloaded, loadTable(t, preloadedFile))
		assert.True(t, r.Valid)
		assert.Empty(t, r.Errors)
		assert.Equal(t, []Problem{
			{"policy_table.module_config.notifications_per_minute_by_priority.PROJECTION", projectionWarning},
			{"policy_table.module_config.subtle_notifications_per_minute_by_priority.PROJECTION", projectionWarning},
		}, r.Warnings)
	})
	t.Run("preloaded table is not a PTU as it stands", func(t *testing.T) {
		r := Validate(Update, loadTable(t, preloadedFile))
		assert.False(t, r.Valid)
		assert.Equal(t, []Problem{{"policy_table.module_config.preloaded_pt", "should be omitted in PT_UPDATE"}}, r.Errors)
	})
	t.Run("upstream valid PTU is accepted", func(t *testing.T) {
		r := Validate(Update, loadTable(t, validPTUFile))
		assert.True(t, r.Valid)
		assert.Empty(t, r.Errors)
	})
	t.Run("upstream invalid PTU is rejected with every problem", func(t *testing.T) {
		r := Validate(Update, loadTable(t, invalidPTUFile))
		assert.False(t, r.Valid)
		assert.Equal(t, []Problem{
			{"policy_table.module_config.preloaded_pt", "should be omitted in PT_UPDATE"},
			{"policy_table.module_config.seconds_between_retries", "is required in PT_UPDATE but missing"},
			{"policy_table.module_meta", "should be omitted in PT_UPDATE"},
			{"policy_table.usage_and_error_counts", "should be omitted in PT_UPDATE"},
			{"policy_table.device_data", "should be omitted in PT_UPDATE"},
		}, r.Errors)
	})
	t.Run("PTU with preloaded_date is rejected (EXTERNAL_PROPRIETARY rules)", func(t *testing.T) {
		r := Validate(Update, loadTable(t, omittedPTUFile))
		assert.False(t, r.Valid)
		assert.Equal(t, []Problem{{"policy_table.module_config.preloaded_date", "should be omitted in PT_UPDATE"}}, r.Errors)
	})
}

func TestParseForms(t *testing.T) {
	bare := readTestdata(t, validPTUFile)
	var inner any
	require.NoError(t, json.Unmarshal(bare, &inner))
	envelope, err := json.Marshal(map[string]any{"data": []any{inner}})
	require.NoError(t, err)
	forms := map[string][]byte{
		"bare":             bare,
		"envelope":         envelope,
		"base64 bare":      []byte(base64.StdEncoding.EncodeToString(bare)),
		"base64 envelope":  []byte(base64.StdEncoding.EncodeToString(envelope)),
		"base64 with wrap": []byte(wrap(base64.StdEncoding.EncodeToString(bare), 76)),
	}
	for name, b := range forms {
		t.Run(name, func(t *testing.T) {
			tb, err := Parse(b)
			require.NoError(t, err)
			r := Validate(Update, tb)
			assert.True(t, r.Valid, "%v", r.Errors)
			assert.Equal(t, "001.001.023", tb.Section("consumer_friendly_messages")["version"])
		})
	}
	for name, b := range map[string]string{
		"garbage":          "not a table",
		"base64 of text":   base64.StdEncoding.EncodeToString([]byte("hello")),
		"json array":       `[1,2]`,
		"truncated":        `{"policy_table": {`,
		"empty envelope":   `{"data": []}`,
		"two objects":      `{} {}`,
		"empty":            ``,
		"base64 of number": base64.StdEncoding.EncodeToString([]byte("42")),
	} {
		t.Run("rejects "+name, func(t *testing.T) {
			_, err := Parse([]byte(b))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "invalid_entity")
		})
	}
}

func wrap(s string, n int) string {
	out := ""
	for len(s) > n {
		out += s[:n] + "\n"
		s = s[n:]
	}
	return out + s
}

// mutate returns the preloaded table changed by fn (given the policy_table object).
func mutate(t *testing.T, name string, fn func(pt map[string]any)) Table {
	tb := loadTable(t, name)
	fn(tb.Body())
	return tb
}

func obj(v any) map[string]any { return v.(map[string]any) }

func TestDictionaryRules(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	cases := []struct {
		name string
		kind Kind
		file string
		fn   func(pt map[string]any)
		want Problem
	}{
		{"six retries", Preloaded, preloadedFile, func(pt map[string]any) {
			obj(pt["module_config"])["seconds_between_retries"] = []any{n("1"), n("2"), n("3"), n("4"), n("5"), n("6")}
		}, Problem{"policy_table.module_config.seconds_between_retries", "has 6 elements, expected 0..5"}},
		{"retry of 0 s", Update, validPTUFile, func(pt map[string]any) {
			obj(pt["module_config"])["seconds_between_retries"] = []any{n("1"), n("0")}
		}, Problem{"policy_table.module_config.seconds_between_retries[1]", "0 is out of range 1..1000"}},
		{"retry of 1001 s", Update, validPTUFile, func(pt map[string]any) {
			obj(pt["module_config"])["seconds_between_retries"] = []any{n("1001")}
		}, Problem{"policy_table.module_config.seconds_between_retries[0]", "1001 is out of range 1..1000"}},
		{"fractional timeout", Update, validPTUFile, func(pt map[string]any) {
			obj(pt["module_config"])["timeout_after_x_seconds"] = n("1.5")
		}, Problem{"policy_table.module_config.timeout_after_x_seconds", "must be an integer, not 1.5"}},
		{"timeout as string", Update, validPTUFile, func(pt map[string]any) {
			obj(pt["module_config"])["timeout_after_x_seconds"] = "60"
		}, Problem{"policy_table.module_config.timeout_after_x_seconds", "is a string, expected an integer"}},
		{"endpoint without default", Update, validPTUFile, func(pt map[string]any) {
			obj(obj(pt["module_config"])["endpoints"])["0x07"] = map[string]any{"123": []any{"http://example.com/p"}}
		}, Problem{"policy_table.module_config.endpoints.0x07.default", "is required in PT_UPDATE but missing"}},
		{"endpoint with four URLs", Update, validPTUFile, func(pt map[string]any) {
			u := "http://example.com/p"
			obj(obj(pt["module_config"])["endpoints"])["0x07"] = map[string]any{"default": []any{u, u, u, u}}
		}, Problem{"policy_table.module_config.endpoints.0x07.default", "has 4 elements, expected 1..3"}},
		{"app endpoint with no URL", Update, validPTUFile, func(pt map[string]any) {
			obj(obj(obj(pt["module_config"])["endpoints"])["0x07"])["123"] = []any{}
		}, Problem{"policy_table.module_config.endpoints.0x07.123", "has 0 elements, expected 1..3"}},
		{"short URL", Update, validPTUFile, func(pt map[string]any) {
			obj(obj(pt["module_config"])["endpoints"])["0x07"] = map[string]any{"default": []any{"http://a"}}
		}, Problem{"policy_table.module_config.endpoints.0x07.default[0]", "length 8 is out of range 10..255"}},
		{"message without en-us", Preloaded, preloadedFile, func(pt map[string]any) {
			langs := obj(obj(obj(obj(pt["consumer_friendly_messages"])["messages"])["AppPermissions"])["languages"])
			delete(langs, "en-us")
		}, Problem{"policy_table.consumer_friendly_messages.messages.AppPermissions.languages.en-us", "is required in PT_PRELOADED but missing"}},
		{"no device policy", Update, validPTUFile, func(pt map[string]any) {
			delete(obj(pt["app_policies"]), "device")
		}, Problem{"policy_table.app_policies.device", "is required in PT_UPDATE but missing"}},
		{"no default policy", Preloaded, preloadedFile, func(pt map[string]any) {
			delete(obj(pt["app_policies"]), "default")
		}, Problem{"policy_table.app_policies.default", "is required in PT_PRELOADED but missing"}},
		{"no pre_DataConsent policy", Update, validPTUFile, func(pt map[string]any) {
			delete(obj(pt["app_policies"]), "pre_DataConsent")
		}, Problem{"policy_table.app_policies.pre_DataConsent", "is required in PT_UPDATE but missing"}},
		{"app without groups", Update, validPTUFile, func(pt map[string]any) {
			obj(obj(pt["app_policies"])["123456"])["groups"] = []any{}
		}, Problem{"policy_table.app_policies.123456.groups", "has 0 elements, expected 1..255"}},
		{"bad priority", Update, validPTUFile, func(pt map[string]any) {
			obj(obj(pt["app_policies"])["123456"])["priority"] = "URGENT"
		}, Problem{"policy_table.app_policies.123456.priority", `"URGENT" is not a Priority (one of EMERGENCY, NAVIGATION, VOICECOM, COMMUNICATION, NORMAL, NONE)`}},
		{"missing steal_focus", Update, validPTUFile, func(pt map[string]any) {
			delete(obj(obj(pt["app_policies"])["device"]), "steal_focus")
		}, Problem{"policy_table.app_policies.device.steal_focus", "is required in PT_UPDATE but missing"}},
		{"more preconsented than groups", Update, validPTUFile, func(pt map[string]any) {
			obj(obj(pt["app_policies"])["123456"])["preconsented_groups"] = []any{"Base-4", "Location-1"}
		}, Problem{"policy_table.app_policies.123456.preconsented_groups", "has 2 groups, more than the 1 of groups"}},
		{"snapshot with messages", Snapshot, preloadedFile, func(pt map[string]any) {}, Problem{"policy_table.consumer_friendly_messages.messages", "should be omitted in PT_SNAPSHOT"}},
		{"preloaded with vehicle_make", Preloaded, preloadedFile, func(pt map[string]any) {
			obj(pt["module_config"])["vehicle_make"] = "Ford"
		}, Problem{"policy_table.module_config.vehicle_make", "should be omitted in PT_PRELOADED"}},
		{"no functional groupings", Update, validPTUFile, func(pt map[string]any) {
			pt["functional_groupings"] = map[string]any{}
		}, Problem{"policy_table.functional_groupings", "has 0 entries, expected 1..255"}},
		{"bad hmi level in preloaded", Preloaded, preloadedFile, func(pt map[string]any) {
			rpc := obj(obj(obj(obj(pt["functional_groupings"])["Base-4"])["rpcs"])["AddCommand"])
			rpc["hmi_levels"] = []any{"FULL", "HALF"}
		}, Problem{"policy_table.functional_groupings.Base-4.rpcs.AddCommand.hmi_levels[1]", `"HALF" is not a HmiLevel (one of BACKGROUND, FULL, LIMITED, NONE)`}},
		{"vehicle data version without items", Update, validPTUFile, func(pt map[string]any) {
			pt["vehicle_data"] = map[string]any{"schema_version": "1.0.0"}
		}, Problem{"policy_table.vehicle_data", "schema_version and schema_items must both be present or both be absent in PT_UPDATE"}},
		{"struct without params", Preloaded, preloadedFile, func(pt map[string]any) {
			items := obj(pt["vehicle_data"])["schema_items"].([]any)
			delete(obj(items[0]), "params")
		}, Problem{"policy_table.vehicle_data.schema_items[0].params", "a Struct needs at least one param"}},
		{"nested vehicle data item without key", Preloaded, preloadedFile, func(pt map[string]any) {
			items := obj(pt["vehicle_data"])["schema_items"].([]any)
			delete(obj(obj(items[0])["params"].([]any)[1]), "key")
		}, Problem{"policy_table.vehicle_data.schema_items[0].params[1].key", "is required in PT_PRELOADED but missing"}},
		{"null module_config", Update, validPTUFile, func(pt map[string]any) {
			pt["module_config"] = nil
		}, Problem{"policy_table.module_config", "is null, expected an object"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Validate(c.kind, mutate(t, c.file, c.fn))
			assert.False(t, r.Valid)
			assert.Contains(t, r.Errors, c.want)
		})
	}
}

func TestValidateAcceptsCoreNotations(t *testing.T) {
	tb := mutate(t, validPTUFile, func(pt map[string]any) {
		apps := obj(pt["app_policies"])
		apps["777"] = "default" // the app gets the default policy
		apps["888"] = nil       // the app is revoked
		apps["999"] = "pre_DataConsent"
		obj(obj(pt["functional_groupings"])["Base-4"])["rpcs"].(map[string]any)["NoSuchRPC"] = map[string]any{"hmi_levels": []any{"FULL"}}
		pt["extra_section"] = true
	})
	r := Validate(Update, tb)
	assert.True(t, r.Valid, "%v", r.Errors)
	assert.Contains(t, r.Warnings, Problem{"policy_table.functional_groupings.Base-4.rpcs.NoSuchRPC", `"NoSuchRPC" is not a FunctionID; SDL Core drops it`})
	assert.Contains(t, r.Warnings, Problem{"policy_table.extra_section", "not in the data dictionary; SDL Core ignores it"})

	tb = mutate(t, validPTUFile, func(pt map[string]any) { obj(pt["app_policies"])["777"] = "somebody" })
	assert.Contains(t, Validate(Update, tb).Errors, Problem{"policy_table.app_policies.777", "is a string, expected an object"})
}

func TestFilterDropsWhatCoreDrops(t *testing.T) {
	pt := loadTable(t, preloadedFile)
	before := string(pt.MarshalIndent())
	f := Filter(Update, pt)
	assert.Equal(t, before, string(pt.MarshalIndent()), "Filter must not modify its input")
	notif := obj(f.Section("module_config")["notifications_per_minute_by_priority"])
	assert.NotContains(t, notif, "PROJECTION")
	assert.Contains(t, notif, "EMERGENCY")
	r := Validate(Update, f)
	assert.NotContains(t, r.Warnings, Problem{"policy_table.module_config.notifications_per_minute_by_priority.PROJECTION", projectionWarning})

	withBad := mutate(t, validPTUFile, func(p map[string]any) {
		obj(obj(p["app_policies"])["123456"])["AppHMIType"] = []any{"MEDIA", "SPACESHIP"}
	})
	assert.Contains(t, Validate(Update, withBad).Warnings, Problem{"policy_table.app_policies.123456.AppHMIType[1]", `"SPACESHIP" is not a AppHMIType; SDL Core drops it`})
	assert.Equal(t, []any{"MEDIA"}, obj(Filter(Update, withBad).Section("app_policies")["123456"])["AppHMIType"])
	assert.Contains(t, Validate(Preloaded, withBad).Errors, Problem{"policy_table.app_policies.123456.AppHMIType[1]", `"SPACESHIP" is not a AppHMIType (one of DEFAULT, COMMUNICATION, MEDIA, MESSAGING, NAVIGATION, INFORMATION, SOCIAL, BACKGROUND_PROCESS, TESTING, SYSTEM, PROJECTION, REMOTE_CONTROL, WEB_VIEW)`})
}

func TestDictionaryIsConsistent(t *testing.T) {
	for _, f := range Dictionary {
		parent, last := splitPath(f.Path)
		if parent == "" {
			continue
		}
		p := theDict.byPath[parent]
		require.NotNil(t, p, "row %s has no parent row", f.Path)
		switch last {
		case "*":
			assert.Equal(t, Map, p.Type, "%s: * under a non-map", f.Path)
			assert.Empty(t, f.Presence, f.Path)
		case "[]":
			assert.Equal(t, Array, p.Type, "%s: [] under a non-array", f.Path)
			assert.Empty(t, f.Presence, f.Path)
		default:
			assert.Contains(t, []Type{Object, Map}, p.Type, "%s: named field under %v", f.Path, p.Type)
			assert.Regexp(t, `^[RXO]{3}$`, f.Presence, f.Path)
		}
		if f.Type == Enum || f.Drop != "" {
			assert.Contains(t, Enums, f.Enum, f.Path)
		}
	}
	for from, to := range like {
		assert.NotNil(t, theDict.byPath[to], "like %s -> %s", from, to)
	}
}
