package examples

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckDigit(t *testing.T) {
	// Published examples of valid VINs.
	for _, vin := range []string{"1M8GDM9AXKP042788", "11111111111111111", "1HGCM82633A004352"} {
		assert.Equal(t, vin[8], CheckDigit(vin), vin)
	}
}

func TestFleetIsDeterministicAndPrefixStable(t *testing.T) {
	a := Fleet(7, 500)
	b := Fleet(7, 500)
	require.Equal(t, a, b)
	assert.Equal(t, a[:100], Fleet(7, 100))
	c := Fleet(8, 500)
	assert.NotEqual(t, a[0].VIN, c[0].VIN)
}

func TestFleetVehiclesAreWellFormed(t *testing.T) {
	wmis := map[string]bool{}
	for _, m := range makes {
		wmis[m.wmi] = true
	}
	known := map[Package]bool{}
	for _, p := range Catalogue().Packages {
		known[Package{p.Name, p.Version}] = true
	}
	parts := map[string]bool{}
	for _, c := range Catalogue().Components {
		parts[c.PartNumber] = true
	}
	seen := map[string]bool{}
	models := map[string]bool{}
	for _, v := range Fleet(1, 5000) {
		require.Len(t, v.VIN, 17)
		assert.False(t, seen[v.VIN], "duplicate VIN %s", v.VIN)
		seen[v.VIN] = true
		assert.True(t, wmis[v.VIN[:3]], v.VIN)
		assert.NotContains(t, v.VIN, "I")
		assert.NotContains(t, v.VIN, "O")
		assert.NotContains(t, v.VIN, "Q")
		assert.Equal(t, CheckDigit(v.VIN), v.VIN[8], v.VIN)
		year := v.Attributes["year"].(int)
		assert.Equal(t, yearCode[year-2010], v.VIN[9], v.VIN)
		assert.True(t, year >= FirstYear && year <= LastYear)
		assert.Len(t, v.Packages, PackagesPerVehicle)
		names := map[string]bool{}
		for _, p := range v.Packages {
			assert.True(t, known[p], "%v not in the catalogue", p)
			assert.False(t, names[p.Name], "%s installed twice on %s", p.Name, v.VIN)
			names[p.Name] = true
		}
		assert.Len(t, v.Components, ComponentsPerVehicle)
		for _, c := range v.Components {
			assert.True(t, parts[c], c)
		}
		m := v.Attributes["market"].(string)
		assert.Equal(t, regionOf[m], v.Attributes["region"], m)
		models[v.Attributes["model"].(string)] = true
		d := v.DSL()
		assert.Equal(t, float64(year), d.Attrs["year"].Num)
		assert.True(t, d.Attrs["year"].IsNum)
		assert.Equal(t, v.Attributes["model"], d.Attrs["model"].Str)
	}
	assert.Greater(t, len(models), 20, "the fleet covers the models")
}

func TestCatalogueDependenciesAreSatisfiable(t *testing.T) {
	c := Catalogue()
	versions := map[string][]string{}
	for _, p := range c.Packages {
		versions[p.Name] = append(versions[p.Name], p.Version)
	}
	for _, p := range c.Packages {
		for _, d := range p.Dependencies {
			require.Contains(t, versions, d.Name, "%s-%s depends on unknown %s", p.Name, p.Version, d.Name)
			assert.True(t, (d.Version == "") != (d.Range == ""), "exactly one of version and range: %+v", d)
			if d.Version != "" {
				assert.Contains(t, versions[d.Name], d.Version)
			}
		}
	}
}

func TestWriteJSONLRoundTrips(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, WriteJSONL(&buf, 3, 50))
	sc := bufio.NewScanner(&buf)
	want := Fleet(3, 50)
	i := 0
	for sc.Scan() {
		line := sc.Text()
		require.True(t, strings.HasPrefix(line, `{"vin":"`), line)
		var v Vehicle
		require.NoError(t, json.Unmarshal([]byte(line), &v))
		assert.Equal(t, want[i].VIN, v.VIN)
		assert.Equal(t, want[i].Packages, v.Packages)
		assert.Equal(t, want[i].Components, v.Components)
		assert.Equal(t, want[i].DSL().Attrs, v.DSL().Attrs) // year comes back as float64
		i++
	}
	assert.Equal(t, 50, i)
}
