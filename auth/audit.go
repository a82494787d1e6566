package auth

// The audit log: one entry per state-changing admin call, written in the transaction of the change
// (through a store.Hook on the domain's handle, see Audit), append-only.
//
// Key layout:
//
//	auth/audit/<unix nanoseconds, 20 digits>-<8 hex random>   entry JSON (the key's tail is the id)

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"sota/store"
)

const auditPrefix = "auth/audit/"

// AuditEntry is one record of the audit log.
type AuditEntry struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"` // the account name for a session, token:<name> for an API token
	Role    Role      `json:"role"`
	Method  string    `json:"method"`
	Route   string    `json:"route"`  // the route pattern, e.g. /api/v1/vehicles/:vin
	Target  string    `json:"target"` // the entity changed: a VIN, name/version, a filter's name…
	Status  int       `json:"status"`
	Summary string    `json:"summary"`
}

// Audit is the audit entry of one call in progress and the hook that appends it to the audit log in
// the transaction of the change: the caller gives Hook() to the With of the domain handle that makes
// the change (resolver, engine, policy, signing or auth itself), so the HTTP layer never names the
// store. Entry may still be changed until that domain call is made.
type Audit struct {
	Entry AuditEntry
	hook  *store.Hook
}

// StartAudit prepares the audit entry e; it is written, stamped with the time of that transaction, by
// the first committing write through a handle given its Hook, or by RecordAudit.
func (a *Service) StartAudit(e AuditEntry) *Audit {
	c := &Audit{Entry: e}
	c.hook = store.NewHook(func(t store.Txn) error { return a.appendAudit(t, c.Entry) })
	return c
}

// Hook is the hook for a domain handle's With; nil (no audit) for a nil *Audit.
func (c *Audit) Hook() *store.Hook {
	if c == nil {
		return nil
	}
	return c.hook
}

// Written tells whether the entry went into the audit log with a committed change.
func (c *Audit) Written() bool { return c != nil && c.hook.Committed() }

// RecordAudit appends e in a transaction of its own: for changes that are not one store transaction
// (a bulk import's batches).
func (a *Service) RecordAudit(e AuditEntry) error {
	return a.db.Update(func(t store.Txn) error { return a.appendAudit(t, e) })
}

func (a *Service) appendAudit(t store.Txn, e AuditEntry) error {
	e.At = a.now().UTC()
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return err
	}
	e.ID = fmt.Sprintf("%020d-%s", e.At.UnixNano(), hex.EncodeToString(r[:]))
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return t.Set([]byte(auditPrefix+e.ID), b)
}

// AuditQuery selects entries: From/To bound At (inclusive; zero is open), Actor matches the actor
// exactly, Target the target or any target under it ("nav" matches "nav/1.0.0"); both ignore case.
type AuditQuery struct {
	From, To      time.Time
	Actor, Target string
	Limit, Offset int
}

// AuditLog returns a page of the matching entries, newest first, and how many match in all.
func (a *Service) AuditLog(q AuditQuery) ([]AuditEntry, int, error) {
	keep := q.Offset + q.Limit // the newest keep entries are all the page can need
	ring := make([]AuditEntry, 0, min(keep, 1024))
	total := 0
	err := a.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(auditPrefix), func(_, v []byte) error {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if !q.match(e) {
				return nil
			}
			total++
			if keep == 0 {
				return nil
			}
			if len(ring) < keep {
				ring = append(ring, e)
			} else {
				ring[(total-1)%keep] = e
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, err
	}
	// ring holds the last len(ring) matches; entry i from the newest is at (total-1-i) mod keep
	out := []AuditEntry{}
	for i := q.Offset; i < len(ring) && i < q.Offset+q.Limit; i++ {
		idx := total - 1 - i
		if len(ring) == keep {
			idx %= keep
		}
		out = append(out, ring[idx])
	}
	return out, total, nil
}

func (q AuditQuery) match(e AuditEntry) bool {
	if !q.From.IsZero() && e.At.Before(q.From) || !q.To.IsZero() && e.At.After(q.To) {
		return false
	}
	if q.Actor != "" && !strings.EqualFold(q.Actor, e.Actor) {
		return false
	}
	if q.Target != "" && !strings.EqualFold(q.Target, e.Target) &&
		!(len(e.Target) > len(q.Target) && strings.EqualFold(e.Target[:len(q.Target)], q.Target) && e.Target[len(q.Target)] == '/') {
		return false
	}
	return true
}
