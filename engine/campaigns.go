package engine

// Campaigns and staged rollouts (API.md "Rollouts: staged campaigns"). A campaign releases its
// package to its target vehicles in groups, each group one update request; a group is released when
// the one before it has reached the success threshold, and the campaign pauses itself when the failed
// vehicles of its released groups pass the error threshold. Gates are evaluated after each install
// report of a campaign update and by the scheduler (RunCampaigns), which also queues retries and, for
// continuous campaigns, the vehicles that come to match later.
//
// The state lives in small typed functions over the store (campaign records, group membership
// chunks, retry records) so that it can move to another store as a whole:
//
//	core/camp/<campaignID>                        Campaign (JSON), groups and their request ids included
//	core/cgrp/<campaignID>/<group %03d>/<n %06d>  a chunk of the group's VINs, sorted, 17 bytes each
//	core/cretry/<campaignID>/<vin>                retryState (JSON): attempts used, when the next is due

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// Campaign statuses: created → running → finished or aborted; running ⇄ paused.
const (
	CampaignCreated  = "created"
	CampaignRunning  = "running"
	CampaignPaused   = "paused"
	CampaignFinished = "finished"
	CampaignAborted  = "aborted"
	// campaignLaunchedV1 is the status campaigns had before staged rollouts: read as running with one
	// released group.
	campaignLaunchedV1 = "launched"
)

// Group statuses.
const (
	GroupScheduled = "scheduled"
	GroupReleased  = "released"
	GroupDone      = "done"
)

// Campaign limits and defaults.
const (
	DefaultSuccessThreshold = 90
	MaxGroups               = 100
	MaxGroupName            = 40
	MaxRetryAttempts        = 10
	// RestGroup is the name of the group of the vehicles no named group takes.
	RestGroup = "rest"
)

// Error codes of campaigns.
const (
	CodeMissingCampaign = "missing_campaign"
	CodeAlreadyLaunched = "already_launched"
	CodeInvalidState    = "invalid_state"
	CodeNoGroup         = "no_group"
)

// GroupSpec is one group of a campaign as given at creation: a filter, a percent cap of the whole
// target, both, or neither (every vehicle still unassigned).
type GroupSpec struct {
	Name    string `json:"name"`
	Percent *int   `json:"percent,omitempty"`
	Filter  string `json:"filter,omitempty"`
}

// Retry tells how a campaign retries a vehicle whose update failed with a retryable result code.
type Retry struct {
	Attempts     int `json:"attempts"`
	DelaySeconds int `json:"delaySeconds"`
}

// CampaignGroup is a group of a campaign with its state.
type CampaignGroup struct {
	GroupSpec
	Status        string     `json:"status"`
	Vehicles      int        `json:"vehicles"`
	UpdateRequest string     `json:"updateRequest,omitempty"`
	Requests      []string   `json:"requests,omitempty"` // its release, later joins and retries
	ReleasedAt    *time.Time `json:"releasedAt,omitempty"`
	Retried       int        `json:"retried,omitempty"` // failed updates that a retry superseded
	Counts        *Counts    `json:"counts,omitempty"`
}

// Campaign is a named, scheduled rollout of one package version in groups.
type Campaign struct {
	ID                 string             `json:"id"`
	Name               string             `json:"name"`
	PackageID          resolver.PackageID `json:"packageId"`
	Priority           int                `json:"priority"`
	StartTime          *time.Time         `json:"startTime"`
	EndTime            *time.Time         `json:"endTime"`
	Status             string             `json:"status"`
	PauseReason        string             `json:"pauseReason,omitempty"`
	Message            string             `json:"message,omitempty"`
	SuccessThreshold   int                `json:"successThreshold"`
	ErrorThreshold     *int               `json:"errorThreshold"`
	Continuous         bool               `json:"continuous"`
	Retry              *Retry             `json:"retry,omitempty"`
	Groups             []CampaignGroup    `json:"groups"`
	Counts             *Counts            `json:"counts,omitempty"`
	UpdateRequest      string             `json:"updateRequest,omitempty"` // the first group's
	UpdateRequests     []string           `json:"updateRequests,omitempty"`
	FailedBeforeResume int                `json:"failedBeforeResume,omitempty"` // failures the error gate no longer counts
	CreatedAt          time.Time          `json:"createdAt"`
	LaunchedAt         *time.Time         `json:"launchedAt,omitempty"`
	FinishedAt         *time.Time         `json:"finishedAt,omitempty"`
}

// NewCampaign is the input of CreateCampaign.
type NewCampaign struct {
	Name             string             `json:"name"`
	PackageID        resolver.PackageID `json:"packageId"`
	Priority         *int               `json:"priority"`
	StartTime        string             `json:"startTime"`
	EndTime          string             `json:"endTime"`
	Groups           []GroupSpec        `json:"groups"`
	SuccessThreshold *int               `json:"successThreshold"`
	ErrorThreshold   *int               `json:"errorThreshold"`
	Continuous       bool               `json:"continuous"`
	Retry            *Retry             `json:"retry"`
}

// GroupSize is a group's name and how many vehicles it has (launch and preview answers).
type GroupSize struct {
	Name     string `json:"name"`
	Vehicles int    `json:"vehicles"`
}

// Launch is the answer of LaunchCampaign.
type Launch struct {
	UpdateRequest string      `json:"updateRequest"`
	Vehicles      int         `json:"vehicles"`
	Skipped       int         `json:"skipped"`
	Groups        []GroupSize `json:"groups"`
}

// Preview is the answer of PreviewCampaign: the dry run of the package, the groups a launch now would
// make and the problems it would meet.
type Preview struct {
	DryRun
	Groups []GroupSize `json:"groups"`
}

