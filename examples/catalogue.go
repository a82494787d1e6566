package examples

import (
	"fmt"
	"strings"
)

// Contents is what the example fleet refers to: the packages with their dependencies and the
// components.
type Contents struct {
	Packages   []CataloguePackage `json:"packages"`
	Components []Component        `json:"components"`
}

// CataloguePackage is one version of a package.
type CataloguePackage struct {
	Name         string       `json:"name"`
	Version      string       `json:"version"`
	Description  string       `json:"description"`
	Vendor       string       `json:"vendor"`
	Dependencies []Dependency `json:"dependencies,omitempty"`
}

// Dependency is one dependency of a package version: an exact Version or a Range such as
// ">=1.2.0 <2.0.0" (space-separated comparators, all must hold).
type Dependency struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Range   string `json:"range,omitempty"`
}

// Component is a part number with its description.
type Component struct {
	PartNumber  string `json:"partNumber"`
	Description string `json:"description"`
	Category    string `json:"category"`
}

// pkgSpec describes a package: its versions (oldest first) and dependencies per version.
type pkgSpec struct {
	name, vendor, desc string
	versions           []string
	deps               func(version string) []Dependency
}

func rng(name, r string) Dependency   { return Dependency{Name: name, Range: r} }
func exact(name, v string) Dependency { return Dependency{Name: name, Version: v} }
func major(v string) string           { return v[:strings.IndexByte(v, '.')] }
func none(string) []Dependency        { return nil }
func always(d ...Dependency) func(string) []Dependency {
	return func(string) []Dependency { return d }
}

