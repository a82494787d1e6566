package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
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

// The login limiter counts failures per account and per client address in one-minute windows.
func TestLoginLimiterWindows(t *testing.T) {
	l := newLoginLimiter(3, time.Minute)
	now := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		assert.Zero(t, l.blocked(now, "ann", "10.0.0.1"))
		l.failed(now, "ann", "10.0.0.1")
	}
	assert.Equal(t, time.Minute, l.blocked(now, "ANN", "10.0.0.2"), "the account is limited from any address")
	assert.Equal(t, 30*time.Second, l.blocked(now.Add(30*time.Second), "bob", "10.0.0.1"), "the address is limited for any account")
	assert.Zero(t, l.blocked(now, "bob", "10.0.0.2"))
	assert.Zero(t, l.blocked(now.Add(time.Minute), "ann", "10.0.0.1"), "a new window")
}
