package api

import (
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/policy"
	"sota/resolver"
	"sota/store"
)

// testDeps are the services a test server runs with and the store under them: a test reaches into the
// store (DB) to set up a state; the server itself only gets Deps, the services cmd/sotad builds.
type testDeps struct {
	Deps
	DB *store.DB
}

// newServer is New for the tests: a dependency error fails the test.
func newServer(tb testing.TB, cfg Config, d Deps) (*gin.Engine, *Server) {
	tb.Helper()
	h, s, err := New(cfg, d)
	require.NoError(tb, err)
	tb.Cleanup(s.Close) // before the store closes (its cleanup was registered earlier)
	return h, s
}

// fullDeps opens a real store in a temporary directory and builds every domain service on it, so that
// every route is registered.
func fullDeps(tb testing.TB) testDeps {
	d, _ := fullDepsWith(tb, engine.Options{})
	return d
}

// fullDepsWith is fullDeps with engine options; it also returns the data directory.
func fullDepsWith(tb testing.TB, o engine.Options) (testDeps, string) {
	tb.Helper()
	dir := tb.TempDir()
	db, err := storetest.OpenDir(tb, dir+"/db")
	require.NoError(tb, err)
	tb.Cleanup(func() { db.Close() })
	res, err := resolver.New(db)
	require.NoError(tb, err)
	o.DataDir = dir
	eng, err := engine.New(db, res, o)
	require.NoError(tb, err)
	return testDeps{DB: db, Deps: Deps{Auth: auth.New(db), Resolver: res, Engine: eng, Policy: policy.NewService(db), StoreSize: db.DiskSize}}, dir
}

// New refuses a set of services that cannot serve, naming what is missing, instead of leaving routes
// out silently; it builds the server for every complete set.
func TestNewRefusesAMissingDependency(t *testing.T) {
	full := withSigning(t, fullDeps(t)).Deps
	without := func(change func(*Deps)) Deps {
		d := full
		change(&d)
		return d
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		deps Deps
		want string // in the error; "" for a server that builds
	}{
		{"every service", Config{}, full, ""},
		{"auth off for development, no services", Config{AuthNone: true}, Deps{}, ""},
		{"auth off, resolver only", Config{AuthNone: true}, Deps{Resolver: full.Resolver}, ""},
		{"policy only", Config{}, Deps{Auth: full.Auth, Policy: full.Policy}, ""},
		{"no auth service with auth on", Config{}, without(func(d *Deps) { d.Auth = nil }), "Deps.Auth is required"},
		{"engine without resolver", Config{}, without(func(d *Deps) { d.Resolver = nil }), "Deps.Engine needs Deps.Resolver"},
		{"signing without engine", Config{}, without(func(d *Deps) { d.Engine = nil }), "Deps.Signing needs Deps.Engine"},
		{"RVI without engine", Config{RVI: RVIConfig{NodeURL: "http://127.0.0.1:1"}}, Deps{Auth: full.Auth, Resolver: full.Resolver}, "Config.RVI needs Deps.Engine"},
		{"a trusted proxy that is no address", Config{TrustedProxies: []string{"gateway.example"}}, full, "gateway.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s, err := New(tc.cfg, tc.deps)
			if tc.want == "" {
				require.NoError(t, err)
				require.NotNil(t, h)
				require.NotEmpty(t, s.Routes())
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Nil(t, h)
			require.Nil(t, s)
		})
	}
}