func errMissingCampaign() error {
	return errs.New(errs.NotFound, CodeMissingCampaign, "Campaign does not exist")
}

func errInvalidState(c *Campaign, want string) error {
	return errs.New(errs.Conflict, CodeInvalidState, "Campaign is %s; %s", c.Status, want)
}

// campaignState is the engine's in-memory part of campaigns: the records by id (campaigns are few),
// and the gate evaluations asked for while one was running.
type campaignState struct {
	byID   map[string]*Campaign
	gateMu sync.Mutex
	gates  map[string]bool // campaign id -> evaluation running (true: run again when done)
}

func (s *Service) loadCampaigns() error {
	s.camps.byID = map[string]*Campaign{}
	s.camps.gates = map[string]bool{}
	return s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pCamp), func(_, v []byte) error {
			var c Campaign
			if err := decode(v, &c); err != nil {
				return err
			}
			if c.Status == campaignLaunchedV1 { // stored before groups existed
				c.Status = CampaignRunning
				g := CampaignGroup{GroupSpec: GroupSpec{Name: "all"}, Status: GroupReleased, UpdateRequest: c.UpdateRequest,
					Requests: []string{c.UpdateRequest}, ReleasedAt: c.LaunchedAt}
				if r, ok := s.reqs[c.UpdateRequest]; ok {
					g.Vehicles = r.Vehicles
				}
				c.Groups, c.SuccessThreshold = []CampaignGroup{g}, DefaultSuccessThreshold
			}
			s.camps.byID[c.ID] = &c
			return nil
		})
	})
}

// campaignEvents emits the webhook events of what c changes against its stored version, in t: a group
// released (campaign.released), the campaign paused, finished or aborted.
func (s *Service) campaignEvents(t store.Txn, c Campaign) error {
	var prev Campaign
	b, err := t.Get(campKey(c.ID))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil {
		if err := decode(b, &prev); err != nil {
			return err
		}
	}
	was := map[string]string{}
	for _, g := range prev.Groups {
		was[g.Name] = g.Status
	}
	for _, g := range c.Groups {
		if g.Status == GroupReleased && was[g.Name] != GroupReleased {
			if err := s.emit(t, "campaign.released", map[string]any{"campaignId": c.ID, "name": c.Name, "group": g.Name,
				"vehicles": g.Vehicles, "updateRequest": g.UpdateRequest}); err != nil {
				return err
			}
		}
	}
	if c.Status != prev.Status {
		ev := map[string]string{CampaignPaused: "campaign.paused", CampaignFinished: "campaign.finished", CampaignAborted: "campaign.aborted"}[c.Status]
		if ev != "" {
			data := map[string]any{"campaignId": c.ID, "name": c.Name, "status": c.Status}
			if c.PauseReason != "" {
				data["reason"] = c.PauseReason
			}
			return s.emit(t, ev, data)
		}
	}
	return nil
}

// putCampaignUnder writes c in a transaction fenced by the campaign's lock (locks.go), held by the caller.
func (s *Service) putCampaignUnder(cl *heldLock, c Campaign) error {
	return s.update(func(t store.Txn) error {
		if err := cl.check(t); err != nil {
			return err
		}
		return s.putCampaign(t, c)
	})
}

// putCampaign writes c in t and puts it in the cache once t has committed.
func (s *Service) putCampaign(t store.Txn, c Campaign) error {
	c.Counts, c.Message, c.UpdateRequests = nil, "", nil
	for i := range c.Groups {
		c.Groups[i].Counts = nil
	}
	c.Groups = slices.Clone(c.Groups)
	if err := s.campaignEvents(t, c); err != nil {
		return err
	}
	if err := t.Set(campKey(c.ID), encode(&c)); err != nil {
		return err
	}
	if !onCommit(t, func() { s.cacheCampaign(c) }) {
		return errors.New("engine: a campaign is written in an engine or resolver transaction")
	}
	return nil
}

func (s *Service) cacheCampaign(c Campaign) {
	s.mu.Lock()
	s.camps.byID[c.ID] = &c
	s.mu.Unlock()
}

// cachedCampaign returns a copy of the campaign (its groups cloned).
func (s *Service) cachedCampaign(id string) (Campaign, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.camps.byID[id]
	if !ok {
		return Campaign{}, false
	}
	c := *p
	c.Groups = slices.Clone(p.Groups)
	return c, true
}

// campaignStatus is the status of a campaign ("" when there is none), for the delivery order.
func (s *Service) campaignStatus(id string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.camps.byID[id]; ok {
		return c.Status
	}
	return ""
}

// held reports whether a pending update is held back from delivery: its campaign is paused.
func (s *Service) held(u *Update) bool {
	if u.Status != Pending {
		return false
	}
	r, ok := s.request(u.RequestID)
	return ok && r.CampaignID != "" && s.campaignStatus(r.CampaignID) == CampaignPaused
}

func validGroups(in []GroupSpec) ([]GroupSpec, error) {
	if len(in) == 0 {
		return []GroupSpec{{Name: "all"}}, nil
	}
	if len(in) > MaxGroups {
		return nil, errs.InvalidEntity("groups must have 1 to %d entries, not %d", MaxGroups, len(in))
	}
	seen := map[string]bool{}
	out := make([]GroupSpec, len(in))
	for i, g := range in {
		g.Name = strings.TrimSpace(g.Name)
		if g.Name == "" || len([]rune(g.Name)) > MaxGroupName {
			return nil, errs.InvalidEntity("groups[%d].name must be 1 to %d characters", i, MaxGroupName)
		}
		if seen[strings.ToLower(g.Name)] {
			return nil, errs.InvalidEntity("groups[%d].name %q is used twice; group names are unique in a campaign", i, g.Name)
		}
		seen[strings.ToLower(g.Name)] = true
		if g.Percent != nil && (*g.Percent < 1 || *g.Percent > 100) {
			return nil, errs.InvalidEntity("groups[%d].percent must be 1 to 100, not %d", i, *g.Percent)
		}
		out[i] = g
	}
	if last := out[len(out)-1]; last.Percent != nil || last.Filter != "" {
		if seen[RestGroup] {
			return nil, errs.InvalidEntity("the group name %q is kept for the vehicles no group takes when the last group has a filter or a percent", RestGroup)
		}
		out = append(out, GroupSpec{Name: RestGroup})
	}
	return out, nil
}

