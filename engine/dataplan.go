package engine

import (
	"errors"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"sota/errs"
	"sota/store"
)

// DataPlan is a named pool of billing cycles that vehicles are attached to.
type DataPlan struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
}

// BillingCycle is a period of a data plan starting at Start and lasting until the next cycle's start,
// with a byte pool and the bytes used so far.
type BillingCycle struct {
	Start     time.Time `json:"start"`
	PoolBytes int64     `json:"poolBytes"`
	UsedBytes int64     `json:"usedBytes"`
}

// Traffic answers PLAN_ADD_TRAFFIC; every field is nil when the vehicle has no data plan, and the
// cycle fields are nil when the plan has no cycle active at that time.
type Traffic struct {
	DataPlan   *string    `json:"dataPlan"`
	CycleStart *time.Time `json:"cycleStart"`
	PoolBytes  *int64     `json:"poolBytes"`
	UsedBytes  *int64     `json:"usedBytes"`
}

var planIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

func errMissingPlan() error {
	return errs.New(errs.NotFound, "missing_data_plan", "Data plan does not exist")
}

// ValidPlanID reports whether id is 1-100 letters, digits, '.', '_' or '-'.
func ValidPlanID(id string) bool { return planIDRe.MatchString(id) }

func checkPlanID(id string) error {
	if !ValidPlanID(id) {
		return errs.InvalidEntity("Invalid data plan id %q: 1-100 letters, digits, '.', '_' or '-'", id)
	}
	return nil
}

// AddDataPlan is PLAN_ADD: 409 duplicate_entry when a plan with that id (in any case) exists.
func (s *Service) AddDataPlan(id string) (DataPlan, error) {
	if err := checkPlanID(id); err != nil {
		return DataPlan{}, err
	}
	p := DataPlan{ID: id, CreatedAt: s.now()}
	err := s.update(func(t store.Txn) error {
		ok, err := t.Has(planKey(id))
		if err != nil {
			return err
		}
		if ok {
			return errs.New(errs.Conflict, "duplicate_entry", "Data plan already exists")
		}
		return t.Set(planKey(id), encode(&p))
	})
	return p, err
}

func (s *Service) plan(t store.Txn, id string) (DataPlan, error) {
	if !ValidPlanID(id) {
		return DataPlan{}, errMissingPlan()
	}
	v, err := t.Get(planKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return DataPlan{}, errMissingPlan()
	}
	if err != nil {
		return DataPlan{}, err
	}
	var p DataPlan
	return p, decode(v, &p)
}

// DataPlan returns one plan: 404 missing_data_plan.
func (s *Service) DataPlan(id string) (p DataPlan, err error) {
	err = s.db.View(func(t store.Txn) error {
		p, err = s.plan(t, id)
		return err
	})
	return p, err
}

// DataPlans is PLAN_SEARCH: the plans whose id matches the regular expression (all when empty),
// sorted by id.
func (s *Service) DataPlans(regex string) ([]DataPlan, error) {
	var re *regexp.Regexp
	if regex != "" {
		var err error
		if re, err = regexp.Compile(regex); err != nil {
			return nil, errs.InvalidEntity("Invalid regular expression: %v", err)
		}
	}
	out := []DataPlan{}
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pPlan), func(_, v []byte) error {
			var p DataPlan
			if err := decode(v, &p); err != nil {
				return err
			}
			if re == nil || re.MatchString(p.ID) {
				out = append(out, p)
			}
			return nil
		})
	})
	return out, err
}

// AddBillingCycle is PLAN_ADD_BILLING_CYCLE: a cycle with zero bytes used. 404 missing_data_plan;
// 400 for a negative pool or a zero start; 409 duplicate_entry for a second cycle with the same start.
func (s *Service) AddBillingCycle(planID string, start time.Time, pool int64) (BillingCycle, error) {
	if start.IsZero() {
		return BillingCycle{}, errs.InvalidEntity("start is required (RFC 3339 date and time)")
	}
	if pool < 0 {
		return BillingCycle{}, errs.InvalidEntity("poolBytes must not be negative")
	}
	c := BillingCycle{Start: start.UTC(), PoolBytes: pool}
	err := s.update(func(t store.Txn) error {
		if _, err := s.plan(t, planID); err != nil {
			return err
		}
		ok, err := t.Has(cycleKey(planID, c.Start))
		if err != nil {
			return err
		}
		if ok {
			return errs.New(errs.Conflict, "duplicate_entry", "Billing cycle with this start already exists")
		}
		return t.Set(cycleKey(planID, c.Start), encode(&c))
	})
	return c, err
}

