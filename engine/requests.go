package engine

import (
	"context"
	"strings"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
)

// NewRequest is the input of QueueUpdate (POST /update_requests).
type NewRequest struct {
	PackageID           resolver.PackageID `json:"packageId"`
	Priority            *int               `json:"priority"`
	PeriodOfValidity    string             `json:"periodOfValidity"`
	Description         string             `json:"description"`
	RequestConfirmation bool               `json:"requestConfirmation"`
}

// MaxDescription bounds a request's or campaign's description, in bytes.
const MaxDescription = 4096

func checkPriority(p *int) (int, error) {
	if p == nil {
		return DefaultPriority, nil
	}
	if *p < 0 || *p > MaxPriority {
		return 0, errs.InvalidEntity("priority must be from 0 (first) to %d, not %d", MaxPriority, *p)
	}
	return *p, nil
}

// ParsePeriod reads "start/end" (two RFC 3339 times, start before end).
func ParsePeriod(s string) (from, until time.Time, err error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return from, until, errs.InvalidEntity("periodOfValidity must be two RFC 3339 times separated by '/', not %q", s)
	}
	if from, err = ParseTime("periodOfValidity start", a); err != nil {
		return
	}
	if until, err = ParseTime("periodOfValidity end", b); err != nil {
		return
	}
	if !from.Before(until) {
		return from, until, errs.InvalidEntity("periodOfValidity must start before it ends")
	}
	return from, until, nil
}

func formatPeriod(from, until time.Time) string {
	return from.Format(time.RFC3339Nano) + "/" + until.Format(time.RFC3339Nano)
}

func (s *Service) newInstallRequest(id resolver.PackageID, priority *int, description string) (*UpdateRequest, error) {
	if err := resolver.ValidPackageID(id); err != nil {
		return nil, err
	}
	p, err := checkPriority(priority)
	if err != nil {
		return nil, err
	}
	if len(description) > MaxDescription {
		return nil, errs.InvalidEntity("description is longer than %d bytes", MaxDescription)
	}
	return &UpdateRequest{ID: newUUIDs(1)[0], Kind: KindInstall, PackageID: &id, Priority: p, Description: description}, nil
}

// QueueGetAllPackages is QUEUE_REQUEST_GET_ALL_PACKAGES: a request for the vehicle's installed-package
// list, with the default priority and no validity limit. 404 missing_vehicle.
func (s *Service) QueueGetAllPackages(vin string) (UpdateRequest, error) {
	if err := s.checkVehicle(vin); err != nil {
		return UpdateRequest{}, err
	}
	r := &UpdateRequest{ID: newUUIDs(1)[0], Kind: KindGetAllPackages, Priority: DefaultPriority,
		Description: "List installed packages", CreatedAt: s.now()}
	if err := s.persist(r, []resolver.Target{{VIN: vin}}); err != nil {
		return UpdateRequest{}, err
	}
	return *r, nil
}

func errMissingVehicle(vin string) error {
	return errs.New(errs.NotFound, "missing_vehicle", "VIN does not exist: %s", vin)
}

// checkVehicle answers 400 for a malformed VIN and 404 missing_vehicle for an unknown one. A VIN
// this process's index does not know is looked up in the store: another replica may have created the
// vehicle a moment ago (the index learns of it from the change feed). Writes check the vehicle again
// in their transaction, so that a concurrent deletion cannot leave their records behind.
func (s *Service) checkVehicle(vin string) error {
	if err := resolver.ValidVIN(vin); err != nil {
		return err
	}
	if !s.res.VehicleExists(vin) {
		return s.res.CheckVehicleStored(vin)
	}
	return nil
}

// VehicleQueue is Queue for a vehicle that must exist (GET /vehicles/:vin/queue).
func (s *Service) VehicleQueue(vin string) ([]Update, error) {
	if err := s.checkVehicle(vin); err != nil {
		return nil, err
	}
	return s.Queue(vin)
}

// VehicleHistory is VIN_GET_UPDATE_HISTORY: every update of an existing vehicle, oldest first.
func (s *Service) VehicleHistory(vin string) ([]Update, error) {
	if err := s.checkVehicle(vin); err != nil {
		return nil, err
	}
	return s.History(vin)
}

// SetDataPlan is VIN_SET_DATA_PLAN: 404 missing_vehicle or missing_data_plan.
func (s *Service) SetDataPlan(vin, planID string) (DataPlan, error) {
	if err := s.checkVehicle(vin); err != nil {
		return DataPlan{}, err
	}
	var p DataPlan
	err := s.resUpdate(func(t *engineTx, x *resolver.Tx) error {
		if err := x.CheckVehicle(vin); err != nil { // a deletion's cascade removes the link
			return err
		}
		var err error
		p, err = s.setVehiclePlan(t, vin, planID)
		return err
	})
	return p, err
}

// AddTraffic is PLAN_ADD_TRAFFIC: bytes are added to the active billing cycle of the vehicle's plan.
// No plan, or no cycle active now: success with nil fields. 404 missing_vehicle.
func (s *Service) AddTraffic(vin string, bytes int64) (Traffic, error) {
	if err := s.checkVehicle(vin); err != nil {
		return Traffic{}, err
	}
	var out Traffic
	err := s.update(func(t store.Txn) error {
		if err := resolver.VehicleCheck().In(t)(vin); err != nil {
			return err
		}
		var err error
		out, err = s.addTraffic(t, vin, bytes, s.now(), true)
		return err
	})
	return out, err
}

