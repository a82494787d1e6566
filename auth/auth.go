// Package auth owns accounts, roles, sessions, API tokens, device tokens, login limits and the audit
// log: the authentication and authorisation rules the API and the CLI call.
package auth

// Accounts, sessions and API tokens.
//
// Key layout (store prefix auth/):
//
//	auth/account/<lower-case username>   account JSON {username, role, hash (bcrypt), createdAt}
//	auth/session/<sha256 hex of id>      session JSON {username, role, csrf, createdAt, expiresAt}
//	auth/token/<sha256 hex of token>     API token JSON {id, name, username, role, createdAt, expiresAt}
//
// Session ids and API tokens are 256-bit random values; only their SHA-256 is stored, so a copy of the
// store does not hand out live credentials. The CSRF token of a session is stored as is: it is not a
// credential by itself.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"sota/errs"
	"sota/store"
)

// SessionTTL is how long a session lives after login.
const SessionTTL = 12 * time.Hour

// ProductionBcryptCost is the work factor of stored password hashes.
const ProductionBcryptCost = bcrypt.DefaultCost

// bcryptCost is the cost in use (tests lower it with SetBcryptCost to keep the race-detector run short).
var bcryptCost = ProductionBcryptCost

// SetBcryptCost sets the work factor of new password hashes; tests lower it, the server never calls it.
func SetBcryptCost(cost int) { bcryptCost = cost }

