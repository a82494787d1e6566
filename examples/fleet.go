package examples

import (
	"bufio"
	"encoding/json"
	"hash/fnv"
	"io"
	"iter"
	"math/rand/v2"

	"sota/dsl"
)

// Vehicle is one generated vehicle in the shape of a fleet import line (JSON lines):
//
//	{"vin":"WDD2050461F123456","packages":[{"name":"openssl","version":"3.0.13"},…],
//	 "components":["0261S19234",…],"attributes":{"model":"C-Class","year":2021,"region":"EU","market":"DE"}}
type Vehicle struct {
	VIN        string         `json:"vin"`
	Packages   []Package      `json:"packages"`
	Components []string       `json:"components"`
	Attributes map[string]any `json:"attributes"`
}

// Package names one installed package version.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// DSL returns the vehicle as filters see it: attributes that are numbers become numeric values.
func (v Vehicle) DSL() dsl.Vehicle {
	out := dsl.Vehicle{VIN: v.VIN, Components: append([]string(nil), v.Components...)}
	out.Packages = make([]dsl.Package, len(v.Packages))
	for i, p := range v.Packages {
		out.Packages[i] = dsl.Package{Name: p.Name, Version: p.Version}
	}
	out.Attrs = make(map[string]dsl.Value, len(v.Attributes))
	for k, a := range v.Attributes {
		switch a := a.(type) {
		case string:
			out.Attrs[k] = dsl.Value{Str: a}
		case int:
			out.Attrs[k] = dsl.Value{Num: float64(a), IsNum: true}
		case float64:
			out.Attrs[k] = dsl.Value{Num: a, IsNum: true}
		}
	}
	return out
}

// PackagesPerVehicle and ComponentsPerVehicle are what every generated vehicle has.
const (
	PackagesPerVehicle   = 20
	ComponentsPerVehicle = 5
)

type model struct {
	name string
	vds  []string // positions 4-8 of the VIN, one per body/engine variant
	from int      // first model year
	ev   bool
	adas bool
	opt  []string // optional packages the model may carry
}

type make_ struct {
	wmi, brand string
	plants     string // position 11 plant codes
	markets    []string
	models     []model
}

var (
	infotainment = []string{"qt-runtime", "infotainment-ui", "media-player", "bluetooth-stack", "dab-radio"}
	premium      = []string{"apple-carplay", "android-auto", "voice-assistant", "speech-engine", "nav-engine", "nav-maps", "traffic-service", "seat-memory"}
	basic        = []string{"hvac-control", "tpms", "can-logger", "security-ids"}
	driver       = []string{"adas-lanekeep", "adas-acc", "parking-assist", "camera-surround"}
)

