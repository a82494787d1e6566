package engine

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
)

// Campaign statuses.
const (
	CampaignCreated  = "created"
	CampaignLaunched = "launched"
)

// Campaign is a named, scheduled rollout of one package version; launching it creates its update
// request.
type Campaign struct {
	ID            string             `json:"id"`
	Name          string             `json:"name"`
	PackageID     resolver.PackageID `json:"packageId"`
	Priority      int                `json:"priority"`
	StartTime     *time.Time         `json:"startTime"`
	EndTime       *time.Time         `json:"endTime"`
	Status        string             `json:"status"`
	Message       string             `json:"message,omitempty"`
	CreatedAt     time.Time          `json:"createdAt"`
	LaunchedAt    *time.Time         `json:"launchedAt,omitempty"`
	UpdateRequest string             `json:"updateRequest,omitempty"`
}

// NewCampaign is the input of CreateCampaign.
type NewCampaign struct {
	Name      string             `json:"name"`
	PackageID resolver.PackageID `json:"packageId"`
	Priority  *int               `json:"priority"`
	StartTime string             `json:"startTime"`
	EndTime   string             `json:"endTime"`
}

// Launch is the answer of LaunchCampaign.
type Launch struct {
	UpdateRequest string `json:"updateRequest"`
	Vehicles      int    `json:"vehicles"`
	Skipped       int    `json:"skipped"`
}

func errMissingCampaign() error {
	return errs.New(errs.NotFound, "missing_campaign", "Campaign does not exist")
}

// CreateCampaign checks the input and the package (404 package_not_found "Unknown Package ID") and
// stores the campaign with status created.
func (s *Service) CreateCampaign(in NewCampaign) (Campaign, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || len(name) > 200 {
		return Campaign{}, errs.InvalidEntity("name is required (at most 200 characters)")
	}
	if err := resolver.ValidPackageID(in.PackageID); err != nil {
		return Campaign{}, err
	}
	prio, err := checkPriority(in.Priority)
	if err != nil {
		return Campaign{}, err
	}
	c := Campaign{ID: newUUIDs(1)[0], Name: name, Priority: prio, Status: CampaignCreated, CreatedAt: s.now()}
	if in.StartTime != "" {
		t, err := ParseTime("startTime", in.StartTime)
		if err != nil {
			return Campaign{}, err
		}
		c.StartTime = &t
	}
	if in.EndTime != "" {
		t, err := ParseTime("endTime", in.EndTime)
		if err != nil {
			return Campaign{}, err
		}
		if !s.now().Before(t) {
			return Campaign{}, errs.InvalidEntity("endTime %s is in the past", t.Format(time.RFC3339))
		}
		c.EndTime = &t
	}
	if c.StartTime != nil && c.EndTime != nil && !c.StartTime.Before(*c.EndTime) {
		return Campaign{}, errs.InvalidEntity("startTime must be before endTime")
	}
	p, err := s.res.Package(in.PackageID)
	if errs.Is(err, "package_not_found") {
		return Campaign{}, errs.New(errs.NotFound, "package_not_found", "Unknown Package ID: %s", in.PackageID)
	}
	if err != nil {
		return Campaign{}, err
	}
	c.PackageID = p.ID
	if err := s.update(func(t store.Txn) error { return t.Set(campKey(c.ID), encode(&c)) }); err != nil {
		return Campaign{}, err
	}
	c.Message = "Campaign created"
	return c, nil
}

func (s *Service) campaign(t store.Txn, id string) (Campaign, error) {
	if !validUUID(id) {
		return Campaign{}, errMissingCampaign()
	}
	v, err := t.Get(campKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return Campaign{}, errMissingCampaign()
	}
	if err != nil {
		return Campaign{}, err
	}
	var c Campaign
	return c, decode(v, &c)
}

// Campaign returns one campaign: 404 missing_campaign.
func (s *Service) Campaign(id string) (c Campaign, err error) {
	err = s.db.View(func(t store.Txn) error {
		c, err = s.campaign(t, id)
		return err
	})
	return c, err
}

// Campaigns lists the campaigns, oldest first.
func (s *Service) Campaigns() ([]Campaign, error) {
	out := []Campaign{}
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pCamp), func(_, v []byte) error {
			var c Campaign
			if err := decode(v, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// PreviewCampaign is a dry run of the campaign's package over the fleet: what launching it now would
// queue (404 missing_campaign; the resolver's 404 no_filters). sample is the dry run's sample size
// (nil: its default).
func (s *Service) PreviewCampaign(ctx context.Context, id string, sample *int) (resolver.DryRunResult, error) {
	c, err := s.Campaign(id)
	if err != nil {
		return resolver.DryRunResult{}, err
	}
	return s.res.DryRun(ctx, resolver.DryRunRequest{Package: &c.PackageID, Sample: sample})
}

func errAlreadyLaunched(c Campaign) error {
	return errs.New(errs.Conflict, "already_launched", "Campaign was already launched (update request %s)", c.UpdateRequest)
}

// LaunchCampaign queues the campaign's update request: its package resolved over the fleet, its
// priority, and its start and end times as the validity period. A campaign is launched once: again
// is 409 already_launched. When queuing fails (e.g. no_filters) the campaign stays created.
func (s *Service) LaunchCampaign(ctx context.Context, id string) (Launch, error) {
	s.campMu.Lock()
	defer s.campMu.Unlock()
	c, err := s.Campaign(id)
	if err != nil {
		return Launch{}, err
	}
	if c.Status != CampaignCreated {
		return Launch{}, errAlreadyLaunched(c)
	}
	pid := c.PackageID
	r := &UpdateRequest{ID: newUUIDs(1)[0], Kind: KindInstall, PackageID: &pid, Priority: c.Priority,
		Description: c.Name, CampaignID: c.ID, ValidFrom: c.StartTime, ValidUntil: c.EndTime}
	if c.StartTime != nil && c.EndTime != nil {
		r.PeriodOfValidity = formatPeriod(*c.StartTime, *c.EndTime)
	}
	// The campaign is marked launched in the transaction that marks its request queued (persist).
	if err := s.queue(ctx, r); err != nil {
		return Launch{}, err
	}
	return Launch{UpdateRequest: r.ID, Vehicles: r.Vehicles, Skipped: r.Skipped}, nil
}
