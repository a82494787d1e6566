package resolver

// Key layout of the resolver's records, all under fleet/. Names that compare case-insensitively
// (package names, part numbers, filter names) appear lower-cased in keys, and the record keeps the
// case it was created with. VINs are upper-case by validation; versions are SemVer and appear
// verbatim (SemVer precedence treats pre-release identifiers case-sensitively). No key part can
// contain '/': VINs, names, part numbers and versions are validated to exclude it.
//
//	fleet/v/<VIN>                                vehicle record (binary codec below): attributes,
//	                                             installed packages (known and foreign, case as
//	                                             installed) and installed part numbers
//	fleet/p/<name>/<version>                     Package (JSON): id, description, vendor (the binary
//	                                             is the engine's record, core/bin/)
//	fleet/c/<part>                               Component (JSON): part number, description
//	fleet/fi/<name>/<version>/<VIN>              empty: the vehicle has this package installed while no
//	                                             such package is registered ("foreign"); when it is
//	                                             registered the vehicle is re-indexed and the key dropped
//	fleet/f/<name>                               Filter (JSON): name, expression
//	fleet/fr/<referenced>/<referrer>             empty: filter <referrer> uses `filter "<referenced>"`
//	                                             (directly); a referenced filter cannot be deleted
//	fleet/pf/<name>/<version>/<filter>           PackageFilter (JSON) association, case-preserving
//	fleet/fp/<filter>/<name>/<version>           empty: the same association, by filter
//	fleet/d/<name>/<version>/<depname>/=<depver> exact dependency (JSON depRec)
//	fleet/d/<name>/<version>/<depname>/~         range dependency on depname (JSON depRec)
//	fleet/rd/<depname>/<depver>/<name>/<version> empty: reverse of an exact dependency (dropped with
//	                                             the depended-upon package)
//
// The vehicle record carries everything of the resolver's that the fleet index needs, so that a
// restart reads one key per vehicle and an import writes one key per vehicle (plus the rare foreign
// markers). The engine's state of a vehicle (last contact, data plan) is in the engine's records; the
// engine feeds the index with it (fleetstate.go). Records of layout 1 (before December 2026) also
// carried that state; they are read, and rewritten in layout 2 at start (MigrateVehicles), the engine
// storing what they carried in the same transaction.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"sota/dsl"
	"sota/store"
)

const (
	pVehicle   = "fleet/v/"
	pPackage   = "fleet/p/"
	pComponent = "fleet/c/"
	pForeign   = "fleet/fi/"
	pFilter    = "fleet/f/"
	pFilterRef = "fleet/fr/"
	pPkgFilter = "fleet/pf/"
	pFilterPkg = "fleet/fp/"
	pDep       = "fleet/d/"
	pRevDep    = "fleet/rd/"
)

func lower(s string) string { return strings.ToLower(s) }

func vehicleKey(vin string) []byte { return []byte(pVehicle + vin) }

func pkgPart(id PackageID) string    { return lower(id.Name) + "/" + id.Version }
func packageKey(id PackageID) []byte { return []byte(pPackage + pkgPart(id)) }
func packageNamePrefix(name string) []byte {
	return []byte(pPackage + lower(name) + "/")
}
func componentKey(part string) []byte { return []byte(pComponent + lower(part)) }
func foreignKey(id PackageID, vin string) []byte {
	return []byte(pForeign + pkgPart(id) + "/" + vin)
}
func foreignPrefix(id PackageID) []byte { return []byte(pForeign + pkgPart(id) + "/") }
func filterKey(name string) []byte      { return []byte(pFilter + lower(name)) }
func filterRefKey(referenced, referrer string) []byte {
	return []byte(pFilterRef + lower(referenced) + "/" + lower(referrer))
}
func filterRefPrefix(referenced string) []byte { return []byte(pFilterRef + lower(referenced) + "/") }
func pkgFilterKey(id PackageID, filter string) []byte {
	return []byte(pPkgFilter + pkgPart(id) + "/" + lower(filter))
}
func pkgFilterPrefix(id PackageID) []byte { return []byte(pPkgFilter + pkgPart(id) + "/") }
func filterPkgKey(filter string, id PackageID) []byte {
	return []byte(pFilterPkg + lower(filter) + "/" + pkgPart(id))
}
func filterPkgPrefix(filter string) []byte { return []byte(pFilterPkg + lower(filter) + "/") }
func depPrefix(id PackageID) []byte        { return []byte(pDep + pkgPart(id) + "/") }
func depExactKey(id, dep PackageID) []byte {
	return []byte(pDep + pkgPart(id) + "/" + lower(dep.Name) + "/=" + dep.Version)
}
func depRangeKey(id PackageID, depName string) []byte {
	return []byte(pDep + pkgPart(id) + "/" + lower(depName) + "/~")
}
func revDepKey(dep, id PackageID) []byte {
	return []byte(pRevDep + pkgPart(dep) + "/" + pkgPart(id))
}
func revDepPrefix(dep PackageID) []byte { return []byte(pRevDep + pkgPart(dep) + "/") }

