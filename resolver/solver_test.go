package resolver

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/dsl"
	"sota/examples"
)

// mapGraph is a Graph from literal tables; names compare case-insensitively.
type mapGraph struct {
	versions map[string][]string
	deps     map[PackageID][]Dep // keyed by lower-cased name
	shuffle  *rand.Rand          // when set, Deps come in random order
}

func newMapGraph() *mapGraph {
	return &mapGraph{versions: map[string][]string{}, deps: map[PackageID][]Dep{}}
}

// pkg adds name-version with dependencies written "name 1.0.0" (exact) or "name >=1.0.0 <2.0.0".
func (g *mapGraph) pkg(t testing.TB, name, version string, deps ...string) *mapGraph {
	k := strings.ToLower(name)
	if !slices.Contains(g.versions[k], version) {
		g.versions[k] = append(g.versions[k], version)
	}
	id := PackageID{Name: k, Version: version}
	for _, d := range deps {
		n, spec, _ := strings.Cut(d, " ")
		if _, err := dsl.ParseVersion(spec); err == nil {
			g.deps[id] = append(g.deps[id], Dep{Name: n, Exact: spec})
			continue
		}
		r, err := dsl.ParseRange(spec)
		require.NoError(t, err, d)
		g.deps[id] = append(g.deps[id], Dep{Name: n, Range: r})
	}
	return g
}

func (g *mapGraph) Deps(id PackageID) []Dep {
	d := slices.Clone(g.deps[PackageID{Name: strings.ToLower(id.Name), Version: id.Version}])
	if g.shuffle != nil {
		g.shuffle.Shuffle(len(d), func(i, j int) { d[i], d[j] = d[j], d[i] })
	}
	return d
}

func (g *mapGraph) Versions(name string) []string { return g.versions[strings.ToLower(name)] }

// catalogueGraph is the example catalogue as a Graph.
func catalogueGraph(t testing.TB) *mapGraph {
	g := newMapGraph()
	for _, p := range examples.Catalogue().Packages {
		var deps []string
		for _, d := range p.Dependencies {
			deps = append(deps, d.Name+" "+d.Version+d.Range)
		}
		g.pkg(t, p.Name, p.Version, deps...)
	}
	return g
}

func ids(s ...string) []PackageID {
	var out []PackageID
	for _, x := range s {
		n, v, _ := strings.Cut(x, "@")
		out = append(out, PackageID{Name: n, Version: v})
	}
	return out
}

