package resolver

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"sota/dsl"
	"sota/errs"
	"sota/store"
)

// Filter is a saved filter expression under a name.
type Filter struct {
	Name       string `json:"name"`
	Expression string `json:"expression"`
}

// PackageFilter is one association of a filter with a package version.
type PackageFilter struct {
	PackageName    string `json:"packageName"`
	PackageVersion string `json:"packageVersion"`
	FilterName     string `json:"filterName"`
}

// programCache holds compiled filters by source text. A compiled program inlines the filters it
// references, so a change to a filter drops every program that references it. gen guards against
// storing a program compiled from texts read before such a change.
type programCache struct {
	mu    sync.Mutex
	progs map[string]*dsl.Program
	gen   uint64
}

func (c *programCache) get(src string) (*dsl.Program, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progs[src], c.gen
}

func (c *programCache) put(src string, p *dsl.Program, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.progs == nil || len(c.progs) > 10000 {
		c.progs = map[string]*dsl.Program{}
	}
	c.progs[src] = p
}

// invalidate drops the programs that reference the filter name (lower-cased).
func (c *programCache) invalidate(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for src, p := range c.progs {
		if slices.Contains(p.Refs(), name) {
			delete(c.progs, src)
		}
	}
}

// invalidateAll drops every program (another process changed filters this one cannot name).
func (c *programCache) invalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.progs)
}

// txnLookup resolves filter references from the store, in one transaction.
type txnLookup struct {
	t   store.Txn
	err error
}

func (l *txnLookup) LookupFilter(name string) (string, bool) {
	var f Filter
	found, err := getJSON(l.t, filterKey(name), &f)
	if err != nil {
		if l.err == nil {
			l.err = err
		}
		return "", false
	}
	return f.Expression, found
}

// FilterNames lists the saved filters' names, for the nearest-name suggestion of an unknown reference.
func (l *txnLookup) FilterNames() []string {
	var names []string
	err := iterateJSON(l.t, []byte(pFilter), func(f *Filter) error {
		names = append(names, f.Name)
		return nil
	})
	if err != nil && l.err == nil {
		l.err = err
	}
	return names
}

// LookupFilter returns the expression of the saved filter of that name (case-insensitive); it makes
// the Service a dsl.FilterLookup for validating expressions that reference saved filters.
func (s *Service) LookupFilter(name string) (string, bool) {
	var expr string
	var found bool
	s.db.View(func(t store.Txn) error {
		l := &txnLookup{t: t}
		expr, found = l.LookupFilter(name)
		return l.err
	})
	return expr, found
}

// compile compiles src with references resolved in t, from the cache when it can.
func (s *Service) compile(t store.Txn, src string) (*dsl.Program, error) {
	p, gen := s.programs.get(src)
	if p != nil {
		return p, nil
	}
	l := &txnLookup{t: t}
	p, err := dsl.Compile(src, l)
	if l.err != nil {
		return nil, l.err
	}
	if err != nil {
		return nil, errs.InvalidFilter(err)
	}
	s.programs.put(src, p, gen)
	return p, nil
}

// directRefs returns the lower-cased names a valid expression references itself (not through
// other filters), sorted.
func directRefs(expr string) []string {
	n, err := dsl.Parse(expr)
	if err != nil {
		return nil
	}
	return dsl.Refs(n)
}

// checkFilter validates expr as the expression of filter name, in t, by the one rule of
// dsl.ValidateFilter (the saved filters and itself under name, so that a cycle through it is found).
func checkFilter(t store.Txn, name, expr string) error {
	l := &txnLookup{t: t}
	_, err := dsl.ValidateFilter(name, expr, l)
	if l.err != nil {
		return l.err
	}
	if err != nil {
		return errs.InvalidFilter(err)
	}
	return nil
}

