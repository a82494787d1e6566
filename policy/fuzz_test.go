package policy

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// FuzzValidate feeds arbitrary bytes through Parse, Validate (every kind) and Filter: none may
// panic, Validate must not change the table, and a filtered table has nothing left to drop.
func FuzzValidate(f *testing.F) {
	for _, name := range []string{preloadedFile, validPTUFile, invalidPTUFile, omittedPTUFile} {
		f.Add(small(loadTable(f, name)))
	}
	f.Add([]byte(`{"policy_table":{"module_config":{"seconds_between_retries":[1,0,1e3,"x",null]},"app_policies":{"a":"default","b":null,"c":7}}}`))
	f.Add([]byte(`{"data":[{"policy_table":{"vehicle_data":{"schema_items":[{"type":"Struct","params":[{"params":[{}]}]}]}}}]}`))
	f.Add([]byte(base64.StdEncoding.EncodeToString([]byte(`{"policy_table":{}}`))))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := Parse(data)
		if err != nil {
			return
		}
		before := string(tb.MarshalIndent())
		for _, k := range []Kind{Preloaded, Snapshot, Update} {
			r := Validate(k, tb)
			if r.Valid != (len(r.Errors) == 0) {
				t.Fatalf("%v: valid=%v with %d errors", k, r.Valid, len(r.Errors))
			}
			filtered := Filter(k, tb)
			again := Validate(k, filtered)
			for _, w := range again.Warnings {
				if hasSuffix(w.Message, "drops it") || hasSuffix(w.Message, "drops it from a PTU") {
					t.Fatalf("%v: filtered table still has %s: %s", k, w.Path, w.Message)
				}
			}
		}
		if after := string(tb.MarshalIndent()); after != before {
			t.Fatalf("Validate or Filter modified its input")
		}
	})
}

// small keeps the first two entries of every map and array of t, so that seeds are a few
// kilobytes and the fuzzer mutates structure rather than bulk.
func small(t Table) []byte {
	var cut func(v any) any
	cut = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			keep := map[string]bool{"policy_table": true, "module_config": true, "app_policies": true, "default": true, "device": true, "pre_DataConsent": true, "en-us": true}
			n := 0
			for _, k := range sortedKeys(x) {
				if keep[k] || n < 2 || len(x) < 12 {
					out[k] = cut(x[k])
					if !keep[k] {
						n++
					}
				}
			}
			return out
		case []any:
			if len(x) > 2 {
				x = x[:2]
			}
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = cut(e)
			}
			return out
		}
		return v
	}
	b, err := json.Marshal(cut(map[string]any(t)))
	if err != nil {
		panic(err)
	}
	return b
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}
