package engine

// The checks made before anything is queued (API.md "Safety rules before anything is queued"): every
// package of every install list must have a binary, a validity period must not be over, and dry
// runs and previews report what would stand in the way of a delivery as problems.

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
)

// Error codes of the safety rules.
const (
	CodeMissingBinary          = "missing_binary"
	CodeUnresolvedDependencies = "unresolved_dependencies"
	CodeExceedsDataPlan        = "exceeds_data_plan"
	CodeDormant                = "dormant"
	CodeCampaignEnded          = "campaign_ended"
)

// DormantAfter is how long a target vehicle may go unseen before a preview reports it as dormant.
const DormantAfter = 30 * 24 * time.Hour

// maxProblemSample caps the VINs a problem lists.
const maxProblemSample = 10

// maxReasons caps the unresolved_dependencies entries (one per reason) a dry run lists.
const maxReasons = 20

// Problem is one thing a dry run or preview found that stands in the way of delivering to some
// target vehicles.
type Problem struct {
	Code        string               `json:"code"`
	Description string               `json:"description"`
	Vehicles    int                  `json:"vehicles"`
	Sample      []string             `json:"sample,omitempty"`
	Packages    []resolver.PackageID `json:"packages,omitempty"`
}

// DryRun is the resolver's dry-run answer with the problems the engine sees.
type DryRun struct {
	resolver.DryRunResult
	Problems []Problem `json:"problems"`
}

// installPackages returns the distinct packages of the targets' install lists (lists shared between
// vehicles are looked at once).
func installPackages(targets []resolver.Target) []resolver.PackageID {
	seenList := map[*resolver.PackageID]bool{}
	seen := map[string]resolver.PackageID{}
	for _, tg := range targets {
		if len(tg.Install) == 0 {
			continue
		}
		if seenList[&tg.Install[0]] {
			continue
		}
		seenList[&tg.Install[0]] = true
		for _, p := range tg.Install {
			seen[pkgPart(p)] = p
		}
	}
	out := make([]resolver.PackageID, 0, len(seen))
	for _, k := range sortedKeys(seen) {
		out = append(out, seen[k])
	}
	return out
}

// missingBinaries returns the packages among ids that have no binary, in the order given.
func (s *Service) missingBinaries(ids []resolver.PackageID) ([]resolver.PackageID, error) {
	var out []resolver.PackageID
	err := s.db.View(func(t store.Txn) error {
		for _, id := range ids {
			_, ok, err := s.binary(t, id)
			if err != nil {
				return err
			}
			if !ok {
				out = append(out, id)
			}
		}
		return nil
	})
	return out, err
}

func pkgList(ids []resolver.PackageID) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id.String()
	}
	return strings.Join(names, ", ")
}

// checkBinaries is the missing_binary rule: 409 naming every package of the targets' install lists
// that has no binary.
func (s *Service) checkBinaries(targets []resolver.Target) error {
	missing, err := s.missingBinaries(installPackages(targets))
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return errs.New(errs.Conflict, CodeMissingBinary,
			"No binary has been uploaded for %s; upload it before queuing (nothing was queued)", pkgList(missing)).
			With("packages", missing)
	}
	return nil
}

// errPeriodOver is the 400 of a validity period that has already ended.
func errPeriodOver(until time.Time) error {
	return errs.InvalidEntity("period of validity has already ended (%s)", until.Format(time.RFC3339))
}

// DefaultDryRunProblemVehicles is Options.DryRunProblemVehicles when none is given.
const DefaultDryRunProblemVehicles = 50_000

// CodeNotChecked is the problem entry of a dry run too large for the per-vehicle checks.
const CodeNotChecked = "not_checked"

// DryRun is the resolver's dry run (POST /resolve/dry-run) with the problems a queue of the package
// would meet: install-list packages without a binary, unresolved dependencies grouped by reason,
// vehicles whose data plan has no room for the payload, and dormant vehicles.
func (s *Service) DryRun(ctx context.Context, req resolver.DryRunRequest) (DryRun, error) {
	res, err := s.res.DryRun(ctx, req)
	if err != nil {
		return DryRun{}, err
	}
	if res.Matched > s.opt.DryRunProblemVehicles {
		probs := []Problem{}
		for i, g := range res.UnresolvedByReason {
			if i == maxReasons {
				break
			}
			probs = append(probs, Problem{Code: CodeUnresolvedDependencies, Vehicles: g.Vehicles, Sample: g.Sample,
				Description: fmt.Sprintf("%d vehicles cannot be resolved: %s", g.Vehicles, g.Reason)})
		}
		probs = append(probs, Problem{Code: CodeNotChecked, Vehicles: res.Matched - res.UnresolvedCount,
			Description: fmt.Sprintf("missing binaries, data plans and dormant vehicles are checked in dry runs of up to %d vehicles; the campaign preview and the queue check them always", s.opt.DryRunProblemVehicles)})
		return DryRun{DryRunResult: res, Problems: probs}, nil
	}
	sols, err := s.res.Solutions(ctx, *req.Package, req.Expression)
	if err != nil {
		return DryRun{}, err
	}
	probs, err := s.problems(sols, nil)
	if err != nil {
		return DryRun{}, err
	}
	return DryRun{DryRunResult: res, Problems: probs}, nil
}