// hooks are the engine's part of the resolver's cascades.
func (s *Service) hooks() resolver.Hooks {
	return resolver.Hooks{
		VehicleCreated: store.NewPart(func(raw store.Txn) resolver.VehicleHook {
			return func(x *resolver.Tx, vin string) error {
				return s.inResolverTx(raw, x, func(t *engineTx) error {
					return s.emit(t, "vehicle.created", map[string]any{"vin": vin})
				})
			}
		}),
		VehicleDeleted: store.NewPart(func(raw store.Txn) resolver.VehicleHook {
			return func(x *resolver.Tx, vin string) error {
				return s.inResolverTx(raw, x, func(t *engineTx) error { return s.vehicleDeleted(t, vin) })
			}
		}),
		PackageDeleting: store.NewPart(func(raw store.Txn) resolver.PackageHook {
			return func(x *resolver.Tx, id resolver.PackageID) error {
				return s.inResolverTx(raw, x, func(t *engineTx) error { return s.packageDeleting(t, id) })
			}
		}),
	}
}

// vehicleDeleted is the engine's part of a vehicle's deletion: its updates are canceled, and its
// contact, data-plan link and reported configuration go, so that a vehicle created again starts anew.
func (s *Service) vehicleDeleted(t *engineTx, vin string) error {
	if err := s.cancelVehicle(t, vin); err != nil {
		return err
	}
	if err := s.emit(t, "vehicle.deleted", map[string]any{"vin": vin}); err != nil {
		return err
	}
	for _, k := range [][]byte{devCfgKey(vin), vplanKey(vin), seenKey(vin), wakeKey(vin)} {
		if err := t.Delete(k); err != nil {
			return err
		}
	}
	s.afterCommit(t, func() {
		s.forgetReported(vin)
		s.storedSeen.Delete(vin)
	})
	return nil
}

// packageDeleting is the engine's part of a package's deletion: refused while the package is queued,
// otherwise its request links and binary record go.
func (s *Service) packageDeleting(t *engineTx, id resolver.PackageID) error {
	inUse, err := s.packageQueued(t, id)
	if err != nil {
		return err
	}
	if inUse {
		return errs.New(errs.Conflict, "package_in_use", "Package %s is queued for installation; cancel its update requests first", id)
	}
	var reqs [][]byte
	err = t.IterateKeys(pkgReqPrefix(id), func(k []byte) error {
		reqs = append(reqs, append([]byte(nil), k...))
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range reqs {
		if err := t.Delete(k); err != nil {
			return err
		}
	}
	return t.Delete(binKey(id))
}

// packageQueued reports whether an update request whose install lists include the package still has
// pending or in-flight updates.
func (s *Service) packageQueued(t store.Txn, id resolver.PackageID) (bool, error) {
	var reqs []string
	err := t.IterateKeys(pkgReqPrefix(id), func(k []byte) error {
		reqs = append(reqs, lastPart(k))
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, r := range reqs {
		for _, st := range []Status{Pending, InFlight} {
			any := false
			err := t.IterateKeys(rsPrefix(r, st), func([]byte) error { any = true; return errStop })
			if err != nil && err != errStop {
				return false, err
			}
			if any {
				return true, nil
			}
		}
	}
	return false, nil
}

// QueueUpdate is QUEUE_REQUEST_ADD: the package (404 package_not_found "Package ID does not exist") is
// resolved over the fleet (404 no_filters when no filter is associated with it) and one pending
// update per resolved vehicle is persisted with its install list (dependencies first, the package
// last), the request's priority, validity period and a creation time of now. A vehicle that already
// has an update of this package version pending or in flight is skipped. A period already over is
// 400 invalid_entity; an install list with a package that has no binary is 409 missing_binary
// (checkBinaries), and then nothing is queued.
func (s *Service) QueueUpdate(ctx context.Context, in NewRequest) (UpdateRequest, error) {
	r, err := s.newInstallRequest(in.PackageID, in.Priority, in.Description)
	if err != nil {
		return UpdateRequest{}, err
	}
	if in.PeriodOfValidity != "" {
		from, until, err := ParsePeriod(in.PeriodOfValidity)
		if err != nil {
			return UpdateRequest{}, err
		}
		if !s.now().Before(until) {
			return UpdateRequest{}, errPeriodOver(until)
		}
		r.ValidFrom, r.ValidUntil, r.PeriodOfValidity = &from, &until, formatPeriod(from, until)
	}
	r.RequestConfirmation = in.RequestConfirmation
	if err := s.queue(ctx, r); err != nil {
		return UpdateRequest{}, err
	}
	return *r, nil
}

// queue resolves r's package and persists the updates. Requests for the same package version are
// queued one at a time, on any replica (lockPackage), so that two of them never both queue one vehicle.
func (s *Service) queue(ctx context.Context, r *UpdateRequest) error {
	p, err := s.res.Package(*r.PackageID)
	if err != nil {
		return err
	}
	r.PackageID = &p.ID // the registered spelling of the name
	lk, err := s.lockPackage(ctx, p.ID)
	if err != nil {
		return err
	}
	defer lk.unlock()
	r.CreatedAt = s.now()
	targets, err := s.res.Resolve(ctx, p.ID)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkBinaries(targets); err != nil {
		return err
	}
	if sg := s.signingHook(); sg != nil {
		if err := sg.VerifyInstall(installed(targets)); err != nil {
			return err
		}
	}
	return s.persistWith(r, targets, lk, nil)
}
