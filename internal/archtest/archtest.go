// Package archtest checks the architecture rules of ARCHITECTURE.md "Layout" on the packages of the
// module: which package may import which, that no domain hands another a raw store transaction, and
// that the HTTP layer registers its routes in one place. Its tests run the checks on the real tree
// (through `go list`) and on synthetic packages that break each rule, so that every rule is shown to
// fail when broken. Only the non-test imports and files of a package count: a test may start the
// whole server.
package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Package is what the rules read of one package of the module.
type Package struct {
	Path    string            // import path, e.g. sota/api
	Imports []string          // the imports of its non-test files
	Files   map[string][]byte // its non-test Go files by name (read by the source rules only)
}

// Violation is one broken rule.
type Violation struct {
	Rule    string // the rule's short name (see the Rule* constants)
	Package string
	Detail  string
}

func (v Violation) String() string { return v.Package + ": " + v.Detail + " [" + v.Rule + "]" }

// The rules.
const (
	// RuleLayers: dependencies point down the layers (commands → api, client, examples → domains →
	// dsl, wire, store, errs, web); packages of one upper layer do not import each other.
	RuleLayers = "layers"
	// RuleLeaf: dsl, wire, store (and the other base packages) import nothing of the module.
	RuleLeaf = "leaf"
	// RuleAPIStore: api builds on the domain services, never on the store.
	RuleAPIStore = "api-store"
	// RuleClient: the device client imports wire and nothing else of the module.
	RuleClient = "client"
	// RuleTxnParam: no exported function or method of a domain takes a store.Txn (a domain's
	// transaction stays inside it; domains offer typed operations instead).
	RuleTxnParam = "txn-param"
	// RuleRoutes: api registers its routes in its route table only: no init functions and no exported
	// package-level variables (no registrars, no mutable handlers).
	RuleRoutes = "routes"
)

type layer int

const (
	layerBase    layer = iota // import nothing of the module
	layerSupport              // internal/...: build info, budgets, test helpers
	layerDomain               // the domains, and any package the table does not know
	layerEdge                 // transports and tools over the domains
	layerCommand              // the binaries
)

var layerNames = map[layer]string{layerBase: "base", layerSupport: "support", layerDomain: "domain", layerEdge: "edge", layerCommand: "command"}

// components maps the first directory of a package to its layer (ARCHITECTURE.md "Layout").
var components = map[string]layer{
	"dsl": layerBase, "wire": layerBase, "store": layerBase, "errs": layerBase, "web": layerBase,
	"internal": layerSupport,
	"resolver": layerDomain, "engine": layerDomain, "auth": layerDomain, "signing": layerDomain, "policy": layerDomain,
	"api": layerEdge, "client": layerEdge, "examples": layerEdge,
	"cmd": layerCommand,
}

// DomainPackages are the components whose exported API RuleTxnParam checks.
var DomainPackages = []string{"resolver", "engine", "auth", "signing", "policy"}

// component is the part of a package path that is one unit: "store" for sota/store/pg, "cmd/sota",
// "internal/budget".
func component(module, path string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
	parts := strings.Split(rel, "/")
	if (parts[0] == "cmd" || parts[0] == "internal") && len(parts) > 1 {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

func layerOf(module, path string) layer {
	top := strings.Split(strings.TrimPrefix(strings.TrimPrefix(path, module), "/"), "/")[0]
	if l, ok := components[top]; ok {
		return l
	}
	return layerDomain
}

func ours(module, path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// CheckImports applies the import rules (RuleLayers, RuleLeaf, RuleAPIStore, RuleClient) to pkgs, the
// packages of module.
func CheckImports(module string, pkgs []Package) []Violation {
	var out []Violation
	add := func(rule string, p Package, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Package: p.Path, Detail: fmt.Sprintf(format, args...)})
	}
	for _, p := range pkgs {
		if !ours(module, p.Path) {
			continue
		}
		from, fromL := component(module, p.Path), layerOf(module, p.Path)
		for _, imp := range p.Imports {
			if !ours(module, imp) {
				continue
			}
			to, toL := component(module, imp), layerOf(module, imp)
			if to == from {
				continue // a component's own subpackages (store/pg imports store)
			}
			switch {
			case from == "client" && to != "wire":
				add(RuleClient, p, "imports %s: the device client knows the server only through the device protocol (sota/wire)", imp)
			case from == "api" && to == "store":
				add(RuleAPIStore, p, "imports %s: the HTTP layer calls the domain services it is given, never the store", imp)
			case fromL == layerBase:
				add(RuleLeaf, p, "imports %s: %s is a base package and imports nothing of %s", imp, from, module)
			case toL > fromL:
				add(RuleLayers, p, "imports %s: a %s package may not import a %s package (dependencies point down the layers)", imp, layerNames[fromL], layerNames[toL])
			case toL == fromL && fromL >= layerEdge:
				add(RuleLayers, p, "imports %s: %s packages do not import each other", imp, layerNames[fromL])
			}
		}
	}
	return out
}

// parseFiles parses a package's non-test files in name order.
func parseFiles(fset *token.FileSet, p Package) ([]*ast.File, error) {
	names := make([]string, 0, len(p.Files))
	for n := range p.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	var files []*ast.File
	for _, n := range names {
		f, err := parser.ParseFile(fset, n, p.Files[n], parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// importNames are the names under which f imports path (none when it does not; a blank or dot import
// names nothing).
func importNames(f *ast.File, path string) []string {
	var names []string
	for _, is := range f.Imports {
		if strings.Trim(is.Path.Value, `"`) != path {
			continue
		}
		switch {
		case is.Name == nil:
			names = append(names, path[strings.LastIndex(path, "/")+1:])
		case is.Name.Name != "_" && is.Name.Name != ".":
			names = append(names, is.Name.Name)
		}
	}
	return names
}

// mentions tells whether the type expression e names pkg.sel anywhere (a parameter of type store.Txn,
// *store.Txn, []store.Txn or func(store.Txn) error).
func mentions(e ast.Expr, pkg, sel string) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := s.X.(*ast.Ident); ok && id.Name == pkg && s.Sel.Name == sel {
				found = true
			}
		}
		return !found
	})
	return found
}