// problems looks at the solutions of a package (sorted by VIN) and reports, for the vehicles that
// would be queued (keep nil: every matched vehicle not already installed), what stands in the way.
func (s *Service) problems(sols []resolver.Solution, keep func(vin string) bool) ([]Problem, error) {
	out := []Problem{}
	var targets []resolver.Target
	type reason struct {
		n      int
		sample []string
	}
	reasons := map[string]*reason{}
	for _, sol := range sols {
		if sol.AlreadyInstalled || (keep != nil && !keep(sol.VIN)) {
			continue
		}
		if sol.Err != nil {
			r := reasons[sol.Err.Error()]
			if r == nil {
				r = &reason{}
				reasons[sol.Err.Error()] = r
			}
			r.n++
			if len(r.sample) < maxProblemSample {
				r.sample = append(r.sample, sol.VIN)
			}
			continue
		}
		targets = append(targets, resolver.Target{VIN: sol.VIN, Install: sol.Install})
	}

	// missing_binary
	missing, err := s.missingBinaries(installPackages(targets))
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		bad := map[string]bool{}
		for _, m := range missing {
			bad[pkgPart(m)] = true
		}
		p := Problem{Code: CodeMissingBinary, Packages: missing}
		for _, tg := range targets {
			for _, id := range tg.Install {
				if bad[pkgPart(id)] {
					p.Vehicles++
					if len(p.Sample) < maxProblemSample {
						p.Sample = append(p.Sample, tg.VIN)
					}
					break
				}
			}
		}
		p.Description = fmt.Sprintf("%d vehicles would install %s, which has no binary: queuing is refused until it is uploaded", p.Vehicles, pkgList(missing))
		out = append(out, p)
	}

	// unresolved_dependencies, one entry per reason, most vehicles first
	keys := sortedKeys(reasons)
	sort.SliceStable(keys, func(i, j int) bool { return reasons[keys[i]].n > reasons[keys[j]].n })
	for i, k := range keys {
		if i == maxReasons {
			rest := 0
			for _, k := range keys[i:] {
				rest += reasons[k].n
			}
			out = append(out, Problem{Code: CodeUnresolvedDependencies, Vehicles: rest,
				Description: fmt.Sprintf("… and %d more reasons", len(keys)-i)})
			break
		}
		r := reasons[k]
		out = append(out, Problem{Code: CodeUnresolvedDependencies, Vehicles: r.n, Sample: r.sample,
			Description: fmt.Sprintf("%d vehicles cannot be resolved: %s", r.n, k)})
	}

	// exceeds_data_plan and dormant
	more, err := s.fleetProblems(targets)
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

// fleetProblems reports the targets whose data plan's active billing cycle has less room than their
// payload (they wait for a cycle with room), and those not seen for DormantAfter.
func (s *Service) fleetProblems(targets []resolver.Target) ([]Problem, error) {
	now := s.now()
	find := func(vin string) (resolver.Target, bool) {
		i := sort.Search(len(targets), func(i int) bool { return targets[i].VIN >= vin })
		if i < len(targets) && targets[i].VIN == vin {
			return targets[i], true
		}
		return resolver.Target{}, false
	}
	var out []Problem
	plan := Problem{Code: CodeExceedsDataPlan}
	err := s.db.View(func(t store.Txn) error {
		var vins []string
		err := t.IterateKeys([]byte(pVPlan), func(k []byte) error {
			vins = append(vins, string(k[len(pVPlan):]))
			return nil
		})
		if err != nil {
			return err
		}
		for _, vin := range vins {
			tg, ok := find(vin)
			if !ok {
				continue
			}
			remaining, limited, err := s.remainingBytes(t, vin, now)
			if err != nil || !limited {
				return err
			}
			size, err := s.installSize(t, tg.Install)
			if err != nil {
				return err
			}
			if size > remaining {
				plan.Vehicles++
				if len(plan.Sample) < maxProblemSample {
					plan.Sample = append(plan.Sample, vin)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if plan.Vehicles > 0 {
		plan.Description = fmt.Sprintf("%d vehicles have less room left in their data plan's billing cycle than the update's size; they wait for a cycle with room", plan.Vehicles)
		out = append(out, plan)
	}
	vins := make([]string, len(targets))
	for i, tg := range targets {
		vins[i] = tg.VIN
	}
	n, sample, err := s.notSeenSince(vins, now.Add(-DormantAfter), maxProblemSample)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		out = append(out, Problem{Code: CodeDormant, Vehicles: n, Sample: sample,
			Description: fmt.Sprintf("%d target vehicles have not been seen for %d days; they are woken up but may not answer", n, int(DormantAfter.Hours()/24))})
	}
	return out, nil
}