func percentIn(field string, p *int, lo, def int) (int, error) {
	if p == nil {
		return def, nil
	}
	if *p < lo || *p > 100 {
		return 0, errs.InvalidEntity("%s must be %d to 100, not %d", field, lo, *p)
	}
	return *p, nil
}

// CreateCampaign checks the input (400 invalid_entity naming the field; an endTime in the past; a
// group filter that fails validation is 406 invalid_filter) and the package (404 package_not_found
// "Unknown Package ID"), and stores the campaign with status created. Without groups it has one
// group "all"; when the last group has a filter or a percent, a final group "rest" takes the
// vehicles no group takes.
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
	c := Campaign{ID: newUUIDs(1)[0], Name: name, Priority: prio, Status: CampaignCreated, CreatedAt: s.now(), Continuous: in.Continuous}
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
	if c.SuccessThreshold, err = percentIn("successThreshold", in.SuccessThreshold, 1, DefaultSuccessThreshold); err != nil {
		return Campaign{}, err
	}
	if in.ErrorThreshold != nil {
		v, err := percentIn("errorThreshold", in.ErrorThreshold, 0, 0)
		if err != nil {
			return Campaign{}, err
		}
		c.ErrorThreshold = &v
	}
	if in.Retry != nil {
		if in.Retry.Attempts < 1 || in.Retry.Attempts > MaxRetryAttempts {
			return Campaign{}, errs.InvalidEntity("retry.attempts must be 1 to %d, not %d", MaxRetryAttempts, in.Retry.Attempts)
		}
		if in.Retry.DelaySeconds < 0 {
			return Campaign{}, errs.InvalidEntity("retry.delaySeconds must be at least 0, not %d", in.Retry.DelaySeconds)
		}
		r := *in.Retry
		c.Retry = &r
	}
	specs, err := validGroups(in.Groups)
	if err != nil {
		return Campaign{}, err
	}
	p, err := s.res.Package(in.PackageID)
	if errs.Is(err, "package_not_found") {
		return Campaign{}, errs.New(errs.NotFound, "package_not_found", "Unknown Package ID: %s", in.PackageID)
	}
	if err != nil {
		return Campaign{}, err
	}
	for _, g := range specs {
		if g.Filter != "" {
			if err := s.res.CheckExpression(g.Filter); err != nil {
				return Campaign{}, err
			}
		}
		c.Groups = append(c.Groups, CampaignGroup{GroupSpec: g, Status: GroupScheduled})
	}
	c.PackageID = p.ID
	if err := s.update(func(t store.Txn) error { return s.putCampaign(t, c) }); err != nil {
		return Campaign{}, err
	}
	out, err := s.Campaign(c.ID)
	out.Message = "Campaign created"
	return out, err
}

// Campaign returns one campaign with its groups' counts: 404 missing_campaign. The counts are
// maintained, not scanned.
func (s *Service) Campaign(id string) (Campaign, error) {
	c, ok := s.cachedCampaign(id)
	if !ok {
		return Campaign{}, errMissingCampaign()
	}
	total := Counts{}
	for i := range c.Groups {
		g := &c.Groups[i]
		gc, err := s.groupCounts(g)
		if err != nil {
			return Campaign{}, err
		}
		g.Counts = &gc
		total.Pending += gc.Pending
		total.InFlight += gc.InFlight
		total.Finished += gc.Finished
		total.Failed += gc.Failed
		total.Canceled += gc.Canceled
		c.UpdateRequests = append(c.UpdateRequests, g.Requests...)
	}
	c.Counts = &total
	return c, nil
}

// groupCounts are the group's counts per vehicle: its requests' counts, without the failures a
// retry superseded (a retried vehicle counts once, by its latest update).
func (s *Service) groupCounts(g *CampaignGroup) (Counts, error) {
	var out Counts
	for _, r := range g.Requests {
		c, err := s.requestCounts(r)
		if err != nil {
			return out, err
		}
		out.Pending += c.Pending
		out.InFlight += c.InFlight
		out.Finished += c.Finished
		out.Failed += c.Failed
		out.Canceled += c.Canceled
	}
	out.Failed = max(0, out.Failed-g.Retried)
	return out, nil
}

