package auth

import (
	"encoding/json"
	"fmt"
	"strings"

	"sota/errs"
)

// Role decides what an account or API token may do: admin ⊃ operator ⊃ viewer.
type Role int

const (
	// RoleNone is no role (no credentials).
	RoleNone Role = iota
	// RoleViewer may read (GET) and run calls that change nothing (validate, dry run).
	RoleViewer
	// RoleOperator may also change the fleet, filters, packages, requests, campaigns, data plans and
	// policy tables.
	RoleOperator
	// RoleAdmin may do everything: accounts, other accounts' tokens, the audit log, webhooks.
	RoleAdmin
)

var roleNames = [...]string{RoleNone: "", RoleViewer: "viewer", RoleOperator: "operator", RoleAdmin: "admin"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads "admin", "operator" or "viewer" (any case); anything else is invalid_entity.
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if r != 0 && strings.EqualFold(s, n) {
			return Role(r), nil
		}
	}
	return RoleNone, errs.InvalidEntity("Invalid role %q: admin, operator or viewer", s)
}

// MarshalJSON writes the role's name.
func (r Role) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// UnmarshalJSON reads a role's name; "" is RoleNone (records written before roles existed).
func (r *Role) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errs.InvalidEntity("Invalid role: want a string")
	}
	if s == "" {
		*r = RoleNone
		return nil
	}
	p, err := ParseRole(s)
	*r = p
	return err
}

// Principal is who makes a call: an account by its session, or an API token of an account.
type Principal struct {
	Username  string
	Role      Role
	Token     *APIToken // set when authenticated by an API token
	SessionID string    // set when authenticated by a session cookie (the cookie value)
}

// Actor names the principal in the audit log: the account name for a session, token:<name> for a token.
func (p Principal) Actor() string {
	if p.Token != nil {
		return "token:" + p.Token.Name
	}
	return p.Username
}

// Allows reports whether the principal's role is at least r.
func (p Principal) Allows(r Role) bool { return p.Role >= r }

// ErrForbidden is the 403 forbidden of a call outside the caller's role.
func ErrForbidden(format string, args ...any) error {
	return errs.New(errs.Forbidden, "forbidden", format, args...)
}
