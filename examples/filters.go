package examples

// Filter is an example filter over the example fleet.
type Filter struct {
	Name        string `json:"name"`
	Expression  string `json:"expression"`
	Description string `json:"description"`
}

// Filters are example filters over the example fleet, from the simple to the involved. Tests parse
// every one and evaluate them over generated fleets; the later ones refer to the earlier by name.
var Filters = []Filter{
	{"everyone", `TRUE`, "every vehicle (associate it to mean the whole fleet)"},
	{"mercedes", `vin_matches "^WDD"`, "Mercedes-Benz passenger cars, by world manufacturer identifier"},
	{"model-year-2021", `vin_matches "^.{9}M"`, "model year 2021, by VIN position 10"},
	{"bosch-ecu", `has_component "0261S19234"`, "vehicles with this engine control unit"},
	{"old-openssl", `has_package "openssl" < "3.0.0"`, "vehicles still on OpenSSL 1.x"},
	{"nav-3", `has_package "nav-engine" >= "3.0.0"`, "navigation engine 3 or newer"},
	{"eu-ev", `attr "region" == "EU" AND has_component "^BMS-"`, "electric vehicles in Europe"},
	{"recent-na", `attr "region" == "NA" AND attr "year" >= 2022`, "North American vehicles of model year 2022 and later"},
	{"german-market", `attr "market" IN ("DE", "AT", "CH")`, "German-speaking markets"},
	{"tesla-or-volvo", `vin_matches "^(5YJ|YV1)"`, "two manufacturers by WMI"},
	{"needs-carplay-fix", `has_package "^apple-carplay$" "^2\.0\."`, "CarPlay 2.0.x by name and version regexes"},
	{"mercedes-nav-bosch",
		`vin_matches "^WDD" AND has_component "0261S19234" AND has_package "nav-engine" >= "3.0.0"`,
		"the three indexed leaves of the dry-run benchmark"},
	{"serial-ending-7",
		`vin_matches "^WDD" AND has_component "0261S19234" AND has_package "nav-engine" >= "3.0.0" AND vin_matches "7$"`,
		"the same with a regex no index answers"},
	{"not-updated",
		`NOT has_package "ota-client" >= "2.0.0" AND (attr "year" < 2020 OR has_attr "legacy")`,
		"older vehicles without the new update client"},
	{"european-mercedes", `filter "mercedes" AND attr "region" == "EU"`, "a saved filter reused by name"},
	{"adas-upgrade",
		`has_package "adas-acc" < "4.0.0" AND has_component "EYEQ5-TRI-2" // the camera that supports it
		 AND NOT filter "model-year-2021"`,
		"ACC 3.x on vehicles with the tri-focal camera, except model year 2021"},
}