// receiverType is the name of a method's receiver type ("" for a function).
func receiverType(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return ""
	}
	t := fd.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr: // generic receiver T[P]
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// CheckTxnParams applies RuleTxnParam: an exported function, or an exported method of an exported
// type, of a domain package whose parameters name store.Txn.
func CheckTxnParams(module string, pkgs []Package) ([]Violation, error) {
	storePath := module + "/store"
	var out []Violation
	for _, p := range pkgs {
		if !isDomain(module, p.Path) {
			continue
		}
		fset := token.NewFileSet()
		files, err := parseFiles(fset, p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Path, err)
		}
		for _, f := range files {
			names := importNames(f, storePath)
			if len(names) == 0 {
				continue
			}
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || !fd.Name.IsExported() {
					continue
				}
				recv := receiverType(fd)
				if fd.Recv != nil && !ast.IsExported(recv) {
					continue
				}
			params:
				for _, field := range fd.Type.Params.List {
					for _, name := range names {
						if mentions(field.Type, name, "Txn") {
							fn := fd.Name.Name
							if recv != "" {
								fn = "(" + recv + ")." + fn
							}
							out = append(out, Violation{Rule: RuleTxnParam, Package: p.Path,
								Detail: fmt.Sprintf("%s (%s) takes a %s.Txn: a domain's transaction stays inside it; offer a typed operation instead", fn, fset.Position(fd.Pos()), name)})
							break params
						}
					}
				}
			}
		}
	}
	return out, nil
}

func isDomain(module, path string) bool {
	for _, d := range DomainPackages {
		if path == module+"/"+d || strings.HasPrefix(path, module+"/"+d+"/") {
			return true
		}
	}
	return false
}

// CheckRoutes applies RuleRoutes to the api package (module/api and its subpackages).
func CheckRoutes(module string, pkgs []Package) ([]Violation, error) {
	var out []Violation
	for _, p := range pkgs {
		if component(module, p.Path) != "api" {
			continue
		}
		fset := token.NewFileSet()
		files, err := parseFiles(fset, p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Path, err)
		}
		for _, f := range files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil && d.Name.Name == "init" {
						out = append(out, Violation{Rule: RuleRoutes, Package: p.Path,
							Detail: fmt.Sprintf("func init (%s): routes and handlers are set up by New from the route table, not at package load", fset.Position(d.Pos()))})
					}
				case *ast.GenDecl:
					if d.Tok != token.VAR {
						continue
					}
					for _, s := range d.Specs {
						for _, n := range s.(*ast.ValueSpec).Names {
							if n.IsExported() {
								out = append(out, Violation{Rule: RuleRoutes, Package: p.Path,
									Detail: fmt.Sprintf("exported variable %s (%s): the package holds no exported mutable state (a handler or setting others could swap)", n.Name, fset.Position(n.Pos()))})
							}
						}
					}
				}
			}
		}
	}
	return out, nil
}

// Load lists the packages of the module in dir with `go list` and reads their non-test Go files. It
// returns the module path.
func Load(dir string) (string, []Package, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(goBin, "list", "-json", "./...")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return "", nil, fmt.Errorf("go list: %w: %s", err, stderr.String())
	}
	var module string
	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(stdout))
	for {
		var lp struct {
			ImportPath, Dir  string
			GoFiles, Imports []string
			Module           *struct{ Path string }
			Error            *struct{ Err string }
		}
		if err := dec.Decode(&lp); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", nil, err
		}
		if lp.Error != nil {
			return "", nil, fmt.Errorf("go list %s: %s", lp.ImportPath, lp.Error.Err)
		}
		if lp.Module != nil {
			module = lp.Module.Path
		}
		p := Package{Path: lp.ImportPath, Imports: lp.Imports, Files: map[string][]byte{}}
		for _, n := range lp.GoFiles {
			b, err := os.ReadFile(filepath.Join(lp.Dir, n))
			if err != nil {
				return "", nil, err
			}
			p.Files[filepath.Join(lp.Dir, n)] = b
		}
		pkgs = append(pkgs, p)
	}
	if module == "" {
		return "", nil, errors.New("go list: no module")
	}
	return module, pkgs, nil
}
