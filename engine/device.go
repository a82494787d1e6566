package engine

// The device's side of the queue: polling (DEV_CONNECT), UPDATE_NOTIFICATION, the device's cancel
// (TRIGGER_TRANSFER_START A1) and the answer to GET_ALL_PACKAGES.

import (
	"sota/errs"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// PollRow is one row of a device's poll: a pending or in-flight update in delivery order.
type PollRow = wire.PollRow

// Poll is the device's view of its queue (GET /vehicle_updates/:vin): its pending and in-flight
// updates in delivery order. It records the contact (Seen). It reads the poll cache after catching
// up with the change feed (pollcache.go): nothing from the store when nothing changed.
func (s *Service) Poll(vin string) ([]PollRow, error) {
	fresh := s.pollsFresh()
	if err := s.Seen(vin); err != nil {
		return nil, err
	}
	var us []Update
	var err error
	if fresh {
		us, _, err = s.activeUpdates(vin)
	} else {
		us, err = s.Queue(vin)
	}
	if err != nil {
		return nil, err
	}
	rows := make([]PollRow, len(us))
	for i, u := range us {
		rows[i] = PollRow{UpdateID: u.ID, RequestID: u.RequestID, PackageID: u.PackageID, InstallPos: i, Status: u.Status, CreatedAt: u.CreatedAt}
	}
	return rows, nil
}

// The device protocol's messages of this file (package wire).
type (
	UpdateAvailable = wire.UpdateAvailable
	GetAllPackages  = wire.GetAllPackages
	Notification    = wire.Notification
)

// Notify is UPDATE_NOTIFICATION: the next update to deliver (QUEUE_GET_NEXT_SOFTWARE_UPDATE); ok is
// false when there is nothing to do now. It records the contact.
func (s *Service) Notify(vin string) (n Notification, ok bool, err error) {
	if err := s.Seen(vin); err != nil {
		return n, false, err
	}
	u, ok, _, err := s.NextUpdate(vin)
	if err != nil || !ok {
		return n, false, err
	}
	if u.Kind == KindGetAllPackages {
		return Notification{GetAllPackages: &GetAllPackages{ID: u.ID}}, true, nil
	}
	var size int64
	err = s.db.View(func(t store.Txn) error {
		var err error
		size, err = s.installSize(t, u.Install)
		return err
	})
	return Notification{UpdateAvailable: &UpdateAvailable{UpdateID: u.ID, Packages: u.Install, Size: size,
		DownloadIndex: u.ID, Description: u.Description, RequestConfirmation: u.RequestConfirmation}}, true, err
}

// DeviceCancel is the device's CANCEL_SOFTWARE_DOWNLOAD: the update becomes canceled with result text
// CANCELLED. 404 missing_update; 409 when it is finished, failed or already canceled.
func (s *Service) DeviceCancel(vin, id string) (Update, error) {
	var out Update
	err := s.update(func(t store.Txn) error {
		rec, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if !u.Status.Active() {
			return errInactive(u)
		}
		if err := s.transition(t, vin, id, rec, Canceled, nil, "CANCELLED", s.now()); err != nil {
			return err
		}
		out = s.view(t, vin, id, rec)
		return nil
	})
	return out, err
}

// InstalledReport is GET_ALL_PACKAGES E4: the device's installed packages replace the resolver's
// installed set, and the vehicle's get-all-packages requests that are pending or in flight are
// finished, in one transaction. 400 for a malformed package id.
func (s *Service) InstalledReport(vin string, ids []resolver.PackageID) error {
	for _, id := range ids {
		if err := resolver.ValidPackageID(id); err != nil {
			return err
		}
	}
	ok := 0
	return s.resUpdate(func(t *engineTx, x *resolver.Tx) error {
		if err := x.ReplaceInstalled(vin, ids); err != nil {
			return err
		}
		us, err := s.scanVehicle(t, vin, true)
		if err != nil {
			return err
		}
		now := s.now()
		for _, u := range us {
			if u.Kind != KindGetAllPackages {
				continue
			}
			rec, err := s.loadUpdate(t, vin, u.ID)
			if err != nil {
				return err
			}
			if rec.Status == Pending {
				if err := s.transition(t, vin, u.ID, rec, InFlight, nil, "", now); err != nil {
					return err
				}
			}
			if err := s.transition(t, vin, u.ID, rec, Finished, &ok, "installed packages received", now); err != nil {
				return err
			}
		}
		return nil
	})
}

func errTooMany(what string, max int) error {
	return errs.InvalidEntity("at most %d %s", max, what)
}
