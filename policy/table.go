package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"sota/errs"
)

// Kind is the role a policy table plays in the exchange; the data dictionary gives every field a
// status (required, optional, omitted) per kind.
type Kind int

// The three kinds of the data dictionary.
const (
	Preloaded Kind = iota // PT: the table shipped with the head unit
	Snapshot              // PTS: what SDL sends to the policy server
	Update                // PTU: what the policy server answers
)

var kindNames = [...]string{"preloaded", "pts", "ptu"}

// coreNames are the names SDL Core prints in its validation reports.
var coreNames = [...]string{"PT_PRELOADED", "PT_SNAPSHOT", "PT_UPDATE"}

func (k Kind) String() string { return kindNames[k] }

// ParseKind reads "preloaded", "pts" or "ptu" (also "pt", "snapshot", "update").
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "preloaded", "pt":
		return Preloaded, nil
	case "pts", "snapshot":
		return Snapshot, nil
	case "ptu", "update":
		return Update, nil
	}
	return 0, errs.InvalidEntity("kind must be ptu, pts or preloaded, not %q", s)
}

// Table is one policy table document, {"policy_table": {...}}, as decoded JSON: objects are
// map[string]any, arrays []any, numbers json.Number. Tables are values: the functions of this
// package never modify a table they are given.
type Table map[string]any

// Body returns the policy_table object, or nil when the document has none.
func (t Table) Body() map[string]any {
	m, _ := t["policy_table"].(map[string]any)
	return m
}

// Section returns the named top-level section of policy_table as an object, or nil.
func (t Table) Section(name string) map[string]any {
	m, _ := t.Body()[name].(map[string]any)
	return m
}

// Clone returns a deep copy of t.
func (t Table) Clone() Table {
	if t == nil {
		return nil
	}
	return deepCopy(map[string]any(t)).(map[string]any)
}

// MarshalIndent encodes t as indented JSON.
func (t Table) MarshalIndent() []byte {
	b, err := json.MarshalIndent(map[string]any(t), "", "  ")
	if err != nil { // decoded JSON always encodes
		panic(err)
	}
	return b
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = deepCopy(e)
		}
		return a
	default:
		return v
	}
}

// ErrNotJSON is wrapped by Parse when the input is neither JSON nor Base64 of JSON.
var ErrNotJSON = errors.New("neither JSON nor Base64-encoded JSON")

// Parse reads a policy table in any of the forms that travel between SDL and a policy server
// (requirement 9 of the PTU sequence): a bare {"policy_table": …}, the policy server's envelope
// {"data": [{"policy_table": …}]}, or the Base64 encoding of either. It returns a 400
// invalid_entity *errs.Error when the bytes are none of these. Parse does not validate the table.
func Parse(data []byte) (Table, error) {
	text := bytes.TrimSpace(data)
	if len(text) > 0 && text[0] != '{' {
		decoded, ok := decodeBase64(text)
		if !ok {
			return nil, errs.InvalidEntity("policy table is %v", ErrNotJSON).With("cause", ErrNotJSON.Error())
		}
		text = bytes.TrimSpace(decoded)
	}
	doc, err := decodeObject(text)
	if err != nil {
		return nil, errs.InvalidEntity("policy table is %v: %v", ErrNotJSON, err)
	}
	if data, ok := doc["data"].([]any); ok && doc["policy_table"] == nil {
		if len(data) == 0 {
			return nil, errs.InvalidEntity("policy table envelope has an empty data array")
		}
		first, ok := data[0].(map[string]any)
		if !ok {
			return nil, errs.InvalidEntity("policy table envelope: data[0] is not an object")
		}
		return Table(first), nil
	}
	return Table(doc), nil
}

func decodeBase64(text []byte) ([]byte, bool) {
	compact := bytes.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if out, err := enc.DecodeString(string(compact)); err == nil {
			return out, true
		}
	}
	return nil, false
}

func decodeObject(text []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("top level is %s, not an object", jsonType(doc))
	}
	return m, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
