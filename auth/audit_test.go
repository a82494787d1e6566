package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"golang.org/x/crypto/bcrypt"

	"sota/errs"
	"sota/internal/storetest"
	"sota/store"
)

// Pages of the audit log, newest first, for every offset and limit over 25 entries (the page keeps only
// the newest offset+limit matches while it scans).
func TestAuditLogPagesNewestFirst(t *testing.T) {
	db, err := storetest.OpenDir(t, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	a := New(db)
	at := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	a.SetClock(func() time.Time { return at })
	for i := 0; i < 25; i++ {
		at = at.Add(time.Second)
		actor := "ann"
		if i%3 == 0 {
			actor = "token:ci"
		}
		require.NoError(t, a.RecordAudit(AuditEntry{Actor: actor, Target: fmt.Sprintf("t%02d", i), Method: "PUT"}))
	}
	all, total, err := a.AuditLog(AuditQuery{Limit: 100})
	require.NoError(t, err)
	require.Equal(t, 25, total)
	require.Len(t, all, 25)
	for i, e := range all {
		assert.Equal(t, fmt.Sprintf("t%02d", 24-i), e.Target)
	}
	for offset := 0; offset <= 26; offset++ {
		for limit := 0; limit <= 7; limit++ {
			page, n, err := a.AuditLog(AuditQuery{Offset: offset, Limit: limit})
			require.NoError(t, err)
			assert.Equal(t, 25, n)
			want := all[min(offset, 25):min(offset+limit, 25)]
			assert.Equalf(t, len(want), len(page), "offset %d limit %d", offset, limit)
			for i := range want {
				assert.Equal(t, want[i].ID, page[i].ID, "offset %d limit %d", offset, limit)
			}
		}
	}
	ci, n, err := a.AuditLog(AuditQuery{Actor: "TOKEN:CI", Limit: 3, Offset: 1})
	require.NoError(t, err)
	assert.Equal(t, 9, n)
	require.Len(t, ci, 3)
	assert.Equal(t, []string{"t21", "t18", "t15"}, []string{ci[0].Target, ci[1].Target, ci[2].Target})
}

// The login limits count failures per account and per client address in the store, over a sliding
// minute: refused attempts are not checked and not counted, a success takes its attempt back, and
// rows whose minute is over are removed.
func TestLoginLimiterWindows(t *testing.T) {
	db, err := storetest.OpenDir(t, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	SetBcryptCost(bcrypt.MinCost)
	defer SetBcryptCost(ProductionBcryptCost)
	a := New(db)
	a.login = newLoginLimiter(3, time.Minute)
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	a.SetClock(func() time.Time { return now })
	_, err = a.CreateAccount("ann", "ann-password", RoleViewer)
	require.NoError(t, err)
	_, err = a.CreateAccount("bob", "bob-password", RoleViewer)
	require.NoError(t, err)
	code := func(user, password, client string) string {
		_, _, err := a.Login(user, password, client)
		if err == nil {
			return "ok"
		}
		e, ok := errs.As(err)
		require.True(t, ok, "%v", err)
		return e.Code
	}
	wait := func(user, client string) int {
		_, _, err := a.Login(user, "whatever", client)
		e, ok := errs.As(err)
		require.True(t, ok, "%v", err)
		require.Equal(t, "too_many_attempts", e.Code)
		return e.Details["retryAfter"].(int)
	}

	assert.Equal(t, "ok", code("ann", "ann-password", "10.0.0.1"), "a success does not count")
	for i := 0; i < 3; i++ {
		assert.Equal(t, "bad_credentials", code("ann", "wrong", "10.0.0.1"))
		now = now.Add(10 * time.Second)
	}
	// failures at 0 s, 10 s and 20 s; now 30 s
	assert.Equal(t, 30, wait("ANN", "10.0.0.2"), "the account is limited from any address until its oldest failure is a minute old")
	assert.Equal(t, 30, wait("bob", "10.0.0.1"), "the address is limited for any account")
	assert.Equal(t, "ok", code("bob", "bob-password", "10.0.0.2"))
	now = now.Add(30 * time.Second) // the first failure has left the window: one more attempt
	assert.Equal(t, "ok", code("ann", "ann-password", "10.0.0.3"))
	assert.Equal(t, "bad_credentials", code("ann", "wrong", "10.0.0.3"))
	assert.Equal(t, 10, wait("ann", "10.0.0.3"), "still three failures within the last minute (10 s, 20 s, 60 s)")

	// rows over a minute old are removed by a later attempt
	rows := func() int {
		n := 0
		require.NoError(t, db.View(func(t store.Txn) error {
			return t.IterateKeys([]byte("auth/limit"), func([]byte) error { n++; return nil })
		}))
		return n
	}
	assert.Equal(t, 2*(2+1), rows(), "ann's, 10.0.0.1's and 10.0.0.3's rows, each with its expiry entry")
	now = now.Add(2 * time.Minute)
	assert.Equal(t, "bad_credentials", code("carl", "wrong", "10.0.0.9"))
	assert.Equal(t, 2*2, rows(), "only carl's and 10.0.0.9's")
}
