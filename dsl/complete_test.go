package dsl

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompleteAtEveryPositionClass completes at one cursor ("|") of each kind of place in a filter
// against testdata/lint/fleet.json: what replaces what, and the labels in rank order.
func TestCompleteAtEveryPositionClass(t *testing.T) {
	fleet := loadLintFleet(t)
	primaries := []string{"vin_matches", "has_package", "has_component", "attr", "has_attr", "filter", "seen_within", "update_status", "NOT", "TRUE", "FALSE", "("}
	ops := []string{"==", "!=", "<", "<=", ">", ">="}
	for _, c := range []struct {
		name     string
		src      string // | marks the cursor
		replaced string // the text the items replace
		labels   []string
		kind     CompletionKind // of the first item
	}{
		{"empty filter", "|", "", primaries, KindPredicate},
		{"predicate being typed", "has_p|", "has_p", []string{"has_package", "has_component"}, KindPredicate},
		{"misspelt predicate being typed", "has_pak|", "has_pak", []string{"has_package"}, KindPredicate},
		{"inside a predicate name", "has_p|ackage \"x\" \"\"", "has_package", []string{"has_package", "has_component"}, KindPredicate},
		{"keyword typed in another case", "no|", "no", []string{"NOT"}, KindKeyword},
		{"after an operator", `vin_matches "^WDD" AND |`, "", primaries, KindPredicate},
		{"after NOT", `NOT |`, "", primaries, KindPredicate},
		{"after an open parenthesis", `(|`, "", primaries, KindPredicate},
		{"after a complete primary", `vin_matches "^WDD" |`, "", []string{"AND", "OR"}, KindKeyword},
		{"after a primary in parentheses", `(vin_matches "^WDD" |`, "", []string{"AND", "OR", ")"}, KindKeyword},
		{"operator being typed", `vin_matches "^WDD" a|`, "a", []string{"AND"}, KindKeyword},
		{"package name argument", `has_package |`, "", []string{"nav-engine", "openssl", "media-player"}, KindPackage},
		{"inside an unclosed package name", `has_package "op|`, `"op`, []string{"openssl"}, KindPackage},
		{"inside a closed package name", `has_package "na|v" ""`, `"nav"`, []string{"nav-engine"}, KindPackage},
		{"name contains what is typed", `has_package "play|"`, `"play"`, []string{"media-player"}, KindPackage},
		{"after a package name", `has_package "nav-engine" |`, "", append([]string{"3.2.0", "3.1.0"}, ops...), KindVersion},
		{"version after an operator", `has_package "NAV-ENGINE" >= "|"`, `""`, []string{"3.2.0", "3.1.0"}, KindVersion},
		{"version regex being typed", `has_component "x" AND has_package "nav-engine" "3.1|"`, `"3.1"`, []string{"3.1.0"}, KindVersion},
		{"part number", `has_component "EC|"`, `"EC"`, []string{"ECU1234", "ECU5678"}, KindComponent},
		{"attribute key", `attr "ma|`, `"ma`, []string{"market"}, KindAttribute},
		{"has_attr key", `has_attr |`, "", []string{"market", "year", "stage"}, KindAttribute},
		{"after an attribute key", `attr "market" |`, "", append(ops, "IN"), KindKeyword},
		{"attribute value", `attr "market" == |`, "", []string{"DE", "FR", "US"}, KindValue},
		{"number value in a list", `attr "year" IN (2019, |`, "", []string{"2019", "2021", "2023"}, KindValue},
		{"after IN", `attr "market" IN |`, "", []string{"("}, KindKeyword},
		{"after a list value", `attr "market" IN ("DE"|`, "", []string{",", ")"}, KindKeyword},
		{"saved filter", `filter "pro|"`, `"pro"`, []string{"production"}, KindFilter},
		{"seen_within duration", `seen_within "|`, `"`, []string{"1h", "24h", "7d", "30d", "90d"}, KindValue},
		{"update_status package", `update_status "op|"`, `"op"`, []string{"openssl"}, KindPackage},
		{"update_status version", `update_status "openssl" |`, "", []string{"1.1.1", "3.0.2"}, KindVersion},
		{"update_status operator", `update_status "openssl" "3.0.2" |`, "", []string{"==", "!=", "IN"}, KindKeyword},
		{"update_status status", `update_status "openssl" "3.0.2" == "f|"`, `"f"`, []string{"finished", "failed", "inFlight"}, KindStatus},
		{"update_status status list", `update_status "openssl" "3.0.2" IN ("failed", |`, "", []string{"pending", "inFlight", "finished", "failed", "canceled"}, KindStatus},
		{"inside a comment", `TRUE /* has_| */`, "", nil, ""},
		{"after a syntax error", `vin_matches x AND has_package "med|`, `"med`, []string{"media-player"}, KindPackage},
		{"a string where none may come", `TRUE "x|"`, "", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			off := strings.Index(c.src, "|")
			require.GreaterOrEqual(t, off, 0)
			src := c.src[:off] + c.src[off+1:]
			got, err := Complete(src, off, CompleteOptions{Filters: fleet, Fleet: fleet.idx})
			require.NoError(t, err)
			assert.Equal(t, c.replaced, src[got.From:got.To])
			var labels []string
			for _, it := range got.Items {
				labels = append(labels, it.Label)
			}
			assert.Equal(t, c.labels, labels)
			if len(got.Items) > 0 {
				assert.Equal(t, c.kind, got.Items[0].Kind)
			}
		})
	}
}

func TestCompleteInsertsQuotedNamesAndCountsVehicles(t *testing.T) {
	fleet := loadLintFleet(t)
	got, err := Complete(`has_package "nav`, 16, CompleteOptions{Fleet: fleet.idx})
	require.NoError(t, err)
	require.Len(t, got.Items, 1)
	assert.Equal(t, CompletionItem{Label: "nav-engine", Insert: `"nav-engine"`, Kind: KindPackage, Detail: "3 vehicles"}, got.Items[0])
	applied := `has_package "nav`[:got.From] + got.Items[0].Insert + `has_package "nav`[got.To:]
	assert.Equal(t, `has_package "nav-engine"`, applied)

	got, err = Complete(`has_p`, 5, CompleteOptions{})
	require.NoError(t, err)
	assert.Equal(t, "has_package ", got.Items[0].Insert)
}

func TestCompleteRejectsOffsetsOutsideTheText(t *testing.T) {
	for _, off := range []int{-1, 5} {
		_, err := Complete("TRUE", off, CompleteOptions{})
		assert.Equal(t, ErrOffset{Offset: off, Len: 4}, err)
	}
}

func TestCompleteCapsItems(t *testing.T) {
	var vs []*Vehicle
	for i := 0; i < 80; i++ {
		vs = append(vs, &Vehicle{VIN: "V", Components: []string{"P" + strings.Repeat("x", i)}})
	}
	got, err := Complete(`has_component "P`, 16, CompleteOptions{Fleet: newMemIndex(vs)})
	require.NoError(t, err)
	assert.Len(t, got.Items, MaxCompletions)
}
