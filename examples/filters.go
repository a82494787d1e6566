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
	{"modelYear2021", `vin_matches "^.{9}M"`, "model year 2021, by VIN position 10"},
	{"boschEcu", `has_component "0261S19234"`, "vehicles with this engine control unit"},
	{"oldOpenssl", `has_package "openssl" < "3.0.0"`, "vehicles still on OpenSSL 1.x"},
	{"nav3", `has_package "nav-engine" >= "3.0.0"`, "navigation engine 3 or newer"},
	{"euEv", `attr "region" == "EU" AND has_component "^BMS"`, "electric vehicles in Europe"},
	{"recentNa", `attr "region" == "NA" AND attr "year" >= 2022`, "North American vehicles of model year 2022 and later"},
	{"germanMarket", `attr "market" IN ("DE", "AT", "CH")`, "German-speaking markets"},
	{"teslaOrVolvo", `vin_matches "^(5YJ|YV1)"`, "two manufacturers by WMI"},
	{"needsCarplayFix", `has_package "^apple-carplay$" "^2\.0\."`, "CarPlay 2.0.x by name and version regexes"},
	{"mercedesNavBosch",
		`vin_matches "^WDD" AND has_component "0261S19234" AND has_package "nav-engine" >= "3.0.0"`,
		"the three indexed leaves of the dry-run benchmark"},
	{"serialEnding7",
		`vin_matches "^WDD" AND has_component "0261S19234" AND has_package "nav-engine" >= "3.0.0" AND vin_matches "7$"`,
		"the same with a regex no index answers"},
	{"notUpdated",
		`NOT has_package "ota-client" >= "2.0.0" AND (attr "year" < 2020 OR has_attr "legacy")`,
		"older vehicles without the new update client"},
	{"europeanMercedes", `filter "mercedes" AND attr "region" == "EU"`, "a saved filter reused by name"},
	{"adasUpgrade",
		`has_package "adas-acc" < "4.0.0" AND has_component "EYEQ5TRI2" // the camera that supports it
		 AND NOT filter "modelYear2021"`,
		"ACC 3.x on vehicles with the tri-focal camera, except model year 2021"},
}

// Association applies an example filter to a package version of the catalogue.
type Association struct {
	Package Package `json:"package"`
	Filter  string  `json:"filter"`
}

// Associations are the example filter–package associations, so that resolving and dry-running
// the example catalogue shows something: the newest navigation engine for Mercedes cars with the
// Bosch ECU, the new update client for older vehicles, and DAB radio 1.1.0 for everyone, which some
// vehicles cannot resolve (it needs the new UI but Qt 5).
var Associations = []Association{
	{Package{"nav-engine", "3.2.0"}, "mercedes"},
	{Package{"nav-engine", "3.2.0"}, "boschEcu"},
	{Package{"ota-client", "2.1.0"}, "notUpdated"},
	{Package{"dab-radio", "1.1.0"}, "everyone"},
}
