package policy

import (
	"encoding/json"
	"errors"

	"sota/errs"
	"sota/store"
)

// Environments are the policy server's environments, each with its own master table.
var Environments = []string{"production", "staging"}

// Key layout of the policy server in the store:
//
//	policy/tables/<environment>   the master table as JSON ({"policy_table": …}); absent = DefaultMaster()
const tableKeyPrefix = "policy/tables/"

// Service is the policy server: a master table per environment, persisted in the store, and the
// PTU answer to a head unit's snapshot.
type Service struct {
	db *store.DB
}

// NewService returns the policy server over db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// With returns a handle whose first committing write also runs h in its transaction (the audit-log
// entry of the API call that makes the change); nil h returns s.
func (s *Service) With(h *store.Hook) *Service {
	if h == nil {
		return s
	}
	return &Service{db: s.db.With(h)}
}

func checkEnv(env string) error {
	for _, e := range Environments {
		if e == env {
			return nil
		}
	}
	return errs.New(errs.NotFound, "unknown_environment", "Unknown policy environment %q (production or staging)", env)
}

// Master returns the master table of env: the stored one, or DefaultMaster() before any PUT.
func (s *Service) Master(env string) (Table, error) {
	if err := checkEnv(env); err != nil {
		return nil, err
	}
	var t Table
	err := s.db.View(func(tx store.Txn) error {
		var err error
		t, err = s.load(tx, env)
		return err
	})
	return t, err
}

func (s *Service) load(tx store.Txn, env string) (Table, error) {
	b, err := tx.Get([]byte(tableKeyPrefix + env))
	if errors.Is(err, store.ErrNotFound) {
		return DefaultMaster(), nil
	}
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// PutMaster replaces the master table of env. The table must validate as a PTU (the master is
// what PTUs are cut from); otherwise nothing changes and the error is 406 invalid_policy_table
// carrying the validation "errors". The report (with warnings) is returned either way.
func (s *Service) PutMaster(env string, t Table) (Report, error) {
	if err := checkEnv(env); err != nil {
		return Report{}, err
	}
	r := Validate(Update, t)
	if !r.Valid {
		return r, errs.New(errs.Unacceptable, "invalid_policy_table", "Policy table failed validation with %d errors", len(r.Errors)).
			With("errors", r.Errors)
	}
	b, err := json.Marshal(Table{"policy_table": t.Body()})
	if err != nil {
		return r, err
	}
	return r, s.db.Update(func(tx store.Txn) error {
		return tx.Set([]byte(tableKeyPrefix+env), b)
	})
}

// Answer builds the PTU for a snapshot from env's master table (see BuildPTU).
func (s *Service) Answer(env string, pts Table) (Table, error) {
	if err := CheckSnapshot(pts); err != nil {
		return nil, err
	}
	master, err := s.Master(env)
	if err != nil {
		return nil, err
	}
	return BuildPTU(master, pts)
}