// Campaigns lists the campaigns, oldest first, with their counts.
func (s *Service) Campaigns() ([]Campaign, error) {
	s.mu.RLock()
	ids := make([]string, 0, len(s.camps.byID))
	for id := range s.camps.byID {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	out := make([]Campaign, 0, len(ids))
	for _, id := range ids {
		c, err := s.Campaign(id)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// groupHash places a VIN in a campaign's percent groups: random-looking, reproducible.
func groupHash(campaign, vin string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(campaign))
	h.Write([]byte{'/'})
	h.Write([]byte(vin))
	return h.Sum64()
}

// AssignGroups splits the target VINs (sorted) into the groups in order: a group with a filter takes
// the unassigned VINs that match it (matchers[i], nil for a group without filter); a percent caps a
// group at that percent of the whole target, rounded up, the VINs with the lowest hash of (campaign
// id, VIN) first; a group with neither takes every VIN still unassigned. Each group's VINs are
// sorted; every target VIN is in exactly one group or in none when the groups leave it out.
func AssignGroups(campaign string, groups []GroupSpec, matchers []func(string) bool, vins []string) [][]string {
	out := make([][]string, len(groups))
	taken := make([]bool, len(vins))
	total := len(vins)
	for gi, g := range groups {
		var cand []int
		for i, vin := range vins {
			if !taken[i] && (matchers[gi] == nil || matchers[gi](vin)) {
				cand = append(cand, i)
			}
		}
		if g.Percent != nil {
			limit := int(math.Ceil(float64(*g.Percent) * float64(total) / 100))
			if len(cand) > limit {
				type ranked struct {
					h uint64
					i int
				}
				rs := make([]ranked, len(cand))
				for k, i := range cand {
					rs[k] = ranked{groupHash(campaign, vins[i]), i}
				}
				slices.SortFunc(rs, func(a, b ranked) int {
					if a.h != b.h {
						return cmp.Compare(a.h, b.h)
					}
					return cmp.Compare(a.i, b.i)
				})
				cand = cand[:limit]
				for k := range cand {
					cand[k] = rs[k].i
				}
				slices.Sort(cand)
			}
		}
		out[gi] = make([]string, len(cand))
		for k, i := range cand {
			taken[i] = true
			out[gi][k] = vins[i]
		}
	}
	return out
}

// campaignTargets is the campaign's target now: the vehicles a queue of its package would take
// (matched, not installed, resolvable), less those that have it pending or in flight already, sorted
// by VIN; with the package's solutions for the problems of a preview.
func (s *Service) campaignTargets(ctx context.Context, c *Campaign) ([]resolver.Target, map[string]bool, error) {
	targets, err := s.res.Resolve(ctx, c.PackageID)
	if err != nil {
		return nil, nil, err
	}
	active, err := s.activeFor(c.PackageID)
	if err != nil {
		return nil, nil, err
	}
	if len(active) > 0 {
		kept := targets[:0:0]
		for _, tg := range targets {
			if !active[tg.VIN] {
				kept = append(kept, tg)
			}
		}
		targets = kept
	}
	return targets, active, nil
}

// assign computes the campaign's groups over targets.
func (s *Service) assign(c *Campaign, targets []resolver.Target) ([][]string, error) {
	specs := make([]GroupSpec, len(c.Groups))
	matchers := make([]func(string) bool, len(c.Groups))
	for i, g := range c.Groups {
		specs[i] = g.GroupSpec
		if g.Filter != "" {
			m, err := s.res.Matcher(g.Filter)
			if err != nil {
				return nil, err
			}
			matchers[i] = m
		}
	}
	vins := make([]string, len(targets))
	for i, tg := range targets {
		vins[i] = tg.VIN
	}
	return AssignGroups(c.ID, specs, matchers, vins), nil
}

// PreviewCampaign is what launching the campaign now would do: the dry run of its package, the
// groups over its target and the problems (404 missing_campaign; the resolver's 404 no_filters; 406
// for a group filter that no longer validates). sample is the dry run's sample size (nil: default).
func (s *Service) PreviewCampaign(ctx context.Context, id string, sample *int) (Preview, error) {
	if err := s.db.CatchUp(ctx); err != nil { // a campaign created on another replica (feed.go)
		return Preview{}, err
	}
	c, ok := s.cachedCampaign(id)
	if !ok {
		return Preview{}, errMissingCampaign()
	}
	pid := c.PackageID
	res, err := s.res.DryRun(ctx, resolver.DryRunRequest{Package: &pid, Sample: sample})
	if err != nil {
		return Preview{}, err
	}
	sols, err := s.res.Solutions(ctx, pid, nil)
	if err != nil {
		return Preview{}, err
	}
	active, err := s.activeFor(pid)
	if err != nil {
		return Preview{}, err
	}
	var targets []resolver.Target
	for _, sol := range sols {
		if !sol.AlreadyInstalled && sol.Err == nil && !active[sol.VIN] {
			targets = append(targets, resolver.Target{VIN: sol.VIN, Install: sol.Install})
		}
	}
	groups, err := s.assign(&c, targets)
	if err != nil {
		return Preview{}, err
	}
	probs, err := s.problems(sols, func(vin string) bool { return !active[vin] })
	if err != nil {
		return Preview{}, err
	}
	out := Preview{DryRun: DryRun{DryRunResult: res, Problems: probs}}
	for i, g := range c.Groups {
		out.Groups = append(out.Groups, GroupSize{Name: g.Name, Vehicles: len(groups[i])})
	}
	return out, nil
}

const vinLen = 17

// groupChunk is how many VINs one membership record holds.
const groupChunk = 16384

func groupPrefix(campaign string, gi int) []byte {
	return []byte(fmt.Sprintf("%s%s/%03d/", pCampGroup, campaign, gi))
}

// writeGroups stores the campaign's group membership, replacing any left by a launch that did not
// complete.
func (s *Service) writeGroups(campaign string, groups [][]string) error {
	var old [][]byte
	err := s.db.View(func(t store.Txn) error {
		return t.IterateKeys([]byte(pCampGroup+campaign+"/"), func(k []byte) error {
			old = append(old, append([]byte(nil), k...))
			return nil
		})
	})
	if err != nil {
		return err
	}
	wb := s.db.NewBatch()
	for _, k := range old {
		if err := wb.Delete(k); err != nil {
			wb.Cancel()
			return err
		}
	}
	for gi, vins := range groups {
		if err := appendGroup(wb, campaign, gi, 0, vins); err != nil {
			wb.Cancel()
			return err
		}
	}
	return wb.Flush()
}

type setter interface{ Set(k, v []byte) error }

// appendGroup writes vins as membership chunks of group gi numbered from first.
func appendGroup(w setter, campaign string, gi, first int, vins []string) error {
	for n := 0; n*groupChunk < len(vins); n++ {
		part := vins[n*groupChunk : min((n+1)*groupChunk, len(vins))]
		b := make([]byte, 0, len(part)*vinLen)
		for _, v := range part {
			b = append(b, v...)
		}
		if err := w.Set(append(groupPrefix(campaign, gi), fmt.Sprintf("%06d", first+n)...), b); err != nil {
			return err
		}
	}
	return nil
}

// groupVINs reads group gi's VINs, sorted, and how many chunks hold them.
func (s *Service) groupVINs(campaign string, gi int) ([]string, int, error) {
	var out []string
	chunks := 0
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate(groupPrefix(campaign, gi), func(_, v []byte) error {
			chunks++
			for i := 0; i+vinLen <= len(v); i += vinLen {
				out = append(out, string(v[i:i+vinLen]))
			}
			return nil
		})
	})
	slices.Sort(out)
	return out, chunks, err
}