// ListFilters returns the page of filters whose name matches regex ("" = all), sorted by name
// (case-insensitively), and how many match in all.
func (s *Service) ListFilters(regex string, p Page) ([]Filter, int, error) {
	var re *regexp.Regexp
	if regex != "" {
		r, err := validRegex("regex", regex)
		if err != nil {
			return nil, 0, err
		}
		re = r
	}
	var all []Filter
	err := s.db.View(func(t store.Txn) error {
		return iterateJSON(t, []byte(pFilter), func(f *Filter) error {
			if re == nil || re.MatchString(f.Name) {
				all = append(all, *f)
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	return append([]Filter{}, pageOf(all, p)...), len(all), nil
}

// GetFilter returns one filter.
func (s *Service) GetFilter(name string) (Filter, error) {
	if err := ValidFilterName(name); err != nil {
		return Filter{}, err
	}
	var f Filter
	err := s.db.View(func(t store.Txn) (err error) {
		f, err = loadFilter(t, name)
		return err
	})
	return f, err
}

func loadFilter(t store.Txn, name string) (Filter, error) {
	var f Filter
	found, err := getJSON(t, filterKey(name), &f)
	if err == nil && !found {
		err = filterNotFound(name)
	}
	return f, err
}

// CreateFilter validates and saves a new filter; an existing name (case-insensitively) is a
// duplicate_entry conflict, an invalid expression is 406 invalid_filter.
func (s *Service) CreateFilter(name, expr string) (Filter, error) {
	if err := ValidFilterName(name); err != nil {
		return Filter{}, err
	}
	f := Filter{Name: name, Expression: expr}
	err := s.write(func(t store.Txn) error {
		var old Filter
		found, err := getJSON(t, filterKey(name), &old)
		if err != nil {
			return err
		}
		if found {
			return duplicate("Filter already exists: %s", old.Name)
		}
		if err := checkFilter(t, name, expr); err != nil {
			return err
		}
		return s.saveFilter(t, f, nil)
	})
	return f, err
}

// UpdateFilter replaces the expression of a filter. Packages associated with it, and filters that
// reference it, see the new expression. The filters that reference it (directly or through others)
// are checked with the new expression too: a change that would make any of them invalid (or push it
// past the expansion limit) is 406 invalid_filter naming that filter, and nothing changes.
func (s *Service) UpdateFilter(name, expr string) (Filter, error) {
	if err := ValidFilterName(name); err != nil {
		return Filter{}, err
	}
	var f Filter
	err := s.write(func(t store.Txn) error {
		old, err := loadFilter(t, name)
		if err != nil {
			return err
		}
		if err := checkFilter(t, name, expr); err != nil {
			return err
		}
		if err := checkReferrers(t, old.Name, expr); err != nil {
			return err
		}
		f = Filter{Name: old.Name, Expression: expr}
		return s.saveFilter(t, f, directRefs(old.Expression))
	})
	return f, err
}

// saveFilter writes f and its reference markers (dropping those of oldRefs) and drops cached
// programs that used it once committed.
func (s *Service) saveFilter(t store.Txn, f Filter, oldRefs []string) error {
	for _, r := range oldRefs {
		if err := t.Delete(filterRefKey(r, f.Name)); err != nil {
			return err
		}
	}
	for _, r := range directRefs(f.Expression) {
		if err := t.Set(filterRefKey(r, f.Name), nil); err != nil {
			return err
		}
	}
	if err := putJSON(t, filterKey(f.Name), f); err != nil {
		return err
	}
	name := lower(f.Name)
	return afterCommit(t, func() { s.programs.invalidate(name) })
}

// referrers returns the filters that reference name directly or through other filters, sorted by
// name.
func referrers(t store.Txn, name string) ([]Filter, error) {
	seen := map[string]bool{lower(name): true}
	var out []Filter
	queue := []string{lower(name)}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		var users []string
		err := t.IterateKeys(filterRefPrefix(cur), func(key []byte) error {
			users = append(users, splitKey(key, pFilterRef)[1])
			return nil
		})
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if seen[u] {
				continue
			}
			seen[u] = true
			f, err := loadFilter(t, u)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
			queue = append(queue, u)
		}
	}
	slices.SortFunc(out, func(a, b Filter) int { return strings.Compare(lower(a.Name), lower(b.Name)) })
	return out, nil
}

// checkReferrers compiles every filter that references name (directly or not) as it would read with
// name's expression replaced by expr: 406 invalid_filter naming the first that would fail.
func checkReferrers(t store.Txn, name, expr string) error {
	users, err := referrers(t, name)
	if err != nil {
		return err
	}
	for _, u := range users {
		l := &txnLookup{t: t}
		_, err := dsl.Compile(u.Expression, dsl.WithFilter(l, name, expr))
		if l.err != nil {
			return l.err
		}
		if err != nil {
			e := errs.InvalidFilter(err)
			e.Description = fmt.Sprintf("Filter failed validation: filter %s, which references %s, would become invalid: %s",
				u.Name, name, strings.TrimPrefix(e.Description, "Filter failed validation: "))
			return e
		}
	}
	return nil
}

// DeleteFilter removes a filter. A filter another filter references is a filter_in_use conflict. A
// filter associated with packages is a filter_in_use conflict naming them (deleting it would widen
// their audience) unless force is set; then its associations are deleted with it.
func (s *Service) DeleteFilter(name string, force bool) error {
	if err := ValidFilterName(name); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		f, err := loadFilter(t, name)
		if err != nil {
			return err
		}
		if !force {
			var linked []string
			err := t.IterateKeys(filterPkgPrefix(name), func(key []byte) error {
				parts := splitKey(key, pFilterPkg) // filter, name, version
				linked = append(linked, parts[1]+"/"+parts[2])
				return nil
			})
			if err != nil {
				return err
			}
			if len(linked) > 0 {
				var ids []string
				var pkgs []PackageID
				for _, l := range linked {
					n, v, _ := strings.Cut(l, "/")
					p, err := s.loadPackage(t, PackageID{Name: n, Version: v})
					if err != nil {
						return err
					}
					ids = append(ids, p.ID.String())
					pkgs = append(pkgs, p.ID)
				}
				return errs.New(errs.Conflict, "filter_in_use",
					"Filter %s is associated with package %s; deleting it would widen their audience (delete it with ?force=true to remove the associations too)",
					f.Name, strings.Join(ids, ", ")).With("packages", pkgs)
			}
		}
		var users []string
		err = t.IterateKeys(filterRefPrefix(name), func(key []byte) error {
			parts := splitKey(key, pFilterRef)
			users = append(users, parts[1])
			return nil
		})
		if err != nil {
			return err
		}
		if len(users) > 0 {
			var names []string
			for _, u := range users {
				uf, err := loadFilter(t, u)
				if err != nil {
					return err
				}
				names = append(names, uf.Name)
			}
			return errs.New(errs.Conflict, "filter_in_use", "Filter %s is referenced by filter %s", f.Name, strings.Join(names, ", "))
		}
		if err := deletePrefix(t, filterPkgPrefix(name), func(key []byte) error {
			parts := splitKey(key, pFilterPkg) // filter, name, version
			return t.Delete(pkgFilterKey(PackageID{Name: parts[1], Version: parts[2]}, name))
		}); err != nil {
			return err
		}
		for _, r := range directRefs(f.Expression) {
			if err := t.Delete(filterRefKey(r, f.Name)); err != nil {
				return err
			}
		}
		if err := t.Delete(filterKey(name)); err != nil {
			return err
		}
		lname := lower(name)
		return afterCommit(t, func() { s.programs.invalidate(lname) })
	})
}

// FilterPackages returns the packages associated with a filter, sorted.
func (s *Service) FilterPackages(name string) ([]Package, error) {
	if err := ValidFilterName(name); err != nil {
		return nil, err
	}
	out := []Package{}
	err := s.db.View(func(t store.Txn) error {
		if _, err := loadFilter(t, name); err != nil {
			return err
		}
		return t.IterateKeys(filterPkgPrefix(name), func(key []byte) error {
			parts := splitKey(key, pFilterPkg)
			pkg, err := s.loadPackage(t, PackageID{Name: parts[1], Version: parts[2]})
			if err != nil {
				return err
			}
			out = append(out, pkg)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Package) int { return comparePackageIDs(a.ID, b.ID) })
	return out, err
}

// PackageFilters returns the filters associated with a package, sorted by name.
func (s *Service) PackageFilters(id PackageID) ([]Filter, error) {
	if err := ValidPackageID(id); err != nil {
		return nil, err
	}
	out := []Filter{}
	err := s.db.View(func(t store.Txn) error {
		if _, err := s.loadPackage(t, id); err != nil {
			return err
		}
		fs, err := packageFilters(t, id)
		out = append(out, fs...)
		return err
	})
	return out, err
}

func packageFilters(t store.Txn, id PackageID) ([]Filter, error) {
	var out []Filter
	err := t.IterateKeys(pkgFilterPrefix(id), func(key []byte) error {
		parts := splitKey(key, pPkgFilter)
		f, err := loadFilter(t, parts[len(parts)-1])
		if err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// Associations returns every filter–package association, sorted by package then filter.
func (s *Service) Associations() ([]PackageFilter, error) {
	out := []PackageFilter{}
	err := s.db.View(func(t store.Txn) error {
		return iterateJSON(t, []byte(pPkgFilter), func(a *PackageFilter) error {
			out = append(out, *a)
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b PackageFilter) int {
		return comparePackageIDs(PackageID{Name: a.PackageName, Version: a.PackageVersion}, PackageID{Name: b.PackageName, Version: b.PackageVersion})
	})
	return out, err
}

// Associate applies a filter to a package: a vehicle gets the package only when it passes every
// filter associated with it.
func (s *Service) Associate(id PackageID, filter string) (PackageFilter, error) {
	if err := ValidPackageID(id); err != nil {
		return PackageFilter{}, err
	}
	if err := ValidFilterName(filter); err != nil {
		return PackageFilter{}, err
	}
	var a PackageFilter
	err := s.write(func(t store.Txn) error {
		pkg, err := s.loadPackage(t, id)
		if err != nil {
			return err
		}
		f, err := loadFilter(t, filter)
		if err != nil {
			return err
		}
		if ok, err := t.Has(pkgFilterKey(pkg.ID, f.Name)); err != nil || ok {
			if ok {
				return duplicate("Filter/Package association already exists: %s and %s", f.Name, pkg.ID)
			}
			return err
		}
		a = PackageFilter{PackageName: pkg.ID.Name, PackageVersion: pkg.ID.Version, FilterName: f.Name}
		if err := putJSON(t, pkgFilterKey(pkg.ID, f.Name), a); err != nil {
			return err
		}
		return t.Set(filterPkgKey(f.Name, pkg.ID), nil)
	})
	return a, err
}

// Dissociate removes a filter from a package (filter_not_found when they are not associated).
func (s *Service) Dissociate(id PackageID, filter string) error {
	if err := ValidPackageID(id); err != nil {
		return err
	}
	if err := ValidFilterName(filter); err != nil {
		return err
	}
	return s.write(func(t store.Txn) error {
		pkg, err := s.loadPackage(t, id)
		if err != nil {
			return err
		}
		ok, err := t.Has(pkgFilterKey(pkg.ID, filter))
		if err != nil {
			return err
		}
		if !ok {
			return errs.New(errs.NotFound, "filter_not_found", "Filter label does not exist for this package: %s is not associated with %s", filter, pkg.ID)
		}
		if err := t.Delete(pkgFilterKey(pkg.ID, filter)); err != nil {
			return err
		}
		return t.Delete(filterPkgKey(filter, pkg.ID))
	})
}

// Explain evaluates a filter expression (which may reference saved filters) for one vehicle and
// returns the value of every node.
func (s *Service) Explain(expr, vin string) (bool, *dsl.Explanation, error) {
	if err := ValidVIN(vin); err != nil {
		return false, nil, err
	}
	var p *dsl.Program
	err := s.db.View(func(t store.Txn) (err error) {
		p, err = s.compile(t, expr)
		return err
	})
	if err != nil {
		return false, nil, err
	}
	v, ok := s.index.Get(vin)
	if !ok {
		return false, nil, missingVehicle(vin)
	}
	v.Now = s.index.Now()
	e := p.Explain(&v)
	return e.Value, e, nil
}
