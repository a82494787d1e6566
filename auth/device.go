package auth

// Device tokens: an admin mints one per VIN; the device presents it as a Bearer token on every call of
// the device API. Stored like API tokens (auth.go): only the SHA-256 of the secret is kept.
//
// Key layout (store prefix auth/):
//
//	auth/device/<sha256 hex of token>   {vin, createdAt}
//	auth/devicevin/<vin>                sha256 hex of the vehicle's live token (minting again rotates it)

import (
	"errors"
	"strings"
	"time"

	"sota/errs"
	"sota/resolver"
	"sota/store"
)

const (
	deviceTokenPrefix = "auth/device/"
	deviceVINPrefix   = "auth/devicevin/"
	deviceTokenScheme = "sotadev_" // device tokens start with this; API tokens cannot pass for them
)

// DeviceToken is the record of a device token.
type DeviceToken struct {
	VIN       string    `json:"vin"`
	CreatedAt time.Time `json:"createdAt"`
}

// MintDeviceToken creates the device token of a vehicle and returns the secret (shown once). A
// vehicle has one live token: minting again revokes the previous one, and so does deleting the vehicle.
// The vehicle must exist as the minting transaction reads it (400 for a malformed VIN, 404
// missing_vehicle): not in this process's index, which may not know yet of a vehicle created on
// another replica, and not before the transaction, which a concurrent deletion could follow.
func (a *Service) MintDeviceToken(vin string) (string, error) {
	secret := deviceTokenScheme + randomString(32)
	key := hashKey(deviceTokenPrefix, secret)
	var revoked string
	err := a.db.Update(func(t store.Txn) error {
		revoked = ""
		if err := resolver.VehicleCheck().In(t)(vin); err != nil {
			return err
		}
		old, err := t.Get([]byte(deviceVINPrefix + vin))
		if err == nil {
			if err := t.Delete([]byte(deviceTokenPrefix + string(old))); err != nil {
				return err
			}
			revoked = deviceTokenPrefix + string(old)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := putJSON(t, key, DeviceToken{VIN: vin, CreatedAt: a.now().UTC()}); err != nil {
			return err
		}
		return t.Set([]byte(deviceVINPrefix+vin), key[len(deviceTokenPrefix):])
	})
	if err != nil {
		return "", err
	}
	if revoked != "" {
		a.forgetDeviceToken(revoked)
	}
	return secret, nil
}

// ResolverHooks are auth's part of the resolver's cascades: deleting a vehicle deletes its device
// token in the same transaction, so that a vehicle deleted and created again needs a new token; the
// cache forgets the token once the deletion has committed.
func (a *Service) ResolverHooks() resolver.Hooks {
	return resolver.Hooks{VehicleDeleted: store.NewPart(func(t store.Txn) resolver.VehicleHook {
		return func(x *resolver.Tx, vin string) error { return a.revokeDeviceToken(t, x, vin) }
	})}
}

func (a *Service) revokeDeviceToken(t store.Txn, x *resolver.Tx, vin string) error {
	hash, err := t.Get([]byte(deviceVINPrefix + vin))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	key := deviceTokenPrefix + string(hash)
	if err := t.Delete([]byte(key)); err != nil {
		return err
	}
	if err := t.Delete([]byte(deviceVINPrefix + vin)); err != nil {
		return err
	}
	x.AfterCommit(func() { a.forgetDeviceToken(key) })
	return nil
}

// forgetDeviceToken drops a revoked token (its store key) from the cache after the revocation committed.
func (a *Service) forgetDeviceToken(key string) {
	a.devMu.Lock()
	a.devGen++
	a.devTokens.Delete(key)
	a.devMu.Unlock()
}

// DeviceVIN checks a presented device token against the VIN of the request: 401 invalid_token for an
// unknown token, 403 wrong_vehicle for the token of another vehicle.
func (a *Service) DeviceVIN(secret, vin string) error {
	if !strings.HasPrefix(secret, deviceTokenScheme) || len(secret) > 100 {
		return errs.New(errs.Unauthorized, "invalid_token", "Unknown or revoked device token")
	}
	key := hashKey(deviceTokenPrefix, secret)
	var tok DeviceToken
	if v, ok := a.devTokens.Load(string(key)); ok {
		tok.VIN = v.(string)
	} else {
		a.devMu.Lock()
		gen := a.devGen
		a.devMu.Unlock()
		err := a.db.View(func(t store.Txn) error { return getJSON(t, key, &tok) })
		if errors.Is(err, store.ErrNotFound) {
			return errs.New(errs.Unauthorized, "invalid_token", "Unknown or revoked device token")
		}
		if err != nil {
			return err
		}
		a.devMu.Lock()
		if gen == a.devGen { // no rotation committed since the read: the record is live
			a.devTokens.Store(string(key), tok.VIN)
		}
		a.devMu.Unlock()
	}
	if tok.VIN != vin {
		return errs.New(errs.Forbidden, "wrong_vehicle", "This device token belongs to another vehicle")
	}
	return nil
}
