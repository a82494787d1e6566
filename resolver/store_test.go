package resolver

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
)

func TestVehicleCodecRoundTrip(t *testing.T) {
	for _, v := range []*vehicleRec{
		{VIN: "SAJNX5745SC000001"},
		{
			VIN:        "SAJNX5745SC000002",
			Packages:   []PackageID{{Name: "Nav", Version: "1.0.0"}, {Name: "radio", Version: "2.0.0-rc.1+b7"}},
			Components: []string{"ECU1", "abs2"},
			Attrs:      map[string]dsl.Value{"model": {Str: "XJ"}, "year": {Num: 2016, IsNum: true}, "neg": {Num: -1.5, IsNum: true}, "empty": {}},
		},
	} {
		got, err := decodeVehicle(encodeVehicle(v))
		require.NoError(t, err)
		assert.Equal(t, v, got)
	}
}

// A record of layout 1 (which held the engine's last contact and data plan after the VIN) decodes to
// the same vehicle, and what it held of the engine's state comes out as the legacy part.
func TestVehicleCodecReadsLayout1(t *testing.T) {
	v := &vehicleRec{VIN: "SAJNX5745SC000002", Packages: []PackageID{{Name: "Nav", Version: "1.0.0"}},
		Components: []string{"ECU1"}, Attrs: map[string]dsl.Value{"year": {Num: 2016, IsNum: true}}}
	layout2 := encodeVehicle(v)
	require.Equal(t, byte(2), layout2[0])
	var b []byte
	b = append(b, 1)
	b = appendString(b, v.VIN)
	b = binary.AppendVarint(b, 1700000000123456789)
	b = appendString(b, "plan-A")
	b = append(b, layout2[1+1+len(v.VIN):]...) // packages, components, attributes: the same in both
	got, legacy, err := decodeVehicleAny(b)
	require.NoError(t, err)
	assert.Equal(t, v, got)
	assert.Equal(t, &LegacyVehicle{VIN: v.VIN, LastSeen: time.Unix(0, 1700000000123456789).UTC(), DataPlan: "plan-A"}, legacy)

	_, legacy, err = decodeVehicleAny(layout2)
	require.NoError(t, err)
	assert.Nil(t, legacy)
}

func TestVehicleCodecRejectsCorruptRecords(t *testing.T) {
	b := encodeVehicle(&vehicleRec{VIN: "SAJNX5745SC000002", Packages: []PackageID{{Name: "Nav", Version: "1.0.0"}}, Attrs: map[string]dsl.Value{"y": {Num: 1, IsNum: true}}})
	for i := 0; i < len(b); i++ {
		_, err := decodeVehicle(b[:i])
		assert.Errorf(t, err, "truncated at %d", i)
	}
	bad := append([]byte{99}, b[1:]...)
	_, err := decodeVehicle(bad)
	assert.ErrorIs(t, err, errCorrupt)
}

func TestCompareVersionsFollowsSemVerPrecedence(t *testing.T) {
	ordered := []string{"not-a-version", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "2.0.0"}
	for i := range ordered {
		for j := range ordered {
			assert.Equalf(t, compareInts(i, j), compareVersions(ordered[i], ordered[j]), "%s vs %s", ordered[i], ordered[j])
		}
	}
	assert.Equal(t, 0, compareVersions("1.0.0+b1", "1.0.0+b2"), "build metadata is ignored")
}