// packageSpecs is the software of the example fleet. Core packages are on every vehicle; the
// others depend on the model.
var packageSpecs = []pkgSpec{
	{"glibc", "GNU", "C library", []string{"2.31.0", "2.35.0", "2.36.0", "2.38.0"}, none},
	{"openssl", "OpenSSL", "TLS and crypto library", []string{"1.1.1", "3.0.2", "3.0.13", "3.2.1"},
		always(rng("glibc", ">=2.31.0"))},
	{"libcurl", "curl", "HTTP client library", []string{"7.81.0", "7.88.1", "8.5.0", "8.9.1"},
		func(v string) []Dependency {
			if major(v) == "7" {
				return []Dependency{rng("openssl", ">=1.1.1 <4.0.0")}
			}
			return []Dependency{rng("openssl", ">=3.0.0 <4.0.0")}
		}},
	{"sqlite", "SQLite", "embedded database", []string{"3.37.2", "3.40.1", "3.45.1"}, always(rng("glibc", ">=2.31.0"))},
	{"ca-certificates", "Mozilla", "trusted root certificates", []string{"2023.2.0", "2024.1.0", "2024.2.0", "2025.1.0"}, none},
	{"tzdata", "IANA", "time zone database", []string{"2023.3.0", "2024.1.0", "2024.2.0", "2025.2.0"}, none},
	{"linux-kernel", "Linux", "head unit kernel", []string{"5.10.120", "5.15.90", "6.1.55", "6.6.30"}, none},
	{"systemd", "freedesktop.org", "init and service manager", []string{"249.11.0", "252.22.0", "255.4.0"},
		always(rng("glibc", ">=2.31.0"), rng("linux-kernel", ">=5.10.0"))},
	{"dbus", "freedesktop.org", "message bus", []string{"1.12.20", "1.14.10"}, always(rng("systemd", ">=249.0.0"))},
	{"ota-client", "Fleet Software", "update client", []string{"1.4.2", "1.5.0", "2.0.0", "2.1.0", "2.2.0-rc.1"},
		func(v string) []Dependency {
			if major(v) == "1" {
				return []Dependency{rng("libcurl", ">=7.81.0 <8.0.0"), rng("openssl", ">=1.1.1")}
			}
			return []Dependency{rng("libcurl", ">=8.0.0"), rng("openssl", ">=3.0.0 <4.0.0"), rng("ca-certificates", ">=2024.1.0")}
		}},
	{"diagnostics-agent", "Fleet Software", "remote diagnostics (UDS over DoIP)", []string{"3.1.0", "3.2.1", "3.3.0"},
		always(rng("dbus", ">=1.12.0"))},
	{"telematics-agent", "Fleet Software", "connectivity, remote commands, trip data", []string{"4.0.0", "4.1.3", "4.2.0", "5.0.0"},
		func(v string) []Dependency {
			d := []Dependency{rng("connectivity-modem", ">=2.0.0")}
			if major(v) == "5" {
				return append(d, rng("ota-client", ">=2.0.0"))
			}
			return append(d, rng("ota-client", ">=1.4.0"))
		}},
	{"connectivity-modem", "Quectel", "LTE/5G modem firmware and manager", []string{"1.9.0", "2.0.1", "2.3.0", "3.0.0"}, none},
	{"security-ids", "Argus", "in-vehicle intrusion detection", []string{"1.0.0", "1.1.0", "1.2.0"},
		always(rng("dbus", ">=1.12.0"), rng("openssl", ">=3.0.0"))},
	{"can-logger", "Vector", "CAN bus logger", []string{"0.9.0", "1.0.0", "1.0.1"}, none},
	{"gateway-fw", "Bosch", "central gateway firmware", []string{"7.2.0", "7.3.1", "8.0.0"}, none},
	{"body-control-fw", "Continental", "body control module firmware", []string{"11.4.0", "11.5.2", "12.0.0"}, none},
	{"cluster-fw", "Visteon", "instrument cluster firmware", []string{"3.8.0", "4.0.0", "4.1.0"}, none},
	{"qt-runtime", "Qt Group", "UI runtime", []string{"5.15.2", "5.15.10", "6.2.4", "6.5.3"},
		always(rng("glibc", ">=2.31.0"), rng("dbus", ">=1.12.0"))},
	{"infotainment-ui", "Fleet Software", "head unit user interface", []string{"8.1.0", "8.2.0", "9.0.0", "9.1.0", "10.0.0-beta.2"},
		func(v string) []Dependency {
			if major(v) == "8" {
				return []Dependency{rng("qt-runtime", ">=5.15.0 <6.0.0"), rng("media-player", ">=2.0.0")}
			}
			return []Dependency{rng("qt-runtime", ">=6.2.0 <7.0.0"), rng("media-player", ">=3.0.0")}
		}},
	{"media-player", "Fleet Software", "audio and video playback", []string{"2.4.0", "2.5.1", "3.0.0", "3.1.0"},
		always(rng("bluetooth-stack", ">=4.0.0"))},
	{"bluetooth-stack", "BlueZ", "Bluetooth host stack", []string{"4.2.0", "5.1.0", "5.4.0"}, always(rng("dbus", ">=1.12.0"))},
	{"apple-carplay", "Apple", "CarPlay integration", []string{"2.0.0", "2.1.0"}, always(rng("bluetooth-stack", ">=5.0.0"), rng("media-player", ">=3.0.0"))},
	{"android-auto", "Google", "Android Auto integration", []string{"1.7.0", "1.8.2", "2.0.0"}, always(rng("bluetooth-stack", ">=5.0.0"))},
	{"dab-radio", "Fleet Software", "digital radio (1.1.0 needs the new UI but was built against Qt 5)", []string{"1.0.0", "1.1.0"},
		func(v string) []Dependency {
			if v == "1.0.0" {
				return []Dependency{rng("qt-runtime", ">=5.15.0 <6.0.0"), rng("media-player", ">=2.0.0")}
			}
			return []Dependency{rng("qt-runtime", ">=5.15.0 <6.0.0"), rng("infotainment-ui", ">=9.0.0")}
		}},
	{"speech-engine", "Cerence", "speech recognition and synthesis", []string{"5.0.0", "5.1.0", "6.0.0"}, none},
	{"voice-assistant", "Fleet Software", "voice assistant", []string{"1.0.0", "1.1.0", "2.0.0"},
		func(v string) []Dependency {
			switch v {
			case "1.0.0":
				return []Dependency{exact("speech-engine", "5.0.0")}
			case "1.1.0":
				return []Dependency{exact("speech-engine", "5.1.0")}
			}
			return []Dependency{exact("speech-engine", "6.0.0"), rng("infotainment-ui", ">=9.0.0")}
		}},
	{"nav-maps", "HERE", "navigation map data", []string{"2023.4.0", "2024.1.0", "2024.3.0", "2025.1.0"}, none},
	{"nav-engine", "TomTom", "navigation engine", []string{"2.9.0", "3.0.0", "3.1.0", "3.2.0"},
		func(v string) []Dependency {
			if major(v) == "2" {
				return []Dependency{rng("nav-maps", ">=2023.1.0 <2024.0.0"), rng("sqlite", ">=3.37.0")}
			}
			return []Dependency{rng("nav-maps", ">=2024.1.0"), rng("sqlite", ">=3.40.0"), rng("infotainment-ui", ">=8.2.0")}
		}},
	{"traffic-service", "HERE", "live traffic", []string{"1.3.0", "1.4.0"}, always(rng("nav-engine", ">=3.0.0"), rng("telematics-agent", ">=4.1.0"))},
	{"hvac-control", "Valeo", "climate control", []string{"2.0.0", "2.1.0", "2.2.0"}, none},
	{"seat-memory", "Lear", "seat and mirror memory", []string{"1.0.3", "1.1.0"}, none},
	{"tpms", "Schrader", "tyre pressure monitoring", []string{"3.0.0", "3.1.2"}, none},
	{"parking-assist", "Valeo", "park distance control", []string{"4.0.0", "4.2.0", "5.0.0"}, always(rng("camera-surround", ">=2.0.0"))},
	{"camera-surround", "Magna", "surround view cameras", []string{"1.8.0", "2.0.0", "2.1.0"}, none},
	{"adas-lanekeep", "Mobileye", "lane keeping assist", []string{"4.5.0", "4.6.1", "5.0.0"}, always(rng("gateway-fw", ">=7.3.0"))},
	{"adas-acc", "Mobileye", "adaptive cruise control", []string{"3.2.0", "3.3.0", "4.0.0"},
		func(v string) []Dependency {
			if major(v) == "4" {
				return []Dependency{rng("adas-lanekeep", ">=5.0.0"), rng("gateway-fw", ">=8.0.0")}
			}
			return []Dependency{rng("adas-lanekeep", ">=4.5.0 <5.0.0")}
		}},
	{"engine-calibration", "Bosch", "engine control calibration", []string{"17.1.0", "17.2.0", "18.0.0"}, none},
	{"transmission-calibration", "ZF", "transmission control calibration", []string{"9.0.0", "9.1.0", "9.2.1"}, none},
	{"bms-firmware", "LG Energy", "battery management firmware", []string{"6.0.0", "6.1.0", "6.2.0", "7.0.0"}, none},
	{"ev-charging", "Fleet Software", "charging scheduler and plug-and-charge", []string{"2.0.0", "2.1.0", "3.0.0"},
		func(v string) []Dependency {
			if major(v) == "3" {
				return []Dependency{rng("bms-firmware", ">=7.0.0"), rng("telematics-agent", ">=5.0.0")}
			}
			return []Dependency{rng("bms-firmware", ">=6.0.0 <7.0.0")}
		}},
}

