package auth

// Gateway tokens for hawkBit DDI: a gateway presents one as "Authorization: GatewayToken <token>" and
// may then act for any vehicle (a vehicle itself presents its device token as "TargetToken"). Stored
// like API tokens: only the SHA-256 of the secret is kept.
//
// Key layout (store prefix auth/):
//
//	auth/gateway/<sha256 hex of token>   GatewayToken JSON {id, name, createdAt}

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"sota/errs"
	"sota/store"
)

const (
	gatewayTokenPrefix = "auth/gateway/"
	gatewayTokenScheme = "sotagw_" // gateway tokens start with this; other tokens cannot pass for them
)

// GatewayToken describes a DDI gateway token; the secret is shown once, at creation.
type GatewayToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// CreateGatewayToken mints a gateway token and returns the secret (shown once) and its record. 400 for
// a name longer than 100 characters.
func (a *Service) CreateGatewayToken(name string) (string, GatewayToken, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "gateway"
	}
	if utf8.RuneCountInString(name) > 100 {
		return "", GatewayToken{}, errs.InvalidEntity("Invalid gateway token name: at most 100 characters")
	}
	secret := gatewayTokenScheme + randomString(32)
	tok := GatewayToken{ID: randomString(9), Name: name, CreatedAt: a.now().UTC()}
	err := a.db.Update(func(t store.Txn) error { return putJSON(t, hashKey(gatewayTokenPrefix, secret), tok) })
	return secret, tok, err
}

// GatewayTokens lists the gateway tokens (never the secrets), oldest first.
func (a *Service) GatewayTokens() ([]GatewayToken, error) {
	out := []GatewayToken{}
	err := a.db.View(func(t store.Txn) error {
		return t.Iterate([]byte(gatewayTokenPrefix), func(_, v []byte) error {
			var tok GatewayToken
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

// RevokeGatewayToken deletes the gateway token with this id; 404 missing_token when there is none.
func (a *Service) RevokeGatewayToken(id string) error {
	return a.db.Update(func(t store.Txn) error {
		var key []byte
		err := t.Iterate([]byte(gatewayTokenPrefix), func(k, v []byte) error {
			var tok GatewayToken
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
			return errs.New(errs.NotFound, "missing_token", "Gateway token does not exist")
		}
		return t.Delete(key)
	})
}

// CheckGatewayToken tells whether secret is a live gateway token.
func (a *Service) CheckGatewayToken(secret string) (bool, error) {
	if !strings.HasPrefix(secret, gatewayTokenScheme) || len(secret) > 100 {
		return false, nil
	}
	var ok bool
	err := a.db.View(func(t store.Txn) (err error) {
		ok, err = t.Has(hashKey(gatewayTokenPrefix, secret))
		return err
	})
	return ok, err
}
