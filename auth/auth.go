// Package auth owns accounts, roles, sessions, API tokens, device tokens, login limits and the audit
// log: the authentication and authorisation rules the API and the CLI call.
package auth

// Accounts, sessions and API tokens.
//
// Key layout (store prefix auth/):
//
//	auth/account/<lower-case username>   account JSON {username, hash (bcrypt), createdAt}
//	auth/session/<sha256 hex of id>      session JSON {username, csrf, createdAt, expiresAt}
//	auth/token/<sha256 hex of token>     API token JSON {id, name, username, createdAt}
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

// Account is one admin account. Every account may use the whole admin API.
type Account struct {
	Username  string    `json:"username"`
	Hash      []byte    `json:"hash,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Session is a logged-in browser.
type Session struct {
	Username  string    `json:"username"`
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// APIToken describes a Bearer token for scripts; the secret itself is shown once, at creation.
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"createdAt"`
}

// Service holds accounts, sessions and API tokens in the store.
type Service struct {
	db  *store.DB
	now func() time.Time

	// devTokens caches the VIN of each live device token by its store key: every device call checks
	// its token. A revocation (MintDeviceToken, a deleted vehicle) bumps devGen and drops the revoked
	// token after its commit; a lookup caches what it read only when no revocation happened since it
	// began, so a revoked token is never cached again.
	devTokens sync.Map // store key -> VIN
	devMu     sync.Mutex
	devGen    uint64
}

// New returns the authentication service over db.
func New(db *store.DB) *Service { return &Service{db: db, now: time.Now} }

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
	if _, err := a.CreateAccount(username, password); err != nil {
		return "", false, err
	}
	return generated, true, nil
}

var errStop = errors.New("stop")

// CreateAccount adds an account; 409 duplicate_entry when the name is taken (case-insensitively).
func (a *Service) CreateAccount(username, password string) (Account, error) {
	if err := validateCredentials(username, password); err != nil {
		return Account{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return Account{}, err
	}
	acc := Account{Username: username, Hash: hash, CreatedAt: a.now().UTC()}
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
			out = append(out, acc)
			return nil
		})
	})
	return out, err
}

// SetPassword replaces an account's password and ends its sessions.
func (a *Service) SetPassword(username, password string) error {
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
		return deleteOwned(t, sessionPrefix, acc.Username, func(v []byte) string {
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
		owner := func(v []byte) string {
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
func deleteOwned(t store.Txn, prefix, username string, owner func([]byte) string) error {
	var keys [][]byte
	err := t.Iterate([]byte(prefix), func(k, v []byte) error {
		if strings.EqualFold(owner(v), username) {
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
// and the session. Bad credentials are 401 bad_credentials, whichever part was wrong.
func (a *Service) Login(username, password string) (string, Session, error) {
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
	s := Session{Username: acc.Username, CSRF: randomString(32), CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}
	err = a.db.Update(func(t store.Txn) error {
		if err := a.purgeExpired(t); err != nil {
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

// CreateToken mints an API token for username; the secret is returned once and only its hash is kept.
func (a *Service) CreateToken(username, name string) (string, APIToken, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "token"
	}
	if utf8.RuneCountInString(name) > 100 {
		return "", APIToken{}, errs.InvalidEntity("Invalid token name: at most 100 characters")
	}
	secret := tokenScheme + randomString(32)
	tok := APIToken{ID: randomString(9), Name: name, Username: username, CreatedAt: a.now().UTC()}
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
	return tok, err == nil, err
}

// Tokens lists every API token (never the secrets), sorted by creation time.
func (a *Service) Tokens() ([]APIToken, error) {
	out := []APIToken{}
	err := a.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(tokenPrefix), func(_, v []byte) error {
			var tok APIToken
			if err := json.Unmarshal(v, &tok); err != nil {
				return err
			}
			out = append(out, tok)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// RevokeToken deletes the API token with this id; 404 missing_token when there is none.
func (a *Service) RevokeToken(id string) error {
	return a.db.Update(func(t store.Txn) error {
		var key []byte
		err := t.Iterate([]byte(tokenPrefix), func(k, v []byte) error {
			var tok APIToken
			if json.Unmarshal(v, &tok) == nil && tok.ID == id {
				key = append([]byte(nil), k...)
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
	return err
}