// corePackages are installed on every vehicle.
var corePackages = []string{
	"glibc", "openssl", "libcurl", "sqlite", "ca-certificates", "tzdata", "linux-kernel", "systemd", "dbus",
	"ota-client", "diagnostics-agent", "telematics-agent", "connectivity-modem", "gateway-fw",
	"body-control-fw", "cluster-fw",
}

// optionalPackages are installed depending on the model's equipment.
var optionalPackages = []string{
	"qt-runtime", "infotainment-ui", "media-player", "bluetooth-stack", "apple-carplay", "android-auto", "dab-radio",
	"speech-engine", "voice-assistant", "nav-maps", "nav-engine", "traffic-service", "hvac-control",
	"seat-memory", "tpms", "parking-assist", "camera-surround", "adas-lanekeep", "adas-acc",
	"security-ids", "can-logger",
}

// componentSpecs are the part numbers of the example fleet, by category.
var componentSpecs = []struct {
	category, desc string
	parts          []string
}{
	{"ecu", "engine control unit", []string{"0261S19234", "0261S20351", "0281034567", "A2C1234560", "8966147D31", "5WS40612B"}},
	{"tcu", "telematics control unit", []string{"TCU4G2201", "TCU5G3105", "A2C9876543", "8W0035284", "LGTCU1180"}},
	{"hu", "head unit", []string{"HUMIB34412", "HUNTG70931", "A2C5553121", "861400R420", "NBTEVO6822"}},
	{"bcm", "body control module", []string{"BCM210477", "BCM331005", "A2C3319801", "5Q0937084", "8922102B10"}},
	{"cluster", "instrument cluster", []string{"ICVDO1002", "ICVDO1140", "A2C7766001", "838000ZL10"}},
	{"adas", "driver assistance camera", []string{"EYEQ4MONO1", "EYEQ5TRI2", "MFC5250013", "SRR3RADAR4"}},
	{"bms", "battery management system", []string{"BMSLG0700", "BMSCATL0210", "BMSSK3301"}},
}

// Catalogue returns the catalogue of the example fleet. It is fixed: the seed of a fleet does not
// change it. The caller may not modify it.
func Catalogue() Contents { return catalogue }

var catalogue = buildCatalogue()

func buildCatalogue() Contents {
	var c Contents
	for _, s := range packageSpecs {
		for _, v := range s.versions {
			c.Packages = append(c.Packages, CataloguePackage{
				Name: s.name, Version: v, Vendor: s.vendor,
				Description:  fmt.Sprintf("%s %s", s.desc, v),
				Dependencies: s.deps(v),
			})
		}
	}
	for _, s := range componentSpecs {
		for _, p := range s.parts {
			c.Components = append(c.Components, Component{PartNumber: p, Description: s.desc, Category: s.category})
		}
	}
	return c
}