// splitKey returns the '/'-separated parts of key after prefix.
func splitKey(key []byte, prefix string) []string {
	return strings.Split(string(key[len(prefix):]), "/")
}

// vehicleRec is the stored form of a vehicle.
type vehicleRec struct {
	VIN        string
	Attrs      map[string]dsl.Value
	Packages   []PackageID // installed, known and foreign, sorted by lower-cased name then version
	Components []string    // installed part numbers, sorted case-insensitively
}

// Layouts of the vehicle record: 1 had the engine's last contact and data plan after the VIN; 2 has
// not.
const (
	vehicleLayout1      = 1
	vehicleCodecVersion = 2
)

// LegacyVehicle is what a vehicle record of layout 1 held of the engine's state, handed to the engine
// by MigrateVehicles.
type LegacyVehicle struct {
	VIN      string
	LastSeen time.Time // zero: never seen
	DataPlan string    // "": none
}

// encodeVehicle is the binary vehicle codec: a version byte, then the fields as uvarint-length
// strings, varints and counts. JSON would cost most of a restart's time at a million vehicles.
func encodeVehicle(v *vehicleRec) []byte {
	n := 16 + len(v.VIN)
	for _, p := range v.Packages {
		n += 4 + len(p.Name) + len(p.Version)
	}
	for _, c := range v.Components {
		n += 2 + len(c)
	}
	for k, a := range v.Attrs {
		n += 12 + len(k) + len(a.Str)
	}
	b := make([]byte, 0, n)
	b = append(b, vehicleCodecVersion)
	b = appendString(b, v.VIN)
	b = binary.AppendUvarint(b, uint64(len(v.Packages)))
	for _, p := range v.Packages {
		b = appendString(b, p.Name)
		b = appendString(b, p.Version)
	}
	b = binary.AppendUvarint(b, uint64(len(v.Components)))
	for _, c := range v.Components {
		b = appendString(b, c)
	}
	b = binary.AppendUvarint(b, uint64(len(v.Attrs)))
	for _, k := range sortedKeys(v.Attrs) {
		a := v.Attrs[k]
		b = appendString(b, k)
		if a.IsNum {
			b = append(b, 1)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(a.Num))
		} else {
			b = append(b, 0)
			b = appendString(b, a.Str)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errCorrupt = errors.New("resolver: corrupt vehicle record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every element takes at least one byte
		d.err = errCorrupt
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) byte1() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = errCorrupt
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func decodeVehicle(b []byte) (*vehicleRec, error) {
	v, _, err := decodeVehicleAny(b)
	return v, err
}

// decodeVehicleAny decodes a record of either layout; legacy is what a layout 1 record held of the
// engine's state (nil for layout 2).
func decodeVehicleAny(b []byte) (v *vehicleRec, legacy *LegacyVehicle, err error) {
	if len(b) == 0 || b[0] != vehicleCodecVersion && b[0] != vehicleLayout1 {
		return nil, nil, errCorrupt
	}
	d := decoder{b: b[1:]}
	v = &vehicleRec{}
	v.VIN = d.str()
	if b[0] == vehicleLayout1 {
		legacy = &LegacyVehicle{VIN: v.VIN}
		if ns := d.varint(); ns != 0 {
			legacy.LastSeen = time.Unix(0, ns).UTC()
		}
		legacy.DataPlan = d.str()
	}
	if n := d.count(); n > 0 {
		v.Packages = make([]PackageID, n)
		for i := range v.Packages {
			v.Packages[i].Name = d.str()
			v.Packages[i].Version = d.str()
		}
	}
	if n := d.count(); n > 0 {
		v.Components = make([]string, n)
		for i := range v.Components {
			v.Components[i] = d.str()
		}
	}
	if n := d.count(); n > 0 {
		v.Attrs = make(map[string]dsl.Value, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.str()
			var a dsl.Value
			if d.byte1() == 1 {
				a.IsNum = true
				a.Num = math.Float64frombits(d.u64())
			} else {
				a.Str = d.str()
			}
			v.Attrs[k] = a
		}
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("%w: %s", d.err, v.VIN)
	}
	return v, legacy, nil
}

// getJSON reads a JSON record; found is false for a missing key.
func getJSON(t store.Txn, key []byte, v any) (found bool, err error) {
	b, err := t.Get(key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("resolver: record %s: %w", key, err)
	}
	return true, nil
}

func putJSON(t store.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.Set(key, b)
}

func getVehicle(t store.Txn, vin string) (*vehicleRec, error) {
	b, err := t.Get(vehicleKey(vin))
	if err != nil {
		return nil, err
	}
	return decodeVehicle(b)
}

func putVehicle(t store.Txn, v *vehicleRec) error {
	return t.Set(vehicleKey(v.VIN), encodeVehicle(v))
}

func jsonUnmarshal(key, val []byte, v any) error {
	if err := json.Unmarshal(val, v); err != nil {
		return fmt.Errorf("resolver: record %s: %w", key, err)
	}
	return nil
}