func TestSolve(t *testing.T) {
	base := func(t *testing.T) *mapGraph {
		return newMapGraph().
			pkg(t, "app", "1.0.0", "lib 1.0.0", "ui >=2.0.0").
			pkg(t, "lib", "1.0.0", "core >=1.0.0 <2.0.0").
			pkg(t, "lib", "2.0.0").
			pkg(t, "ui", "1.0.0").pkg(t, "ui", "2.0.0", "core >=1.2.0").pkg(t, "ui", "2.1.0-rc.1").
			pkg(t, "core", "0.9.0").pkg(t, "core", "1.0.0", "firmware 1.0.0").pkg(t, "core", "1.5.0").pkg(t, "core", "2.0.0").
			pkg(t, "firmware", "1.0.0")
	}
	root := PackageID{Name: "app", Version: "1.0.0"}
	tests := []struct {
		name      string
		installed map[string]string
		want      []PackageID
		reason    string
	}{
		{"nothing installed: the whole closure, dependencies first, highest satisfying versions",
			nil, ids("core@1.5.0", "lib@1.0.0", "ui@2.1.0-rc.1", "app@1.0.0"), ""},
		{"exact root version installed: nothing to do",
			map[string]string{"app": "1.0.0"}, nil, ""},
		{"another root version installed: the root is installed",
			map[string]string{"app": "0.9.0", "lib": "1.0.0", "ui": "2.0.0"}, ids("app@1.0.0"), ""},
		{"an installed version that satisfies a range is kept and its dependencies taken as present",
			map[string]string{"core": "1.2.0"}, ids("lib@1.0.0", "ui@2.1.0-rc.1", "app@1.0.0"), ""},
		{"an installed version that does not satisfy is replaced by the highest that does",
			map[string]string{"core": "0.9.0", "lib": "2.0.0"}, ids("core@1.5.0", "lib@1.0.0", "ui@2.1.0-rc.1", "app@1.0.0"), ""},
		{"installed exact dependency kept",
			map[string]string{"lib": "1.0.0", "ui": "2.0.0"}, ids("app@1.0.0"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Solve(base(t), root, tc.installed)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSolveChoosesAgainWhenALaterConstraintRulesAVersionOut(t *testing.T) {
	g := newMapGraph().
		pkg(t, "app", "1.0.0", "b >=1.0.0", "c >=1.0.0").
		pkg(t, "b", "1.0.0").pkg(t, "b", "1.5.0").pkg(t, "b", "2.0.0").
		pkg(t, "c", "1.0.0", "b <2.0.0")
	got, err := Solve(g, PackageID{Name: "app", Version: "1.0.0"}, nil)
	require.NoError(t, err)
	assert.Equal(t, ids("b@1.5.0", "c@1.0.0", "app@1.0.0"), got)

	// A kept installed version that a later constraint rules out is upgraded.
	g = newMapGraph().
		pkg(t, "app", "1.0.0", "b >=1.0.0", "c >=1.0.0").
		pkg(t, "b", "1.0.0").pkg(t, "b", "2.0.0").pkg(t, "b", "3.0.0").
		pkg(t, "c", "1.0.0", "b >=2.0.0 <3.0.0")
	got, err = Solve(g, PackageID{Name: "app", Version: "1.0.0"}, map[string]string{"b": "1.0.0"})
	require.NoError(t, err)
	assert.Equal(t, ids("b@2.0.0", "c@1.0.0", "app@1.0.0"), got)
}

func TestSolveUnresolved(t *testing.T) {
	tests := []struct {
		name   string
		graph  func(t *testing.T) *mapGraph
		reason string
	}{
		{"two exact pins disagree", func(t *testing.T) *mapGraph {
			return newMapGraph().pkg(t, "app", "1.0.0", "speech 5.0.0", "voice 1.0.0").
				pkg(t, "voice", "1.0.0", "speech 6.0.0").pkg(t, "speech", "5.0.0").pkg(t, "speech", "6.0.0")
		}, "conflicting exact dependencies on speech: app-1.0.0 requires speech 5.0.0; voice-1.0.0 requires speech 6.0.0"},
		{"no known version in the range", func(t *testing.T) *mapGraph {
			return newMapGraph().pkg(t, "app", "1.0.0", "lib >=3.0.0").pkg(t, "lib", "1.0.0").pkg(t, "lib", "2.0.0")
		}, "no known version of lib satisfies app-1.0.0 requires lib >=3.0.0"},
		{"unknown package", func(t *testing.T) *mapGraph {
			return newMapGraph().pkg(t, "app", "1.0.0", "ghost 1.0.0")
		}, "no known version of ghost satisfies app-1.0.0 requires ghost 1.0.0"},
		{"ranges that exclude each other", func(t *testing.T) *mapGraph {
			return newMapGraph().pkg(t, "app", "1.0.0", "a >=1.0.0", "b >=1.0.0").
				pkg(t, "a", "1.0.0", "lib <2.0.0").pkg(t, "b", "1.0.0", "lib >=2.0.0").
				pkg(t, "lib", "1.0.0").pkg(t, "lib", "2.0.0")
		}, "no known version of lib satisfies a-1.0.0 requires lib <2.0.0; b-1.0.0 requires lib >=2.0.0"},
		{"the root against its own dependencies", func(t *testing.T) *mapGraph {
			return newMapGraph().pkg(t, "app", "1.0.0", "lib >=1.0.0").pkg(t, "lib", "1.0.0", "app >=2.0.0").pkg(t, "app", "2.0.0")
		}, "app-1.0.0 conflicts with its own dependencies: lib-1.0.0 requires app >=2.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Solve(tc.graph(t), PackageID{Name: "app", Version: "1.0.0"}, nil)
			assert.Nil(t, got)
			var u *Unresolved
			require.ErrorAs(t, err, &u)
			assert.Equal(t, tc.reason, u.Reason)
		})
	}
}

func TestSolveCyclesAndCase(t *testing.T) {
	g := newMapGraph().
		pkg(t, "App", "1.0.0", "Lib >=1.0.0").
		pkg(t, "lib", "1.0.0", "app >=1.0.0 <2.0.0")
	got, err := Solve(g, PackageID{Name: "App", Version: "1.0.0"}, nil)
	require.NoError(t, err)
	assert.Equal(t, ids("Lib@1.0.0", "App@1.0.0"), got)

	got, err = Solve(g, PackageID{Name: "App", Version: "1.0.0"}, map[string]string{"lib": "1.0.0"})
	require.NoError(t, err)
	assert.Equal(t, ids("App@1.0.0"), got)
}

// Over the example catalogue and fleet: the answer does not depend on the order of Deps, and the
// installed set after the install list satisfies every dependency of what was installed.
func TestSolveOverTheExampleFleet(t *testing.T) {
	g := catalogueGraph(t)
	shuffled := catalogueGraph(t)
	shuffled.shuffle = rand.New(rand.NewPCG(3, 4))
	fleet := examples.Fleet(21, 300)
	resolved, unresolved := 0, 0
	for _, p := range examples.Catalogue().Packages {
		root := PackageID{Name: p.Name, Version: p.Version}
		for _, v := range fleet[:40] {
			installed := map[string]string{}
			for _, ip := range v.Packages {
				installed[strings.ToLower(ip.Name)] = ip.Version
			}
			got, err := Solve(g, root, installed)
			again, err2 := Solve(shuffled, root, installed)
			require.Equal(t, got, again)
			require.Equal(t, err, err2)
			if err != nil {
				unresolved++
				continue
			}
			resolved++
			if installed[strings.ToLower(root.Name)] == root.Version {
				require.Empty(t, got)
				continue
			}
			require.NotEmpty(t, got)
			require.Equal(t, root, got[len(got)-1])
			after := map[string]string{}
			for k, ver := range installed {
				after[k] = ver
			}
			seen := map[string]bool{}
			for _, id := range got {
				for _, d := range g.Deps(id) { // dependencies first
					k := strings.ToLower(d.Name)
					if !seen[k] {
						_, was := installed[k]
						require.True(t, was, "%s installed before its dependency %s", id, d.Name)
					}
				}
				after[strings.ToLower(id.Name)] = id.Version
				seen[strings.ToLower(id.Name)] = true
			}
			for _, id := range got {
				for _, d := range g.Deps(id) {
					c := constraint{from: id, dep: d}
					assert.True(t, c.allows(after[strings.ToLower(d.Name)]), "%s unsatisfied on %s", c, v.VIN)
				}
			}
		}
	}
	assert.Greater(t, resolved, 1000)
	t.Logf("resolved %d, unresolved %d", resolved, unresolved)
}

func TestSolveSelectedAgreesWithSolvePerVehicle(t *testing.T) {
	g := catalogueGraph(t)
	fleet := examples.FleetDSL(17, 1500)
	x := NewFleetIndex()
	// Inserted one by one in generation order: ids are not in VIN order.
	for _, v := range fleet {
		x.Put(v)
	}
	x.Delete(fleet[3].VIN)
	roots := []PackageID{
		{Name: "nav-engine", Version: "3.2.0"}, {Name: "ota-client", Version: "2.1.0"},
		{Name: "dab-radio", Version: "1.1.0"}, {Name: "Voice-Assistant", Version: "2.0.0"}, {Name: "glibc", Version: "2.38.0"},
	}
	for _, root := range roots {
		got := x.SolveSelected(func(idx dsl.Index) *roaring.Bitmap {
			bm := idx.VINPrefix("W").Clone()
			bm.Or(idx.Attr("region", func(v dsl.Value) bool { return v.Str == "NA" }))
			bm.Add(1 << 30) // not a vehicle: ignored
			return bm
		}, g, root)
		var want []Solution
		for i, v := range fleet {
			if i == 3 || !(strings.HasPrefix(v.VIN, "W") || v.Attrs["region"].Str == "NA") {
				continue
			}
			installed := map[string]string{}
			s := Solution{VIN: v.VIN}
			for _, p := range v.Packages {
				installed[strings.ToLower(p.Name)] = p.Version
				if strings.EqualFold(p.Name, root.Name) && p.Version == root.Version {
					s.AlreadyInstalled = true
				}
			}
			if !s.AlreadyInstalled {
				s.Install, s.Err = Solve(g, root, installed)
			}
			want = append(want, s)
		}
		slices.SortFunc(want, func(a, b Solution) int { return strings.Compare(a.VIN, b.VIN) })
		require.Equal(t, want, got, root.String())
		already, unresolved := 0, 0
		for _, s := range got {
			if s.AlreadyInstalled {
				already++
			}
			if s.Err != nil {
				unresolved++
			}
		}
		t.Logf("%s: %d selected, %d already installed, %d unresolved", root, len(got), already, unresolved)
	}
}
