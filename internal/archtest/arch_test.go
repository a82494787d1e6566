package archtest

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	treeOnce   sync.Once
	treeModule string
	treePkgs   []Package
	treeErr    error
)

// tree is the module this test lives in, listed once by `go list`.
func tree(t *testing.T) (string, []Package) {
	t.Helper()
	treeOnce.Do(func() {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			treeErr = err
			return
		}
		treeModule, treePkgs, treeErr = Load(root)
	})
	require.NoError(t, treeErr)
	require.Greater(t, len(treePkgs), 10, "go list found the module's packages")
	return treeModule, treePkgs
}

func report(t *testing.T, vs []Violation) {
	t.Helper()
	for _, v := range vs {
		t.Errorf("%s", v)
	}
}

// The real tree: api does not import store, client imports only wire, dsl/wire/store import nothing of
// ours, and no dependency points up the layers.
func TestImportsFollowTheLayers(t *testing.T) {
	module, pkgs := tree(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[strings.TrimPrefix(p.Path, module+"/")] = true
	}
	for _, must := range []string{"api", "client", "wire", "store", "dsl", "engine", "resolver", "auth", "signing", "policy"} {
		require.Truef(t, seen[must], "go list lists %s/%s (the rules would check nothing)", module, must)
	}
	report(t, CheckImports(module, pkgs))
}

// The real tree: no exported function or method of resolver, engine, auth, signing or policy takes a
// store.Txn.
func TestNoDomainExportsATxnParameter(t *testing.T) {
	module, pkgs := tree(t)
	vs, err := CheckTxnParams(module, pkgs)
	require.NoError(t, err)
	report(t, vs)
}

// The real tree: api has no init function and no exported package-level variable.
func TestRoutesAreRegisteredInOnePlace(t *testing.T) {
	module, pkgs := tree(t)
	vs, err := CheckRoutes(module, pkgs)
	require.NoError(t, err)
	report(t, vs)
}

