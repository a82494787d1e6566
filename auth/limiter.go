package auth

import (
	"strings"
	"sync"
	"time"

	"sota/errs"
)

// LoginFailuresPerMinute is how many failed logins an account, and a client address, may have in a
// minute; beyond it Login refuses without checking the password (bcrypt would otherwise let a guesser
// saturate the CPUs).
const LoginFailuresPerMinute = 10

// loginLimiter counts failed logins per account and per client address in fixed windows. It lives in
// the process: a server restart forgets the counts, which only gives a guesser one more window.
type loginLimiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	keys map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

func newLoginLimiter(max int, window time.Duration) *loginLimiter {
	return &loginLimiter{max: max, window: window, keys: map[string]*failWindow{}}
}

func limiterKeys(username, client string) []string {
	keys := []string{"account:" + strings.ToLower(username)}
	if client != "" {
		keys = append(keys, "client:"+client)
	}
	return keys
}

// blocked returns how long the caller must wait before trying again, or 0.
func (l *loginLimiter) blocked(now time.Time, username, client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range limiterKeys(username, client) {
		w, ok := l.keys[k]
		if !ok || now.Sub(w.start) >= l.window {
			continue
		}
		if w.n >= l.max {
			if d := w.start.Add(l.window).Sub(now); d > wait {
				wait = d
			}
		}
	}
	return wait
}

// failed counts a failed login.
func (l *loginLimiter) failed(now time.Time, username, client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) > 100000 { // drop windows that are over, so guessed names cannot grow the map forever
		for k, w := range l.keys {
			if now.Sub(w.start) >= l.window {
				delete(l.keys, k)
			}
		}
	}
	for _, k := range limiterKeys(username, client) {
		w, ok := l.keys[k]
		if !ok || now.Sub(w.start) >= l.window {
			w = &failWindow{start: now}
			l.keys[k] = w
		}
		w.n++
	}
}

// errTooManyAttempts is 429 too_many_attempts with the whole seconds to wait in "retryAfter".
func errTooManyAttempts(wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	e := errs.New(errs.TooManyRequests, "too_many_attempts", "Too many failed logins: try again in %d s", secs)
	e.Details = map[string]any{"retryAfter": secs}
	return e
}
