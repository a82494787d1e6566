package policy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Problem is one finding of the validator: where (a JSON path such as
// policy_table.module_config.seconds_between_retries or …seconds_between_retries[2]) and what.
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Report is the outcome of a validation. Errors make the table invalid (a PTU with any is
// discarded, requirement 11); warnings describe what SDL Core ignores or silently drops.
type Report struct {
	Valid    bool      `json:"valid"`
	Errors   []Problem `json:"errors"`
	Warnings []Problem `json:"warnings"`
}

// Validate checks t against the data dictionary for a table of kind k and reports every problem
// with its path. It never modifies t.
func Validate(k Kind, t Table) Report {
	w := &walker{kind: k, d: theDict}
	w.walkRoot(map[string]any(t))
	w.rules(t)
	return w.report()
}

// Filter returns a copy of t without the values SDL Core drops before it validates a table of
// kind k (unknown priorities, RPC names, request types, …; the rows with Drop in the dictionary,
// and RPC parameters that are neither a Parameter nor a vehicle_data item).
func Filter(k Kind, t Table) Table {
	c := t.Clone()
	w := &walker{kind: k, d: theDict, filter: true}
	w.walkRoot(map[string]any(c))
	return c
}

type walker struct {
	kind     Kind
	d        *dict
	filter   bool // remove droppable values
	errors   []Problem
	warnings []Problem
	params   map[string]bool // vehicle data names known to this table
}

func (w *walker) errorf(path, format string, args ...any) {
	w.errors = append(w.errors, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (w *walker) warnf(path, format string, args ...any) {
	w.warnings = append(w.warnings, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (w *walker) report() Report {
	r := Report{Valid: len(w.errors) == 0, Errors: w.errors, Warnings: w.warnings}
	if r.Errors == nil {
		r.Errors = []Problem{}
	}
	if r.Warnings == nil {
		r.Warnings = []Problem{}
	}
	return r
}

func (w *walker) walkRoot(doc map[string]any) {
	w.params = vehicleDataNames(doc)
	w.object(doc, "", "")
}

// object checks the named fields of an object at pattern.
func (w *walker) object(m map[string]any, path, pattern string) {
	known := map[string]bool{}
	for _, f := range w.d.fieldsOf(pattern) {
		_, name := splitPath(f.Path)
		if name == "*" || name == "[]" {
			continue
		}
		known[name] = true
		w.member(m, name, join(path, name), f)
	}
	for _, name := range sortedKeys(m) {
		if !known[name] {
			w.warnf(join(path, name), "not in the data dictionary; SDL Core ignores it")
		}
	}
}

// member checks the presence of m[name] for the kind, then its value.
func (w *walker) member(m map[string]any, name, path string, f *Field) {
	v, present := m[name]
	switch p := f.PresenceIn(w.kind); {
	case !present && p == Required:
		w.errorf(path, "is required in %s but missing", coreNames[w.kind])
	case present && p == Omitted:
		w.errorf(path, "should be omitted in %s", coreNames[w.kind])
	case present:
		if out, keep := w.value(v, path, f); w.filter && !keep {
			delete(m, name)
		} else if w.filter {
			m[name] = out
		}
	}
}

// value checks v against row f. In filter mode it returns v without the droppable values inside
// it, and keep = false when v itself is to be dropped.
func (w *walker) value(v any, path string, f *Field) (out any, keep bool) {
	if v == nil {
		if !f.Nullable {
			w.errorf(path, "is null, expected %s", typeNames[f.Type])
		}
		return v, true
	}
	switch f.Type {
	case Object:
		if s, ok := v.(string); ok && contains(f.Values, s) {
			return v, true
		}
		m, ok := v.(map[string]any)
		if !ok {
			w.typeError(v, path, f)
			return v, true
		}
		w.object(m, path, f.Path)
	case Map:
		m, ok := v.(map[string]any)
		if !ok {
			w.typeError(v, path, f)
			return v, true
		}
		w.mapValue(m, path, f)
	case Array:
		a, ok := v.([]any)
		if !ok {
			w.typeError(v, path, f)
			return v, true
		}
		return w.arrayValue(a, path, f), true
	case String:
		s, ok := v.(string)
		if !ok {
			w.typeError(v, path, f)
			return v, true
		}
		w.bounds(int64(len(s)), path, f, "length")
		if f.Path == parameterRow && !w.params[s] && !w.d.enums["Parameter"][s] {
			w.warnf(path, "%q is neither a Parameter nor a vehicle_data item; SDL Core drops it from a PTU", s)
			return v, !w.filter
		}
	case Int:
		n, ok := v.(json.Number)
		if !ok {
			w.typeError(v, path, f)
			return v, true
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			w.errorf(path, "must be an integer, not %s", n)
			return v, true
		}
		w.bounds(i, path, f, "value")
	case Number:
		if _, ok := v.(json.Number); !ok {
			w.typeError(v, path, f)
		}
	case Bool:
		if _, ok := v.(bool); !ok {
			w.typeError(v, path, f)
		}
	case Enum:
		s, ok := v.(string)
		if !ok {
			w.typeError(v, path, f)
			return v, true
		}
		if !w.d.enums[f.Enum][s] {
			if f.drops(w.kind) {
				w.warnf(path, "%q is not a %s; SDL Core drops it", s, f.Enum)
				return v, !w.filter
			}
			w.errorf(path, "%q is not a %s (one of %s)", s, f.Enum, strings.Join(Enums[f.Enum], ", "))
		}
	}
	return v, true
}

const parameterRow = "policy_table.functional_groupings.*.rpcs.*.parameters[]"

func (w *walker) typeError(v any, path string, f *Field) {
	w.errorf(path, "is %s, expected %s", jsonType(v), typeNames[f.Type])
}

func (w *walker) bounds(n int64, path string, f *Field, what string) {
	if f.Max == 0 || (n >= f.Min && n <= f.Max) {
		return
	}
	switch what {
	case "value":
		w.errorf(path, "%d is out of range %d..%d", n, f.Min, f.Max)
	case "length":
		w.errorf(path, "length %d is out of range %d..%d", n, f.Min, f.Max)
	default:
		w.errorf(path, "has %d %s, expected %d..%d", n, what, f.Min, f.Max)
	}
}

func (w *walker) mapValue(m map[string]any, path string, f *Field) {
	keys := sortedKeys(m)
	if f.Enum != "" {
		for _, k := range keys {
			if w.d.enums[f.Enum][k] {
				continue
			}
			if f.drops(w.kind) {
				w.warnf(join(path, k), "%q is not a %s; SDL Core drops it", k, f.Enum)
				if w.filter {
					delete(m, k)
				}
			} else {
				w.errorf(join(path, k), "%q is not a %s", k, f.Enum)
			}
		}
		keys = sortedKeys(m)
	}
	w.bounds(int64(len(m)), path, f, "entries")
	literal := map[string]bool{}
	for _, r := range w.d.keyRows(f.Path) {
		_, name := splitPath(r.Path)
		literal[name] = true
		w.member(m, name, join(path, name), r)
	}
	elem := w.d.element(f.Path, "*")
	for _, k := range keys {
		if literal[k] {
			continue
		}
		if elem == nil {
			w.warnf(join(path, k), "not in the data dictionary; SDL Core ignores it")
			continue
		}
		if out, keep := w.value(m[k], join(path, k), elem); w.filter && !keep {
			delete(m, k)
		} else if w.filter {
			m[k] = out
		}
	}
}

func (w *walker) arrayValue(a []any, path string, f *Field) []any {
	elem := w.d.element(f.Path, "[]")
	kept := make([]any, 0, len(a))
	for i, v := range a {
		if elem == nil {
			kept = append(kept, v)
			continue
		}
		if out, keep := w.value(v, path+"["+strconv.Itoa(i)+"]", elem); keep {
			kept = append(kept, out)
		}
	}
	if !w.filter {
		kept = a
	}
	w.bounds(int64(len(kept)), path, f, "elements")
	return kept
}

// join appends an object key to a JSON path, quoting keys that would make the path ambiguous.
func join(path, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key)
		return path + "[" + key + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_\-]+$`)

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