const (
	accountPrefix = "auth/account/"
	sessionPrefix = "auth/session/"
	tokenPrefix   = "auth/token/"
	tokenScheme   = "sota_" // API tokens start with this, so a leaked one is recognisable
)

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// Account is one admin account; its role decides what it may do. Accounts stored before roles
// existed read as admin (they could do everything then).
type Account struct {
	Username  string    `json:"username"`
	Role      Role      `json:"role"`
	Hash      []byte    `json:"hash,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Session is a logged-in browser, with the role its account had at login.
type Session struct {
	Username  string    `json:"username"`
	Role      Role      `json:"role"`
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// APIToken describes a Bearer token for scripts; the secret itself is shown once, at creation. Its
// role is at most its creator's; after ExpiresAt (when set) it is refused.
type APIToken struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Username  string     `json:"username"`
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// legacyRole is the role of a record written before roles existed.
func legacyRole(r Role) Role {
	if r == RoleNone {
		return RoleAdmin
	}
	return r
}

// Service holds accounts, sessions and API tokens in the store.
type Service struct {
	*service
	db *store.DB // a handle from With writes through store.DB.With
}

// With returns a handle on the same service whose first committing write also runs h in its
// transaction (the audit-log entry of the API call that makes the change); nil h returns s.
func (a *Service) With(h *store.Hook) *Service {
	if h == nil {
		return a
	}
	return &Service{service: a.service, db: a.db.With(h)}
}

// service is the state every handle of one Service shares.
type service struct {
	now   func() time.Time
	login *loginLimiter

	// devTokens caches the VIN of each live device token by its store key: every device call checks
	// its token. A revocation (MintDeviceToken, a deleted vehicle) bumps devGen and drops the revoked
	// token after its commit; a lookup caches what it read only when no revocation happened since it
	// began, so a revoked token is never cached again.
	devTokens sync.Map // store key -> VIN
	devMu     sync.Mutex
	devGen    uint64
}

// New returns the authentication service over db. With several processes on one store (replicas),
// the device tokens another process revokes or re-mints reach this one's cache through the store's
// change feed (store.DB.Subscribe), within its poll interval. Sessions and API tokens are not cached:
// every request reads them.
func New(db *store.DB) *Service {
	a := &Service{db: db, service: &service{now: time.Now, login: newLoginLimiter(LoginFailuresPerMinute, time.Minute)}}
	db.Subscribe(deviceTokenPrefix, func(keys [][]byte) error {
		for _, k := range keys {
			a.forgetDeviceToken(string(k))
		}
		if keys == nil { // the feed cannot tell which: forget them all
			a.devMu.Lock()
			a.devGen++
			a.devTokens.Clear()
			a.devMu.Unlock()
		}
		return nil
	})
	return a
}

// SetClock replaces the clock that decides expiry (tests move it forward).
func (a *Service) SetClock(now func() time.Time) { a.now = now }

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never happens on a working system
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashKey(prefix, secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return []byte(prefix + hex.EncodeToString(sum[:]))
}

func validateCredentials(username, password string) error {
	if !usernameRE.MatchString(username) {
		return errs.InvalidEntity("Invalid username: 1-64 letters, digits or . _ @ -")
	}
	if utf8.RuneCountInString(password) < 8 || len(password) > 72 {
		return errs.InvalidEntity("Invalid password: 8 to 72 bytes")
	}
	return nil
}

// dummyHash is compared against when the username is unknown, so both failures take as long.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password of anyone"), bcrypt.DefaultCost)

// GeneratePassword returns a new random password (18 random bytes, URL-safe base64).
func GeneratePassword() string { return randomString(18) }

// Bootstrap creates the first admin account when the store has none. With an empty password one is
// generated and returned (the caller prints it once). It does nothing when an account exists.
func (a *Service) Bootstrap(username, password string) (generated string, created bool, err error) {
	var any bool
	err = a.db.View(func(t store.Txn) error {
		return t.IterateKeys([]byte(accountPrefix), func([]byte) error { any = true; return errStop })
	})
	if err != nil && !errors.Is(err, errStop) {
		return "", false, err
	}
	if any {
		return "", false, nil
	}
	if password == "" {
		generated = GeneratePassword()
		password = generated
	}
	if _, err := a.CreateAccount(username, password, RoleAdmin); err != nil {
		return "", false, err
	}
	return generated, true, nil
}

var errStop = errors.New("stop")

// CreateAccount adds an account with a role; 409 duplicate_entry when the name is taken
// (case-insensitively).
func (a *Service) CreateAccount(username, password string, role Role) (Account, error) {
	if err := validateCredentials(username, password); err != nil {
		return Account{}, err
	}
	if role < RoleViewer || role > RoleAdmin {
		return Account{}, errs.InvalidEntity("Invalid role: admin, operator or viewer")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return Account{}, err
	}
	acc := Account{Username: username, Role: role, Hash: hash, CreatedAt: a.now().UTC()}
	key := []byte(accountPrefix + strings.ToLower(username))
	err = a.db.Update(func(t store.Txn) error {
		if ok, err := t.Has(key); err != nil {
			return err
		} else if ok {
			return errs.New(errs.Conflict, "duplicate_entry", "Account already exists")
		}
		return putJSON(t, key, acc)
	})
	acc.Hash = nil
	return acc, err
}

// Accounts lists the accounts sorted by name, without their hashes.
func (a *Service) Accounts() ([]Account, error) {
	out := []Account{}
	err := a.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(accountPrefix), func(_, v []byte) error {
			var acc Account
			if err := json.Unmarshal(v, &acc); err != nil {
				return err
			}
			acc.Hash = nil
			acc.Role = legacyRole(acc.Role)
			out = append(out, acc)
			return nil
		})
	})
	return out, err
}

// SetPassword replaces an account's password and ends the account's sessions except the caller's own
// (the one that made the change). Only an admin may set another account's password (403 forbidden).
func (a *Service) SetPassword(by Principal, username, password string) error {
	if !strings.EqualFold(by.Username, username) && !by.Allows(RoleAdmin) {
		return ErrForbidden("Only an admin may set another account's password")
	}
	if err := validateCredentials(username, password); err != nil {
		if usernameRE.MatchString(username) {
			return err
		}
		return missingAccount()
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return err
	}
	key := []byte(accountPrefix + strings.ToLower(username))
	return a.db.Update(func(t store.Txn) error {
		var acc Account
		if err := getAccount(t, username, &acc); err != nil {
			return err
		}
		acc.Hash = hash
		if err := putJSON(t, key, acc); err != nil {
			return err
		}
		var keep []byte
		if by.SessionID != "" && strings.EqualFold(by.Username, acc.Username) {
			keep = hashKey(sessionPrefix, by.SessionID)
		}
		return deleteOwned(t, sessionPrefix, acc.Username, func(k, v []byte) string {
			if keep != nil && string(k) == string(keep) {
				return ""
			}
			var s Session
			_ = json.Unmarshal(v, &s)
			return s.Username
		})
	})
}

// DeleteAccount removes an account with its sessions and tokens. The last account cannot go (409).
func (a *Service) DeleteAccount(username string) error {
	key := []byte(accountPrefix + strings.ToLower(username))
	return a.db.Update(func(t store.Txn) error {
		var acc Account
		if err := getAccount(t, username, &acc); err != nil {
			return err
		}
		n := 0
		if err := t.IterateKeys([]byte(accountPrefix), func([]byte) error { n++; return nil }); err != nil {
			return err
		}
		if n <= 1 {
			return errs.New(errs.Conflict, "last_account", "The last account cannot be deleted")
		}
		if err := t.Delete(key); err != nil {
			return err
		}
		owner := func(_, v []byte) string {
			var o struct {
				Username string `json:"username"`
			}
			_ = json.Unmarshal(v, &o)
			return o.Username
		}
		if err := deleteOwned(t, sessionPrefix, acc.Username, owner); err != nil {
			return err
		}
		return deleteOwned(t, tokenPrefix, acc.Username, owner)
	})
}

func missingAccount() error {
	return errs.New(errs.NotFound, "missing_account", "Account does not exist")
}

// deleteOwned deletes every record under prefix whose owner (as read by owner) is username.
func deleteOwned(t store.Txn, prefix, username string, owner func(k, v []byte) string) error {
	var keys [][]byte
	err := t.Iterate([]byte(prefix), func(k, v []byte) error {
		if strings.EqualFold(owner(k, v), username) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Login checks the credentials and opens a session: it returns the session id (the cookie value)
// and the session. Bad credentials are 401 bad_credentials, whichever part was wrong. Failures are
// limited per account and per client address (client, e.g. the remote IP): past
// LoginFailuresPerMinute in a minute, Login answers 429 too_many_attempts (with the seconds to wait
// in the error's "retryAfter" detail) without checking the password. The counts are in the store
// (limiter.go), shared by every process on it.
func (a *Service) Login(username, password, client string) (string, Session, error) {
	at, ids := a.now(), limiterKeys(username, client)
	var wait time.Duration
	err := a.db.Update(func(t store.Txn) error {
		var err error
		wait, err = a.login.reserve(t, at, ids)
		return err
	})
	if err != nil {
		return "", Session{}, err
	}
	if wait > 0 {
		return "", Session{}, errTooManyAttempts(wait)
	}
	a.login.purgeSoon(a.db, at)
	// the attempt counts as a failure unless the session's transaction takes it back
	return a.checkLogin(username, password, func(t store.Txn) error { return a.login.refund(t, at, ids) })
}

func (a *Service) checkLogin(username, password string, succeeded func(store.Txn) error) (string, Session, error) {
	bad := errs.New(errs.Unauthorized, "bad_credentials", "Invalid username or password")
	var acc Account
	err := a.db.View(func(t store.Txn) error {
		return getAccount(t, username, &acc)
	})
	if errs.Is(err, "missing_account") || !usernameRE.MatchString(username) {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return "", Session{}, bad
	}
	if err != nil {
		return "", Session{}, err
	}
	if bcrypt.CompareHashAndPassword(acc.Hash, []byte(password)) != nil {
		return "", Session{}, bad
	}
	id := randomString(32)
	now := a.now().UTC()
	s := Session{Username: acc.Username, Role: legacyRole(acc.Role), CSRF: randomString(32), CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}
	err = a.db.Update(func(t store.Txn) error {
		if err := a.purgeExpired(t); err != nil {
			return err
		}
		if err := succeeded(t); err != nil {
			return err
		}
		return putJSON(t, hashKey(sessionPrefix, id), s)
	})
	if err != nil {
		return "", Session{}, err
	}
	return id, s, nil
}

// purgeExpired drops expired sessions (run at each login, so the set stays small without a timer).
func (a *Service) purgeExpired(t store.Txn) error {
	now := a.now()
	var keys [][]byte
	err := t.Iterate([]byte(sessionPrefix), func(k, v []byte) error {
		var s Session
		if json.Unmarshal(v, &s) != nil || now.After(s.ExpiresAt) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Session returns the live session with this id, or false.
func (a *Service) Session(id string) (Session, bool, error) {
	if id == "" || len(id) > 100 {
		return Session{}, false, nil
	}
	var s Session
	err := a.db.View(func(t store.Txn) error { return getJSON(t, hashKey(sessionPrefix, id), &s) })
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, err
	}
	if a.now().After(s.ExpiresAt) {
		return Session{}, false, nil
	}
	s.Role = legacyRole(s.Role)
	return s, true, nil
}

// Logout ends the session with this id (nothing happens for an unknown id).
func (a *Service) Logout(id string) error {
	if id == "" || len(id) > 100 {
		return nil
	}
	return a.db.Update(func(t store.Txn) error { return t.Delete(hashKey(sessionPrefix, id)) })
}

// CheckCSRF reports whether token is the session's CSRF token (constant time).
func (s Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

// CreateToken mints an API token for username with the account's role and no expiry (the CLI's and
// the tests' way to get a token); the secret is returned once and only its hash is kept.
func (a *Service) CreateToken(username, name string) (string, APIToken, error) {
	var acc Account
	if err := a.db.View(func(t store.Txn) error { return getAccount(t, username, &acc) }); err != nil {
		return "", APIToken{}, err
	}
	return a.MintToken(Principal{Username: acc.Username, Role: legacyRole(acc.Role)}, name, RoleNone, nil)
}

// MintToken mints an API token for the caller's account: role RoleNone means the caller's own role, a
// role above it is 403 forbidden, an expiry in the past invalid_entity. The secret is returned once and
// only its hash is kept.
func (a *Service) MintToken(by Principal, name string, role Role, expiresAt *time.Time) (string, APIToken, error) {
	if by.Username == "" {
		return "", APIToken{}, errs.New(errs.Unauthorized, "not_authenticated", "Log in to create an API token")
	}
	if role == RoleNone {
		role = by.Role
	}
	if role > by.Role {
		return "", APIToken{}, ErrForbidden("A token's role cannot be higher than its creator's (%s)", by.Role)
	}
	if expiresAt != nil {
		if !expiresAt.After(a.now()) {
			return "", APIToken{}, errs.InvalidEntity("expiresAt must be in the future")
		}
		e := expiresAt.UTC()
		expiresAt = &e
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "token"
	}
	if utf8.RuneCountInString(name) > 100 {
		return "", APIToken{}, errs.InvalidEntity("Invalid token name: at most 100 characters")
	}
	secret := tokenScheme + randomString(32)
	tok := APIToken{ID: randomString(9), Name: name, Username: by.Username, Role: role, CreatedAt: a.now().UTC(), ExpiresAt: expiresAt}
	err := a.db.Update(func(t store.Txn) error { return putJSON(t, hashKey(tokenPrefix, secret), tok) })
	return secret, tok, err
}

// Token returns the API token for a presented secret, or false.
func (a *Service) Token(secret string) (APIToken, bool, error) {
	if !strings.HasPrefix(secret, tokenScheme) || len(secret) > 100 {
		return APIToken{}, false, nil
	}
	var tok APIToken
	err := a.db.View(func(t store.Txn) error { return getJSON(t, hashKey(tokenPrefix, secret), &tok) })
	if errors.Is(err, store.ErrNotFound) {
		return APIToken{}, false, nil
	}
	if err != nil {
		return APIToken{}, false, err
	}
	if tok.ExpiresAt != nil && !a.now().Before(*tok.ExpiresAt) {
		return APIToken{}, false, nil
	}
	tok.Role = legacyRole(tok.Role)
	return tok, true, nil
}

// Tokens lists the API tokens the caller may see (never the secrets): an admin every token, anyone
// else their account's; sorted by creation time.
func (a *Service) Tokens(by Principal) ([]APIToken, error) {
	out := []APIToken{}
	err := a.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(tokenPrefix), func(_, v []byte) error {
			var tok APIToken
			if err := json.Unmarshal(v, &tok); err != nil {
				return err
			}
			if !by.Allows(RoleAdmin) && !strings.EqualFold(tok.Username, by.Username) {
				return nil
			}
			tok.Role = legacyRole(tok.Role)
			out = append(out, tok)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// RevokeToken deletes the API token with this id; 404 missing_token when there is none, 403
// forbidden when it is another account's and the caller is not an admin.
func (a *Service) RevokeToken(by Principal, id string) error {
	return a.db.Update(func(t store.Txn) error {
		var key []byte
		var owner string
		err := t.Iterate([]byte(tokenPrefix), func(k, v []byte) error {
			var tok APIToken
			if json.Unmarshal(v, &tok) == nil && tok.ID == id {
				key = append([]byte(nil), k...)
				owner = tok.Username
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if key == nil {
			return errs.New(errs.NotFound, "missing_token", "API token does not exist")
		}
		if !by.Allows(RoleAdmin) && !strings.EqualFold(owner, by.Username) {
			return ErrForbidden("Only an admin may revoke another account's token")
		}
		return t.Delete(key)
	})
}

func putJSON(t store.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.Set(key, b)
}

// getJSON reads a record; a missing key is store.ErrNotFound.
func getJSON(t store.Txn, key []byte, v any) error {
	b, err := t.Get(key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// getAccount reads an account; 404 missing_account when there is none.
func getAccount(t store.Txn, username string, acc *Account) error {
	err := getJSON(t, []byte(accountPrefix+strings.ToLower(username)), acc)
	if errors.Is(err, store.ErrNotFound) {
		return missingAccount()
	}
	acc.Role = legacyRole(acc.Role)
	return err
}