// releaseRequest queues the targets of group gi of c as a new update request of the campaign and
// applies change to the campaign in the transaction that marks the request queued.
// The caller holds the campaign's lock cl and the package's lock lk.
func (s *Service) releaseRequest(c Campaign, gi int, targets []resolver.Target, cl, lk *heldLock, change func(c *Campaign, r *UpdateRequest)) (*UpdateRequest, error) {
	pid := c.PackageID
	r := &UpdateRequest{ID: newUUIDs(1)[0], Kind: KindInstall, PackageID: &pid, Priority: c.Priority,
		Description: c.Name, CampaignID: c.ID, Group: c.Groups[gi].Name, ValidFrom: c.StartTime, ValidUntil: c.EndTime,
		CreatedAt: s.now()}
	if c.StartTime != nil && c.EndTime != nil {
		r.PeriodOfValidity = formatPeriod(*c.StartTime, *c.EndTime)
	}
	err := s.persistWith(r, targets, lk, func(t store.Txn, cur *UpdateRequest) error {
		nc := c
		nc.Groups = slices.Clone(c.Groups)
		nc.Groups[gi].Requests = append(slices.Clone(nc.Groups[gi].Requests), cur.ID)
		change(&nc, cur)
		if err := cl.check(t); err != nil {
			return err
		}
		return s.putCampaign(t, nc)
	})
	return r, err
}

// LaunchCampaign assigns the campaign's target to its groups, stores them, and releases the first
// group as the campaign's first update request; status running. A campaign is launched once: again
// is 409 already_launched; after its endTime 409 campaign_ended; an install list with a package
// without a binary 409 missing_binary (nothing is queued). When queuing fails the campaign stays
// created.
func (s *Service) LaunchCampaign(ctx context.Context, id string) (Launch, error) {
	cl, err := s.lockCampaign(ctx, id) // and a campaign created on another replica is cached (feed.go)
	if err != nil {
		return Launch{}, err
	}
	defer cl.unlock()
	c, ok := s.cachedCampaign(id)
	if !ok {
		return Launch{}, errMissingCampaign()
	}
	if c.Status != CampaignCreated {
		return Launch{}, errs.New(errs.Conflict, CodeAlreadyLaunched, "Campaign was already launched (update request %s)", c.UpdateRequest)
	}
	if c.EndTime != nil && !s.now().Before(*c.EndTime) {
		return Launch{}, errs.New(errs.Conflict, CodeCampaignEnded, "Campaign ended at %s; it cannot be launched", c.EndTime.Format(time.RFC3339))
	}
	if _, err := s.res.Package(c.PackageID); err != nil {
		return Launch{}, err
	}
	lk, err := s.lockPackage(ctx, c.PackageID)
	if err != nil {
		return Launch{}, err
	}
	defer lk.unlock()
	t0 := time.Now()
	targets, _, err := s.campaignTargets(ctx, &c)
	if err != nil {
		return Launch{}, err
	}
	if err := ctx.Err(); err != nil {
		return Launch{}, err
	}
	tResolve := time.Since(t0)
	if err := s.checkBinaries(targets); err != nil {
		return Launch{}, err
	}
	if sg := s.signingHook(); sg != nil {
		if err := sg.VerifyInstall(installed(targets)); err != nil {
			return Launch{}, err
		}
	}
	t1 := time.Now()
	groups, err := s.assign(&c, targets)
	if err != nil {
		return Launch{}, err
	}
	tAssign := time.Since(t1)
	t2 := time.Now()
	if err := s.writeGroups(c.ID, groups); err != nil {
		return Launch{}, err
	}
	tGroups := time.Since(t2)
	t3 := time.Now()
	first := pickTargets(targets, groups[0])
	now := s.now()
	r, err := s.releaseRequest(c, 0, first, cl, lk, func(nc *Campaign, cur *UpdateRequest) {
		nc.Status, nc.LaunchedAt, nc.UpdateRequest = CampaignRunning, &now, cur.ID
		for i := range nc.Groups {
			nc.Groups[i].Vehicles = len(groups[i])
		}
		g := &nc.Groups[0]
		g.Status, g.UpdateRequest, g.ReleasedAt = GroupReleased, cur.ID, &now
	})
	if err != nil {
		return Launch{}, err
	}
	out := Launch{UpdateRequest: r.ID, Skipped: r.Skipped}
	for i, g := range c.Groups {
		out.Groups = append(out.Groups, GroupSize{Name: g.Name, Vehicles: len(groups[i])})
		out.Vehicles += len(groups[i])
	}
	s.log.Info("campaign launched", "campaign", c.ID, "vehicles", out.Vehicles, "first group", r.Vehicles,
		"resolve", tResolve.Round(time.Millisecond), "assign", tAssign.Round(time.Millisecond),
		"store groups", tGroups.Round(time.Millisecond), "queue first group", time.Since(t3).Round(time.Millisecond))
	s.kickGates(c.ID) // an empty first group lets the next one go at once
	return out, nil
}

