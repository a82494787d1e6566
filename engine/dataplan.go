package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
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
		used := map[string]int64{} // timeKey(start) -> bytes of the usage rows
		pfx := []byte(pUsage + strings.ToLower(planID) + "/")
		err = t.Iterate(pfx, func(k, v []byte) error {
			start, _, _ := strings.Cut(string(k[len(pfx):]), "/")
			used[start] = addSaturating(used[start], decodeUsage(v))
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range cs {
			c.UsedBytes = addSaturating(c.UsedBytes, used[timeKey(c.Start)])
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

// Billing-cycle usage is split into usageShards rows per cycle,
//
//	core/usage/<planID>/<start>/<shard>        bytes counted (8 bytes big endian)
//
// a vehicle's traffic going to the row of its VIN's shard (FNV-1a), so that concurrent transfers of
// the vehicles of one plan write different rows instead of all writing the cycle record (which
// serialised them, or made them conflict across replicas). A cycle's used bytes are its record's
// UsedBytes (traffic counted before the split) plus its usage rows, summed on read. Every transaction
// that adds traffic writes one row, so every acknowledged byte is counted once; a read (a billing
// cycle list, the room left that decides whether an update is delivered) sums the rows as one
// snapshot of the store has them, that is every byte whose transaction committed before it.
const usageShards = 32

const pUsage = "core/usage/"

func usagePrefix(planID string, start time.Time) []byte {
	return []byte(pUsage + strings.ToLower(planID) + "/" + timeKey(start) + "/")
}

func usageKey(planID string, start time.Time, vin string) []byte {
	h := fnv.New32a()
	h.Write([]byte(vin))
	return fmt.Appendf(usagePrefix(planID, start), "%02x", h.Sum32()%usageShards)
}

func decodeUsage(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func encodeUsage(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// addSaturating is a+b for non-negative counts, at most math.MaxInt64.
func addSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// cycleUsed is the cycle's used bytes: its record's and its usage rows'.
func (s *Service) cycleUsed(t store.Txn, planID string, c BillingCycle) (int64, error) {
	used := c.UsedBytes
	err := t.Iterate(usagePrefix(planID, c.Start), func(_, v []byte) error {
		used = addSaturating(used, decodeUsage(v))
		return nil
	})
	return used, err
}

// activeCycle is the plan's cycle with the latest start not after now (as its record has it:
// UsedBytes counts only the traffic of before the usage split; cycleUsed has all).
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
	used, err := s.cycleUsed(t, pid, c)
	return max(c.PoolBytes-used, 0), true, err
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

// addTraffic adds bytes to the active cycle of the vehicle's plan in the caller's transaction: to the
// usage row of the vehicle's shard. With total the answer has the cycle's used bytes, and bytes that
// would take them past math.MaxInt64 are 409 traffic_overflow; that reads every usage row of the
// cycle, so a transaction that does it conflicts with the plan's other traffic (PLAN_ADD_TRAFFIC, not a
// transfer's chunks). Without total only the shard's row is read and written (a sum past
// math.MaxInt64 is read as math.MaxInt64), and the plan's record is not read (a vehicle is linked only
// to a plan that exists, and plans are not deleted): a chunk reads as few rows as it can.
func (s *Service) addTraffic(t store.Txn, vin string, bytes int64, now time.Time, total bool) (Traffic, error) {
	var out Traffic
	if bytes < 0 {
		return out, errs.InvalidEntity("bytes must not be negative")
	}
	pid, err := s.vehiclePlan(t, vin)
	if err != nil || pid == "" {
		return out, err
	}
	if total {
		p, err := s.plan(t, pid)
		if errs.Is(err, "missing_data_plan") {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out.DataPlan = &p.ID
	}
	c, ok, err := s.activeCycle(t, pid, now)
	if err != nil || !ok {
		return out, err
	}
	used := int64(0)
	if total {
		if used, err = s.cycleUsed(t, pid, c); err != nil {
			return out, err
		}
	}
	key := usageKey(pid, c.Start, vin)
	var shard int64
	v, err := t.Get(key)
	if err == nil {
		shard = decodeUsage(v)
	} else if !errors.Is(err, store.ErrNotFound) {
		return out, err
	}
	if used > math.MaxInt64-bytes || shard > math.MaxInt64-bytes {
		return out, errs.New(errs.Conflict, "traffic_overflow",
			"Adding %d bytes would overflow the billing cycle's used bytes (%d)", bytes, max(used, shard))
	}
	if err := t.Set(key, encodeUsage(shard+bytes)); err != nil {
		return out, err
	}
	used += bytes
	out.CycleStart, out.PoolBytes = &c.Start, &c.PoolBytes
	if total {
		out.UsedBytes = &used
	}
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
