package resolver

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
)

func TestVehicleCodecRoundTrip(t *testing.T) {
	for _, v := range []*vehicleRec{
		{VIN: "SAJNX5745SC000001"},
		{
			VIN: "SAJNX5745SC000002", LastSeen: 1700000000123456789, DataPlan: "plan-A",
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