// BillingCycles is PLAN_GET_BILLING_CYCLES: the plan's cycles starting within [from, to] (zero times
// leave that side open), oldest first. 404 missing_data_plan.
func (s *Service) BillingCycles(planID string, from, to time.Time) ([]BillingCycle, error) {
	out := []BillingCycle{}
	err := s.db.View(func(t store.Txn) error {
		if _, err := s.plan(t, planID); err != nil {
			return err
		}
		cs, err := s.cycles(t, planID)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if (!from.IsZero() && c.Start.Before(from)) || (!to.IsZero() && c.Start.After(to)) {
				continue
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

func (s *Service) cycles(t store.Txn, planID string) ([]BillingCycle, error) {
	var cs []BillingCycle
	err := t.Iterate(cyclePrefix(planID), func(_, v []byte) error {
		var c BillingCycle
		if err := decode(v, &c); err != nil {
			return err
		}
		cs = append(cs, c)
		return nil
	})
	sort.Slice(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
	return cs, err
}

// activeCycle is the plan's cycle with the latest start not after now.
func (s *Service) activeCycle(t store.Txn, planID string, now time.Time) (BillingCycle, bool, error) {
	cs, err := s.cycles(t, planID)
	if err != nil {
		return BillingCycle{}, false, err
	}
	for i := len(cs) - 1; i >= 0; i-- {
		if !cs[i].Start.After(now) {
			return cs[i], true, nil
		}
	}
	return BillingCycle{}, false, nil
}

// vehiclePlan returns the vehicle's plan id, "" when none.
func (s *Service) vehiclePlan(t store.Txn, vin string) (string, error) {
	v, err := t.Get(vplanKey(vin))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// remainingBytes is what the active billing cycle of the vehicle's plan has left; limited is false
// when the vehicle has no plan or the plan no active cycle.
func (s *Service) remainingBytes(t store.Txn, vin string, now time.Time) (int64, bool, error) {
	pid, err := s.vehiclePlan(t, vin)
	if err != nil || pid == "" {
		return 0, false, err
	}
	c, ok, err := s.activeCycle(t, pid, now)
	if err != nil || !ok {
		return 0, false, err
	}
	return max(c.PoolBytes-c.UsedBytes, 0), true, nil
}

// setVehiclePlan links the vehicle to the plan in the caller's transaction (the vehicle is checked by
// the caller). 404 missing_data_plan.
func (s *Service) setVehiclePlan(t store.Txn, vin, planID string) (DataPlan, error) {
	p, err := s.plan(t, planID)
	if err != nil {
		return p, err
	}
	return p, t.Set(vplanKey(vin), []byte(p.ID))
}

// addTraffic adds bytes to the active cycle of the vehicle's plan in the caller's transaction.
func (s *Service) addTraffic(t store.Txn, vin string, bytes int64, now time.Time) (Traffic, error) {
	var out Traffic
	if bytes < 0 {
		return out, errs.InvalidEntity("bytes must not be negative")
	}
	pid, err := s.vehiclePlan(t, vin)
	if err != nil || pid == "" {
		return out, err
	}
	p, err := s.plan(t, pid)
	if errs.Is(err, "missing_data_plan") {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.DataPlan = &p.ID
	c, ok, err := s.activeCycle(t, pid, now)
	if err != nil || !ok {
		return out, err
	}
	if c.UsedBytes > math.MaxInt64-bytes {
		return out, errs.New(errs.Conflict, "traffic_overflow",
			"Adding %d bytes would overflow the billing cycle's used bytes (%d)", bytes, c.UsedBytes)
	}
	c.UsedBytes += bytes
	if err := t.Set(cycleKey(pid, c.Start), encode(&c)); err != nil {
		return out, err
	}
	out.CycleStart, out.PoolBytes, out.UsedBytes = &c.Start, &c.PoolBytes, &c.UsedBytes
	return out, nil
}

// ParseTime reads an RFC 3339 date and time; field names the input in the error.
func ParseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, errs.InvalidEntity("%s must be an RFC 3339 date and time (2024-01-31T12:00:00Z), not %q", field, s)
	}
	return t.UTC(), nil
}