// pickTargets returns the targets whose VIN is in vins (both sorted by VIN).
func pickTargets(targets []resolver.Target, vins []string) []resolver.Target {
	out := make([]resolver.Target, 0, len(vins))
	i := 0
	for _, tg := range targets {
		for i < len(vins) && vins[i] < tg.VIN {
			i++
		}
		if i < len(vins) && vins[i] == tg.VIN {
			out = append(out, tg)
		}
	}
	return out
}

// releaseGroup queues group gi of c (its lockCampaign held): its members that are still targets now.
func (s *Service) releaseGroup(ctx context.Context, c Campaign, gi int, cl *heldLock) error {
	vins, _, err := s.groupVINs(c.ID, gi)
	if err != nil {
		return err
	}
	lk, err := s.lockPackage(ctx, c.PackageID)
	if err != nil {
		return err
	}
	defer lk.unlock()
	targets, _, err := s.campaignTargets(ctx, &c)
	if err != nil {
		return err
	}
	now := s.now()
	_, err = s.releaseRequest(c, gi, pickTargets(targets, vins), cl, lk, func(nc *Campaign, cur *UpdateRequest) {
		g := &nc.Groups[gi]
		g.Status, g.UpdateRequest, g.ReleasedAt = GroupReleased, cur.ID, &now
	})
	return err
}

// PauseCampaign pauses a running campaign: its pending updates are not offered and no group is
// released until it is resumed. 409 invalid_state unless running.
func (s *Service) PauseCampaign(id, by string) (Campaign, error) {
	cl, err := s.lockCampaign(context.Background(), id)
	if err != nil {
		return Campaign{}, err
	}
	defer cl.unlock()
	c, ok := s.cachedCampaign(id)
	if !ok {
		return Campaign{}, errMissingCampaign()
	}
	if c.Status != CampaignRunning {
		return Campaign{}, errInvalidState(&c, "only a running campaign can be paused")
	}
	if by == "" {
		by = "an operator"
	}
	c.Status, c.PauseReason = CampaignPaused, "paused by "+by
	if err := s.putCampaignUnder(cl, c); err != nil {
		return Campaign{}, err
	}
	return s.Campaign(id)
}

// ResumeCampaign resumes a paused campaign: its pending updates are offered again, and its gates are
// evaluated; from now on the error gate counts only failures reported after the resume. 409
// invalid_state unless paused.
func (s *Service) ResumeCampaign(ctx context.Context, id string) (Campaign, error) {
	cl, err := s.lockCampaign(ctx, id)
	if err != nil {
		return Campaign{}, err
	}
	c, ok := s.cachedCampaign(id)
	if !ok {
		cl.unlock()
		return Campaign{}, errMissingCampaign()
	}
	if c.Status != CampaignPaused {
		cl.unlock()
		return Campaign{}, errInvalidState(&c, "only a paused campaign can be resumed")
	}
	full, err := s.Campaign(id)
	if err != nil {
		cl.unlock()
		return Campaign{}, err
	}
	c.Status, c.PauseReason, c.FailedBeforeResume = CampaignRunning, "", full.Counts.Failed
	err = s.putCampaignUnder(cl, c)
	cl.unlock()
	if err != nil {
		return Campaign{}, err
	}
	if err := s.EvaluateCampaign(ctx, id); err != nil {
		return Campaign{}, err
	}
	return s.Campaign(id)
}

// ReleaseNextGroup releases the next scheduled group now, whatever its gate says. 409 invalid_state
// unless running; 409 no_group when every group is released.
func (s *Service) ReleaseNextGroup(ctx context.Context, id string) (Campaign, error) {
	cl, err := s.lockCampaign(ctx, id)
	if err != nil {
		return Campaign{}, err
	}
	c, ok := s.cachedCampaign(id)
	if !ok {
		cl.unlock()
		return Campaign{}, errMissingCampaign()
	}
	if c.Status != CampaignRunning {
		cl.unlock()
		return Campaign{}, errInvalidState(&c, "only a running campaign releases groups")
	}
	gi := slices.IndexFunc(c.Groups, func(g CampaignGroup) bool { return g.Status == GroupScheduled })
	if gi < 0 {
		cl.unlock()
		return Campaign{}, errs.New(errs.Conflict, CodeNoGroup, "Every group of the campaign is released")
	}
	err = s.releaseGroup(ctx, c, gi, cl)
	cl.unlock()
	if err != nil {
		return Campaign{}, err
	}
	if err := s.EvaluateCampaign(ctx, id); err != nil {
		return Campaign{}, err
	}
	return s.Campaign(id)
}

