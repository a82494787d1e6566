package auth

// Login limits, shared by every process on the store (replicas): the failures of an account and of a
// client address live in the store, so three replicas allow what one does.
//
// Keys (store prefix auth/):
//
//	auth/limit/a/<sha256 hex of the lower-case username>   the times of the failures within the
//	auth/limit/c/<client address>                          window (JSON array of Unix ns, oldest first)
//	auth/limitx/<expiry, 20 digits Unix ns>/<a|c>/<id>     the row above expires then (purged in order)
//
// An attempt is counted before its password is checked: one transaction reads the account's and the
// address's rows, refuses (429) when either has LoginFailuresPerMinute failures within the last minute,
// and otherwise records the attempt as a failure in both. Concurrent attempts on any replicas are
// serialised by the store, so no more than the limit are ever checked. A login that succeeds takes
// its attempt back in the transaction that opens the session; a process killed in between leaves a
// failure counted, which errs on the safe side. The window slides: at most LoginFailuresPerMinute
// failures in any minute. Rows whose minute is over are removed after later attempts (purgeSoon).

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"sota/errs"
	"sota/store"
)

// LoginFailuresPerMinute is how many failed logins an account, and a client address, may have in a
// minute; beyond it Login refuses without checking the password (bcrypt would otherwise let a guesser
// saturate the CPUs).
const LoginFailuresPerMinute = 10

const (
	limitPrefix    = "auth/limit/"
	limitExpPrefix = "auth/limitx/"
	// limitPurge bounds the expired rows one attempt removes.
	limitPurge = 32
)

// loginLimiter is the limit's parameters; its state is in the store.
type loginLimiter struct {
	max    int
	window time.Duration
	purged atomic.Int64 // Unix ns of this process's last purge
}

func newLoginLimiter(max int, window time.Duration) *loginLimiter {
	return &loginLimiter{max: max, window: window}
}

// limiterKeys are the row ids (under limitPrefix) of an attempt's account and client address.
func limiterKeys(username, client string) []string {
	keys := []string{string(hashKey("a/", strings.ToLower(username)))}
	if client != "" {
		keys = append(keys, "c/"+client)
	}
	return keys
}

func expKey(at time.Time, id string) []byte {
	return fmt.Appendf(nil, "%s%020d/%s", limitExpPrefix, at.UnixNano(), id)
}

// failures reads a row: the failure times, oldest first.
func failures(t store.Txn, id string) ([]int64, error) {
	b, err := t.Get([]byte(limitPrefix + id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var fails []int64
	if err := json.Unmarshal(b, &fails); err != nil {
		return nil, fmt.Errorf("auth: login limit %s: %w", id, err)
	}
	return fails, nil
}

// putFailures replaces a row's failures old by fails, moving its expiry entry along (none when empty).
func (l *loginLimiter) putFailures(t store.Txn, id string, old, fails []int64) error {
	expiry := func(f []int64) time.Time { return time.Unix(0, f[len(f)-1]).Add(l.window) }
	if len(old) > 0 && (len(fails) == 0 || !expiry(old).Equal(expiry(fails))) {
		if err := t.Delete(expKey(expiry(old), id)); err != nil {
			return err
		}
	}
	if len(fails) == 0 {
		return t.Delete([]byte(limitPrefix + id))
	}
	b, _ := json.Marshal(fails)
	if err := t.Set([]byte(limitPrefix+id), b); err != nil {
		return err
	}
	return t.Set(expKey(expiry(fails), id), nil)
}

// recent drops the failures outside the window ending at now.
func (l *loginLimiter) recent(fails []int64, now time.Time) []int64 {
	from := now.Add(-l.window).UnixNano()
	i := 0
	for i < len(fails) && fails[i] <= from {
		i++
	}
	return fails[i:]
}

// purgeSoon removes rows whose window is over, in a transaction of its own (its scan of the expiry
// index would make every concurrent attempt conflict with it), at most once a second per process;
// a failure is left for the next one.
func (l *loginLimiter) purgeSoon(db *store.DB, now time.Time) {
	last := l.purged.Load()
	if now.UnixNano()-last < int64(time.Second) || !l.purged.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	_ = db.Update(func(t store.Txn) error { return l.purge(t, now) })
}

// purge removes up to limitPurge rows whose window is over, oldest first.
func (l *loginLimiter) purge(t store.Txn, now time.Time) error {
	var expired []string
	err := t.IterateKeys([]byte(limitExpPrefix), func(k []byte) error {
		rest := string(k[len(limitExpPrefix):])
		at, _, ok := strings.Cut(rest, "/")
		n, err := strconv.ParseInt(at, 10, 64)
		if !ok || err != nil {
			expired = append(expired, rest) // not ours: remove
		} else if n > now.UnixNano() || len(expired) == limitPurge {
			return errStop
		} else {
			expired = append(expired, rest)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	for _, rest := range expired {
		if err := t.Delete([]byte(limitExpPrefix + rest)); err != nil {
			return err
		}
		_, id, _ := strings.Cut(rest, "/")
		fails, err := failures(t, id)
		if err != nil {
			return err
		}
		if len(fails) > 0 && len(l.recent(fails, now)) == 0 {
			if err := t.Delete([]byte(limitPrefix + id)); err != nil {
				return err
			}
		}
	}
	return nil
}

// reserve counts an attempt at now as a failure of each row unless one of them is at the limit; then
// it writes nothing and returns how long the caller must wait.
func (l *loginLimiter) reserve(t store.Txn, now time.Time, ids []string) (time.Duration, error) {
	var wait time.Duration
	olds := make([][]int64, len(ids))
	for i, id := range ids {
		fails, err := failures(t, id)
		if err != nil {
			return 0, err
		}
		olds[i] = fails
		if r := l.recent(fails, now); len(r) >= l.max {
			// free again when the oldest failure that keeps it at the limit leaves the window
			if d := time.Unix(0, r[len(r)-l.max]).Add(l.window).Sub(now); d > wait {
				wait = d
			}
		}
	}
	if wait > 0 {
		return wait, nil
	}
	for i, id := range ids {
		fails := append(l.recent(slices.Clone(olds[i]), now), now.UnixNano())
		if err := l.putFailures(t, id, olds[i], fails); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// refund takes back the attempt reserve counted at at (the login succeeded).
func (l *loginLimiter) refund(t store.Txn, at time.Time, ids []string) error {
	for _, id := range ids {
		old, err := failures(t, id)
		if err != nil {
			return err
		}
		i := slices.Index(old, at.UnixNano())
		if i < 0 {
			continue
		}
		if err := l.putFailures(t, id, old, slices.Delete(slices.Clone(old), i, i+1)); err != nil {
			return err
		}
	}
	return nil
}

// errTooManyAttempts is 429 too_many_attempts with the whole seconds to wait in "retryAfter".
func errTooManyAttempts(wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	e := errs.New(errs.TooManyRequests, "too_many_attempts", "Too many failed logins: try again in %d s", secs)
	e.Details = map[string]any{"retryAfter": secs}
	return e
}