func opts(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// makes are real world manufacturer identifiers with plausible models; VDS codes are made up in
// the manufacturers' style.
var makes = []make_{
	{"WDD", "Mercedes-Benz", "ABFH", []string{"DE", "DE", "FR", "UK", "US", "CN", "IT"}, []model{
		{"C-Class", []string{"2050461", "2050081", "2060421"}, 2015, false, true, opts(infotainment, premium, driver)},
		{"E-Class", []string{"2130421", "2130041"}, 2016, false, true, opts(premium, driver, infotainment)},
		{"EQE", []string{"2951211"}, 2022, true, true, opts(premium, driver)},
	}},
	{"WBA", "BMW", "ABEGKN", []string{"DE", "UK", "US", "CN", "FR", "ES"}, []model{
		{"3 Series", []string{"5R1C50", "8E9C54", "5R7C30"}, 2016, false, true, opts(infotainment, premium, driver)},
		{"X5", []string{"CR6C53", "JU0C50"}, 2018, false, true, opts(premium, driver, basic)},
		{"i4", []string{"21AW01"}, 2021, true, true, opts(premium, driver)},
	}},
	{"WVW", "Volkswagen", "ABDEWP", []string{"DE", "FR", "ES", "IT", "UK", "PL"}, []model{
		{"Golf", []string{"ZZZAUZ", "ZZZCDZ", "ZZZ1KZ"}, 2014, false, false, opts(infotainment, basic, driver)},
		{"Polo", []string{"ZZZAWZ", "ZZZ6RZ"}, 2014, false, false, opts(basic, infotainment)},
		{"ID.3", []string{"ZZZE1Z"}, 2020, true, true, opts(infotainment, driver, basic)},
	}},
	{"1FT", "Ford", "CEFKRP", []string{"US", "US", "US", "CA", "MX"}, []model{
		{"F-150", []string{"EW1EP5", "FW1E58", "EW1E41"}, 2015, false, false, opts(basic, infotainment, driver)},
		{"F-150 Lightning", []string{"VW1EL4"}, 2022, true, true, opts(infotainment, premium, driver)},
		{"Ranger", []string{"ER4FH2"}, 2019, false, false, opts(basic, infotainment)},
	}},
	{"JTD", "Toyota", "0123JK", []string{"JP", "JP", "US", "UK", "FR", "AU"}, []model{
		{"Corolla", []string{"BZMHE0", "EPMAE2"}, 2014, false, false, opts(basic, infotainment, driver)},
		{"Yaris", []string{"KBTDE3", "KW3D10"}, 2014, false, false, opts(basic, infotainment)},
		{"Prius", []string{"KARFU9"}, 2016, true, false, opts(infotainment, basic, premium)},
	}},
	{"SAJ", "Jaguar", "ABC", []string{"UK", "UK", "US", "DE", "CN"}, []model{
		{"XF", []string{"BD4BV2", "AE4BN8"}, 2016, false, true, opts(premium, infotainment, driver)},
		{"F-Pace", []string{"BK4FX1"}, 2017, false, true, opts(premium, driver, basic)},
		{"I-Pace", []string{"DA2GX8"}, 2019, true, true, opts(premium, driver)},
	}},
	{"VF1", "Renault", "ABCDR", []string{"FR", "FR", "ES", "IT", "DE", "TR"}, []model{
		{"Clio", []string{"RJA00A", "BR1R0B"}, 2014, false, false, opts(basic, infotainment)},
		{"Megane", []string{"RFB00C", "KZ0B0D"}, 2016, false, false, opts(infotainment, basic, driver)},
		{"Zoe", []string{"AG000E"}, 2014, true, false, opts(infotainment, basic)},
	}},
	{"5YJ", "Tesla", "AFN", []string{"US", "US", "CA", "DE", "NL", "CN"}, []model{
		{"Model 3", []string{"3E1EA1", "3E1EB7"}, 2017, true, true, opts(premium, driver)},
		{"Model Y", []string{"YGDEE2"}, 2020, true, true, opts(premium, driver)},
	}},
	{"YV1", "Volvo", "12AG", []string{"SE", "SE", "DE", "UK", "US", "CN"}, []model{
		{"XC60", []string{"UZK8DV", "UZA8DL"}, 2017, false, true, opts(premium, driver, infotainment)},
		{"XC40 Recharge", []string{"XZEDA6"}, 2020, true, true, opts(premium, driver)},
	}},
	{"KMH", "Hyundai", "UH", []string{"KR", "US", "DE", "AU", "IN"}, []model{
		{"i30", []string{"H381AB", "H341BU"}, 2017, false, false, opts(basic, infotainment, driver)},
		{"Ioniq 5", []string{"KN81CB"}, 2021, true, true, opts(infotainment, premium, driver)},
	}},
}

var regionOf = map[string]string{
	"DE": "EU", "FR": "EU", "IT": "EU", "ES": "EU", "PL": "EU", "NL": "EU", "SE": "EU", "UK": "EU", "TR": "EU",
	"US": "NA", "CA": "NA", "MX": "NA",
	"JP": "APAC", "KR": "APAC", "AU": "APAC", "IN": "APAC",
	"CN": "CN",
}

// yearCode is position 10 of the VIN for model years 2010-2039.
const yearCode = "ABCDEFGHJKLMNPRSTVWXY123456789"

// FirstYear and LastYear bound the model years of the generated fleet.
const (
	FirstYear = 2014
	LastYear  = 2026
)

// CheckDigit computes position 9 of a 17-character VIN (the North American rule, which the
// generator applies to every VIN). The character at position 9 itself is ignored.
func CheckDigit(vin string) byte {
	const weights = "8765432X098765432" // X = 10
	sum := 0
	for i := 0; i < 17; i++ {
		c := vin[i]
		var v int
		switch {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'A' && c <= 'Z':
			v = int("12345678_12345_7_923456789"[c-'A'] - '0')
		}
		w := int(weights[i] - '0')
		if weights[i] == 'X' {
			w = 10
		}
		sum += v * w
	}
	if r := sum % 11; r < 10 {
		return byte('0' + r)
	}
	return 'X'
}

// specs by name, and the versions' index for the version choice.
var specByName = func() map[string]*pkgSpec {
	m := map[string]*pkgSpec{}
	for i := range packageSpecs {
		m[packageSpecs[i].name] = &packageSpecs[i]
	}
	return m
}()

// Fleet returns n generated vehicles; the same seed and n give the same fleet, and a fleet is a
// prefix of any larger one with the same seed. VINs are unique.
func Fleet(seed int64, n int) []Vehicle {
	out := make([]Vehicle, 0, n)
	for v := range Generate(seed, n) {
		out = append(out, v)
	}
	return out
}

// Generate yields n generated vehicles (see Fleet) without holding them all.
func Generate(seed int64, n int) iter.Seq[Vehicle] {
	return func(yield func(Vehicle) bool) {
		r := rand.New(rand.NewPCG(uint64(seed), 0x5eed_f1ee7))
		seen := make(map[string]struct{}, n)
		for i := 0; i < n; i++ {
			v := vehicle(r, seen)
			if !yield(v) {
				return
			}
		}
	}
}

var serialDigits = "0123456789"

func vehicle(r *rand.Rand, seen map[string]struct{}) Vehicle {
	mk := &makes[r.IntN(len(makes))]
	md := &mk.models[r.IntN(len(mk.models))]
	year := md.from + r.IntN(LastYear-md.from+1)
	var vin string
	for {
		b := make([]byte, 0, 17)
		b = append(b, mk.wmi...)
		b = append(b, md.vds[r.IntN(len(md.vds))][:5]...)
		b = append(b, '0')
		b = append(b, yearCode[year-2010])
		b = append(b, mk.plants[r.IntN(len(mk.plants))])
		for len(b) < 17 {
			b = append(b, serialDigits[r.IntN(10)])
		}
		b[8] = CheckDigit(string(b))
		vin = string(b)
		if _, dup := seen[vin]; !dup {
			seen[vin] = struct{}{}
			break
		}
	}
	market := mk.markets[r.IntN(len(mk.markets))]
	v := Vehicle{
		VIN: vin,
		Attributes: map[string]any{
			"model": md.name, "year": year, "region": regionOf[market], "market": market,
		},
	}
	// Software: the core packages plus four of the model's options, at versions that get newer
	// with the model year, some vehicles updated since.
	names := append([]string(nil), corePackages...)
	opt := append([]string(nil), md.opt...)
	for len(names) < PackagesPerVehicle {
		k := r.IntN(len(opt))
		names = append(names, opt[k])
		opt = append(opt[:k], opt[k+1:]...)
	}
	age := float64(year-FirstYear) / float64(LastYear-FirstYear)
	v.Packages = make([]Package, len(names))
	for i, name := range names {
		vs := specByName[name].versions
		k := int(age * float64(len(vs)-1))
		if r.IntN(3) == 0 { // updated over the air since
			k += 1 + r.IntN(len(vs))
		}
		k = min(k, len(vs)-1)
		v.Packages[i] = Package{Name: name, Version: vs[k]}
	}
	// Hardware: one part per category, from two variants per model.
	cats := []string{"ecu", "tcu", "hu", "bcm", "cluster"}
	switch {
	case md.ev:
		cats[4] = "bms"
	case md.adas:
		cats[4] = "adas"
	}
	for _, cat := range cats {
		parts := partsOf[cat]
		h := fnv.New32a()
		io.WriteString(h, md.name+"/"+cat)
		k := int(h.Sum32()) % len(parts)
		if r.IntN(2) == 0 {
			k = (k + 1) % len(parts)
		}
		v.Components = append(v.Components, parts[k])
	}
	return v
}

var partsOf = func() map[string][]string {
	m := map[string][]string{}
	for _, s := range componentSpecs {
		m[s.category] = s.parts
	}
	return m
}()

// WriteJSONL writes the fleet of seed and n as JSON lines, one vehicle a line.
func WriteJSONL(w io.Writer, seed int64, n int) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	for v := range Generate(seed, n) {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// FleetDSL returns the fleet of seed and n as filters see it.
func FleetDSL(seed int64, n int) []dsl.Vehicle {
	out := make([]dsl.Vehicle, 0, n)
	for v := range Generate(seed, n) {
		out = append(out, v.DSL())
	}
	return out
}
