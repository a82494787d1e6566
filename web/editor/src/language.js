// Generated from the filter language's grammar (dsl/grammar.go) by
//   go test ./dsl -run TestEditorLanguage -update
// Do not edit: change the grammar, regenerate this file, then run `make web`.
export const KEYWORDS = ["or","and","in","not","true","false"];
export const PREDICATES = ["vin_matches","has_package","has_component","attr","has_attr","filter","seen_within","update_status"];