// AbortCampaign cancels every pending update of the campaign and releases no further group; updates
// in flight go on. It returns how many were canceled. 409 invalid_state when created, finished or
// aborted.
func (s *Service) AbortCampaign(id string) (int, error) {
	cl, err := s.lockCampaign(context.Background(), id)
	if err != nil {
		return 0, err
	}
	defer cl.unlock()
	c, ok := s.cachedCampaign(id)
	if !ok {
		return 0, errMissingCampaign()
	}
	if c.Status != CampaignRunning && c.Status != CampaignPaused {
		return 0, errInvalidState(&c, "only a running or paused campaign can be aborted")
	}
	now := s.now()
	c.Status, c.PauseReason, c.FinishedAt = CampaignAborted, "", &now
	if err := s.putCampaignUnder(cl, c); err != nil {
		return 0, err
	}
	n := 0
	for _, g := range c.Groups {
		for _, r := range g.Requests {
			k, err := s.cancelRequest(r, StateCanceled)
			n += k
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// kickGates evaluates the campaign's gates in the background, once more if asked again meanwhile.
func (s *Service) kickGates(id string) {
	s.camps.gateMu.Lock()
	if _, running := s.camps.gates[id]; running {
		s.camps.gates[id] = true
		s.camps.gateMu.Unlock()
		return
	}
	s.camps.gates[id] = false
	s.camps.gateMu.Unlock()
	b := s.base // not the caller's handle: its hook belongs to the call that is ending
	go func() {
		for {
			if err := b.EvaluateCampaign(context.Background(), id); err != nil {
				s.log.Error("campaign gates", "campaign", id, "err", err)
			}
			s.camps.gateMu.Lock()
			if !s.camps.gates[id] {
				delete(s.camps.gates, id)
				s.camps.gateMu.Unlock()
				return
			}
			s.camps.gates[id] = false
			s.camps.gateMu.Unlock()
		}
	}()
}

// pct is n of "of" in percent with one decimal, or more when one would not show that it is past
// the threshold (501 of 10,000 is 5.01%, not 5%).
func pct(n, of, threshold int) string {
	if of == 0 {
		return "0"
	}
	x := 100 * float64(n) / float64(of)
	scale := 10.0
	for d := 1; d < 4 && math.Round(x*scale)/scale <= float64(threshold); d++ {
		scale *= 10
	}
	return strconv.FormatFloat(math.Round(x*scale)/scale, 'f', -1, 64)
}

// EvaluateCampaign applies the campaign's gates now: groups whose updates are all final are done; past
// the error threshold the campaign pauses itself with a reason naming the groups and the figures;
// while the last released group has reached the success threshold the next group is released; when
// every group is released and done (and a continuous campaign has reached its endTime) the campaign
// is finished.
func (s *Service) EvaluateCampaign(ctx context.Context, id string) error {
	cl, err := s.lockCampaign(ctx, id)
	if err != nil {
		return err
	}
	defer cl.unlock()
	for {
		c, err := s.Campaign(id)
		if err != nil {
			return err
		}
		if c.Status != CampaignRunning {
			return nil
		}
		changed := false
		retrying, err := s.retryingGroups(c.ID)
		if err != nil {
			return err
		}
		released, failed, last := 0, 0, -1
		var names []string
		for i := range c.Groups {
			g := &c.Groups[i]
			if g.Status == GroupScheduled {
				continue
			}
			last = i
			gc := g.Counts
			n := gc.Pending + gc.InFlight + gc.Finished + gc.Failed + gc.Canceled
			released += n
			failed += gc.Failed
			names = append(names, strconv.Quote(g.Name))
			if g.Status == GroupReleased && gc.Pending+gc.InFlight == 0 && !retrying[g.Name] {
				g.Status, changed = GroupDone, true
			}
		}
		failed -= c.FailedBeforeResume
		if c.ErrorThreshold != nil && released > 0 && failed*100 > *c.ErrorThreshold*released {
			what := "group " + names[0]
			if len(names) > 1 {
				what = "groups " + strings.Join(names, ", ")
			}
			c.Status = CampaignPaused
			c.PauseReason = fmt.Sprintf("%s: %d of %d failed (%s%%), error threshold %d%%", what, failed, released, pct(failed, released, *c.ErrorThreshold), *c.ErrorThreshold)
			s.log.Warn("campaign paused itself", "campaign", c.ID, "reason", c.PauseReason)
			return s.putCampaignUnder(cl, c)
		}
		if last >= 0 && last+1 < len(c.Groups) {
			g := c.Groups[last]
			gc := g.Counts
			n := gc.Pending + gc.InFlight + gc.Finished + gc.Failed + gc.Canceled
			if gc.Finished*100 >= c.SuccessThreshold*n {
				if changed {
					if err := s.putCampaignUnder(cl, c); err != nil {
						return err
					}
				}
				if err := s.releaseGroup(ctx, c, last+1, cl); err != nil {
					return err
				}
				continue // the new group may be empty: evaluate again
			}
		}
		ended := !c.Continuous || (c.EndTime != nil && !s.now().Before(*c.EndTime))
		if ended && slices.IndexFunc(c.Groups, func(g CampaignGroup) bool { return g.Status != GroupDone }) < 0 {
			now := s.now()
			c.Status, c.FinishedAt, changed = CampaignFinished, &now, true
		}
		if !changed {
			return nil
		}
		return s.putCampaignUnder(cl, c)
	}
}

// retryState is a vehicle's retries in a campaign.
type retryState struct {
	Attempts int                  `json:"attempts"` // retries used (or due)
	Due      int64                `json:"due"`      // Unix nanoseconds; 0: none due
	Group    string               `json:"group"`
	Install  []resolver.PackageID `json:"install"`
}

func retryKey(campaign, vin string) []byte { return []byte(pCampRetry + campaign + "/" + vin) }

// retryable tells whether a failed result code may be retried.
func retryable(code int) bool {
	return code != wire.ResultUserDeclined && code != wire.ResultSoftwareBlacklisted && code != wire.ResultOldVersion
}

// campaignFailed is the install report's part of campaigns, in the report's transaction: a failure
// with a retryable code schedules a retry when the campaign has attempts left for the vehicle. Once
// committed, the campaign's gates are evaluated.
func (s *Service) campaignReported(t store.Txn, vin string, u *Update, failedCode *int) error {
	r, ok := s.request(u.RequestID)
	if !ok || r.CampaignID == "" {
		return nil
	}
	c, ok := s.cachedCampaign(r.CampaignID)
	if !ok {
		return nil
	}
	onCommit(t, func() { s.kickGates(c.ID) })
	if failedCode == nil || c.Retry == nil || !retryable(*failedCode) || c.Status == CampaignAborted {
		return nil
	}
	var st retryState
	v, err := t.Get(retryKey(c.ID, vin))
	if err == nil {
		if err := json.Unmarshal(v, &st); err != nil {
			return err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if st.Attempts >= c.Retry.Attempts {
		return nil
	}
	st.Attempts++
	st.Due = nanos(s.now().Add(time.Duration(c.Retry.DelaySeconds) * time.Second))
	st.Group, st.Install = r.Group, u.Install
	return t.Set(retryKey(c.ID, vin), encode(&st))
}

// retryingGroups returns the groups of the campaign that have retries due.
func (s *Service) retryingGroups(campaign string) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(pCampRetry+campaign+"/"), func(_, v []byte) error {
			var st retryState
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
			if st.Due != 0 {
				out[st.Group] = true
			}
			return nil
		})
	})
	return out, err
}

// queueRetries queues, per group, one request for the campaign's vehicles whose retry is due.
func (s *Service) queueRetries(ctx context.Context, c Campaign, cl *heldLock) error {
	now := nanos(s.now())
	byGroup := map[string][]resolver.Target{}
	err := s.db.View(func(t store.Txn) error {
		pfx := []byte(pCampRetry + c.ID + "/")
		return t.Iterate(pfx, func(k, v []byte) error {
			var st retryState
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
			if st.Due != 0 && st.Due <= now {
				byGroup[st.Group] = append(byGroup[st.Group], resolver.Target{VIN: string(k[len(pfx):]), Install: st.Install})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(byGroup) {
		gi := slices.IndexFunc(c.Groups, func(g CampaignGroup) bool { return g.Name == name })
		if gi < 0 {
			continue
		}
		targets := byGroup[name]
		lk, err := s.lockPackage(ctx, c.PackageID)
		if err != nil {
			return err
		}
		_, err = s.releaseRequest(c, gi, targets, cl, lk, func(nc *Campaign, cur *UpdateRequest) {
			g := &nc.Groups[gi]
			g.Retried += cur.Vehicles
			if g.Status == GroupDone {
				g.Status = GroupReleased
			}
		})
		lk.unlock()
		if err != nil {
			return err
		}
		err = s.update(func(t store.Txn) error {
			for _, tg := range targets {
				var st retryState
				v, err := t.Get(retryKey(c.ID, tg.VIN))
				if err != nil {
					return err
				}
				if err := json.Unmarshal(v, &st); err != nil {
					return err
				}
				st.Due = 0
				if err := t.Set(retryKey(c.ID, tg.VIN), encode(&st)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if c, _ = s.cachedCampaign(c.ID); c.Status != CampaignRunning {
			return nil
		}
	}
	return nil
}

// joinLate adds the vehicles that came to match since the launch to the last group of a continuous
// campaign: members of a scheduled last group, or queued at once when it is released.
func (s *Service) joinLate(ctx context.Context, c Campaign, cl *heldLock) error {
	if c.EndTime != nil && !s.now().Before(*c.EndTime) {
		return nil
	}
	lk, err := s.lockPackage(ctx, c.PackageID)
	if err != nil {
		return err
	}
	defer lk.unlock()
	targets, _, err := s.campaignTargets(ctx, &c)
	if err != nil || len(targets) == 0 {
		return err
	}
	member := map[string]bool{}
	for gi := range c.Groups {
		vins, _, err := s.groupVINs(c.ID, gi)
		if err != nil {
			return err
		}
		for _, v := range vins {
			member[v] = true
		}
	}
	var late []resolver.Target
	for _, tg := range targets {
		if !member[tg.VIN] {
			late = append(late, tg)
		}
	}
	if len(late) == 0 {
		return nil
	}
	gi := len(c.Groups) - 1
	_, chunks, err := s.groupVINs(c.ID, gi)
	if err != nil {
		return err
	}
	vins := make([]string, len(late))
	for i, tg := range late {
		vins[i] = tg.VIN
	}
	wb := s.db.NewBatch()
	if err := appendGroup(wb, c.ID, gi, chunks, vins); err != nil {
		wb.Cancel()
		return err
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	s.log.Info("vehicles joined a continuous campaign", "campaign", c.ID, "group", c.Groups[gi].Name, "vehicles", len(late))
	if c.Groups[gi].Status == GroupScheduled {
		c.Groups[gi].Vehicles += len(late)
		return s.putCampaignUnder(cl, c)
	}
	_, err = s.releaseRequest(c, gi, late, cl, lk, func(nc *Campaign, cur *UpdateRequest) {
		g := &nc.Groups[gi]
		g.Vehicles += len(late)
		if g.Status == GroupDone {
			g.Status = GroupReleased
		}
	})
	return err
}

// RunCampaigns is the scheduler's part of campaigns: for every running campaign, due retries are
// queued, a continuous campaign takes the vehicles that came to match, and the gates are evaluated.
func (s *Service) RunCampaigns(ctx context.Context) error {
	s.mu.RLock()
	var ids []string
	for id, c := range s.camps.byID {
		if c.Status == CampaignRunning {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	sort.Strings(ids)
	var first error
	for _, id := range ids {
		err := func() error {
			cl, err := s.lockCampaign(ctx, id)
			if err != nil {
				return err
			}
			defer cl.unlock()
			c, ok := s.cachedCampaign(id)
			if !ok || c.Status != CampaignRunning {
				return nil
			}
			if c.Retry != nil {
				if err := s.queueRetries(ctx, c, cl); err != nil {
					return err
				}
				c, _ = s.cachedCampaign(id)
			}
			if c.Continuous && c.Status == CampaignRunning {
				return s.joinLate(ctx, c, cl)
			}
			return nil
		}()
		if err == nil {
			err = s.EvaluateCampaign(ctx, id)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("campaign %s: %w", id, err)
		}
	}
	return first
}