// Each rule reports a package that breaks it, and only that one: the checks above can fail.
func TestCheckerReportsEachViolation(t *testing.T) {
	const m = "sota"
	pkg := func(path string, imports ...string) Package { return Package{Path: path, Imports: imports} }
	src := func(path, file, code string) Package {
		return Package{Path: path, Files: map[string][]byte{file: []byte(code)}}
	}
	for _, tc := range []struct {
		name string
		pkgs []Package
		rule string // "" when nothing may be reported
		in   string // the package reported
		what string // in the detail
	}{
		{"api imports store", []Package{pkg("sota/api", "sota/engine", "sota/store", "net/http")}, RuleAPIStore, "sota/api", "sota/store"},
		{"client imports the engine", []Package{pkg("sota/client", "sota/wire", "sota/engine")}, RuleClient, "sota/client", "sota/engine"},
		{"client imports the resolver", []Package{pkg("sota/client", "sota/resolver")}, RuleClient, "sota/client", "sota/resolver"},
		{"client imports errs", []Package{pkg("sota/client", "sota/errs")}, RuleClient, "sota/client", "sota/errs"},
		{"client imports api", []Package{pkg("sota/client", "sota/api")}, RuleClient, "sota/client", "sota/api"},
		{"wire imports the resolver", []Package{pkg("sota/wire", "encoding/json", "sota/resolver")}, RuleLeaf, "sota/wire", "sota/resolver"},
		{"dsl imports errs", []Package{pkg("sota/dsl", "sota/errs")}, RuleLeaf, "sota/dsl", "sota/errs"},
		{"store imports the engine", []Package{pkg("sota/store", "sota/engine")}, RuleLeaf, "sota/store", "sota/engine"},
		{"a store subpackage imports auth", []Package{pkg("sota/store/pg", "sota/store", "sota/auth")}, RuleLeaf, "sota/store/pg", "sota/auth"},
		{"a domain imports api", []Package{pkg("sota/engine", "sota/resolver", "sota/api")}, RuleLayers, "sota/engine", "sota/api"},
		{"a domain imports the client", []Package{pkg("sota/signing", "sota/client")}, RuleLayers, "sota/signing", "sota/client"},
		{"a domain imports a command", []Package{pkg("sota/policy", "sota/cmd/sotad")}, RuleLayers, "sota/policy", "sota/cmd/sotad"},
		{"a new package imports api", []Package{pkg("sota/blob", "sota/api")}, RuleLayers, "sota/blob", "sota/api"},
		{"api imports the client", []Package{pkg("sota/api", "sota/client")}, RuleLayers, "sota/api", "sota/client"},
		{"examples import api", []Package{pkg("sota/examples/load", "sota/api")}, RuleLayers, "sota/examples/load", "sota/api"},
		{"a test helper imports a domain", []Package{pkg("sota/internal/storetest", "sota/store", "sota/engine")}, RuleLayers, "sota/internal/storetest", "sota/engine"},

		{"the allowed directions", []Package{
			pkg("sota/cmd/sotad", "sota/api", "sota/auth", "sota/store", "sota/examples/load", "sota/internal/version"),
			pkg("sota/cmd/sota", "sota/client", "sota/engine", "sota/wire"),
			pkg("sota/api", "sota/auth", "sota/engine", "sota/resolver", "sota/signing", "sota/policy", "sota/dsl", "sota/errs", "sota/web", "sota/wire"),
			pkg("sota/client", "sota/wire", "github.com/theupdateframework/go-tuf/v2/metadata"),
			pkg("sota/engine", "sota/resolver", "sota/store", "sota/errs", "sota/wire"),
			pkg("sota/signing", "sota/engine", "sota/resolver", "sota/store"),
			pkg("sota/examples/load", "sota/examples", "sota/resolver"),
			pkg("sota/store/pg", "sota/store"),
			pkg("sota/internal/storetest", "sota/store"),
			pkg("sota/wire", "crypto/ed25519", "time"),
			pkg("other/module", "sota/api"),
		}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs := CheckImports(m, tc.pkgs)
			if tc.rule == "" {
				assert.Empty(t, vs)
				return
			}
			require.Len(t, vs, 1, "%v", vs)
			assert.Equal(t, tc.rule, vs[0].Rule)
			assert.Equal(t, tc.in, vs[0].Package)
			assert.Contains(t, vs[0].Detail, tc.what)
		})
	}

	const domainSrc = `package resolver

import (
	"sota/store"
	db "sota/store"
)

type Service struct{}
type graph struct{}

func (s *Service) ApplyInstalled(t store.Txn, vin string) error { return nil }
func (s Service) Cascade(vin string, tx db.Txn) error          { return nil }
func AfterCommit(fn func(store.Txn) error)                      {}
func Batch(ts []store.Txn)                                       {}

func (s *Service) applyInstalled(t store.Txn) error { return nil } // unexported: fine
func (g *graph) Deps(t store.Txn) error              { return nil } // method of an unexported type: fine
func Open(db *store.DB) (*Service, error)            { return nil, nil } // the store itself: fine
func View(fn func() error) error                      { return nil }
`
	vs, err := CheckTxnParams(m, []Package{src("sota/resolver", "resolver/vehicles.go", domainSrc)})
	require.NoError(t, err)
	var got []string
	for _, v := range vs {
		assert.Equal(t, RuleTxnParam, v.Rule)
		assert.Equal(t, "sota/resolver", v.Package)
		assert.Contains(t, v.Detail, "resolver/vehicles.go:")
		got = append(got, strings.Fields(v.Detail)[0])
	}
	assert.Equal(t, []string{"(Service).ApplyInstalled", "(Service).Cascade", "AfterCommit", "Batch"}, got)
	vs, err = CheckTxnParams(m, []Package{
		src("sota/api", "api/x.go", strings.Replace(domainSrc, "package resolver", "package api", 1)),
		src("sota/store", "store/x.go", "package store\n\ntype Txn interface{}\n\nfunc (d *DB) Update(fn func(Txn) error) error { return nil }\n"),
	})
	require.NoError(t, err)
	assert.Empty(t, vs, "the rule is about the domains' exported API")
	for _, d := range DomainPackages {
		vs, err := CheckTxnParams(m, []Package{src("sota/"+d, d+"/x.go", strings.Replace(domainSrc, "package resolver", "package "+d, 1))})
		require.NoError(t, err)
		assert.Lenf(t, vs, 4, "domain %s", d)
	}

	vs, err = CheckRoutes(m, []Package{src("sota/api", "api/routes.go", `package api

var Handlers = map[string]func(){}
var routes []string
var (
	DefaultLimits = 3
	x, Y          int
)

func init() { Handlers["/x"] = func() {} }
func (s *Server) init() {}
`)})
	require.NoError(t, err)
	got = nil
	for _, v := range vs {
		assert.Equal(t, RuleRoutes, v.Rule)
		got = append(got, strings.Fields(v.Detail)[0]+" "+strings.Fields(v.Detail)[1])
	}
	assert.Equal(t, []string{"exported variable", "exported variable", "exported variable", "func init"}, got)
	assert.Contains(t, vs[0].Detail, "Handlers")
	assert.Contains(t, vs[1].Detail, "DefaultLimits")
	assert.Contains(t, vs[2].Detail, "Y ")
	vs, err = CheckRoutes(m, []Package{src("sota/engine", "engine/x.go", "package engine\n\nvar Hooks []func()\n\nfunc init() {}\n")})
	require.NoError(t, err)
	assert.Empty(t, vs, "the rule is about api")
}
