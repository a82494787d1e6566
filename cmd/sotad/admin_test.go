package main

import (
	"bytes"
	"flag"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
)

// captureStdout collects what --version and the admin commands print.
func captureStdout(t *testing.T) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	old := stdout
	stdout = &b
	t.Cleanup(func() { stdout = old })
	return &b
}

func TestVersionNamesTheBuild(t *testing.T) {
	out := captureStdout(t)
	require.NoError(t, run([]string{"--version"}, env(nil), &syncBuffer{}))
	assert.Regexp(t, `^sotad \S+ commit \S+`, out.String())
}

// An operator who restarts with a new --admin-password on an existing store is told that it was
// ignored and how to change the password; reset-password refuses while the server holds the store,
// works once it stopped, and the new password logs in.
func TestResetPasswordOnAStoppedServer(t *testing.T) {
	data := t.TempDir()
	st := storetest.Spec(t, data) // one store for the subtests
	t.Run("first start", func(t *testing.T) {
		r := startServer(t, data, "--admin-password", "first-password")
		r.login(t, "admin", "first-password")
	})
	t.Run("restart with another password", func(t *testing.T) {
		r := startServer(t, data, "--admin-password", "second-password")
		log := r.stderr.String()
		assert.Contains(t, log, "--admin-password ignored: the store already has accounts")
		assert.Contains(t, log, "sotad admin reset-password --user NAME --data "+data)
		assert.Contains(t, log, "accounts=admin")
		r.login(t, "admin", "first-password")

		if !storetest.Postgres() { // a PostgreSQL store is shared by design (replicas): no lock to find
			err := run([]string{"admin", "reset-password", "--user", "admin", "--data", data, "--store", st, "--password", "third-password"}, env(nil), &syncBuffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "in use by a running sotad: stop it first")
		}
		r.login(t, "admin", "first-password")
	})
	t.Run("reset while stopped", func(t *testing.T) {
		out := captureStdout(t)
		require.NoError(t, run([]string{"admin", "reset-password", "--user", "ADMIN", "--data", data, "--store", st, "--password", "third-password"}, env(nil), &syncBuffer{}))
		assert.Contains(t, out.String(), `Password of account "ADMIN" changed`)

		err := run([]string{"admin", "reset-password", "--user", "nobody", "--data", data, "--store", st}, env(nil), &syncBuffer{})
		where := data
		if storetest.Postgres() {
			where = "the PostgreSQL store"
		}
		assert.EqualError(t, err, `admin reset-password: no account "nobody" in `+where+` (accounts: admin)`)
		err = run([]string{"admin", "reset-password", "--user", "admin", "--data", data, "--store", st, "--password", "short"}, env(nil), &syncBuffer{})
		assert.ErrorContains(t, err, "Invalid password")
	})
	var generated string
	t.Run("generated password", func(t *testing.T) {
		r := startServer(t, data)
		r.login(t, "admin", "third-password")
	})
	t.Run("reset without --password prints one", func(t *testing.T) {
		out := captureStdout(t)
		require.NoError(t, run([]string{"admin", "reset-password", "--user", "admin"}, env(map[string]string{"SOTA_DATA": data, "SOTA_STORE": st}), &syncBuffer{}))
		line := strings.TrimSpace(out.String())
		require.True(t, strings.HasPrefix(line, `New password for account "admin": `), line)
		generated = strings.TrimPrefix(line, `New password for account "admin": `)
		assert.GreaterOrEqual(t, len(generated), 20)
		r := startServer(t, data)
		r.login(t, "admin", generated)
	})
}

func TestAdminUsage(t *testing.T) {
	out := captureStdout(t)
	assert.ErrorIs(t, run([]string{"admin", "reset-password", "--help"}, env(nil), &syncBuffer{}), flag.ErrHelp)
	assert.Contains(t, out.String(), "Usage: sotad admin reset-password --user NAME")
	assert.ErrorIs(t, run([]string{"admin"}, env(nil), &syncBuffer{}), errUsage)
	err := run([]string{"admin", "reset-password", "--data", t.TempDir()}, env(nil), &syncBuffer{})
	assert.ErrorContains(t, err, "--user is required")
	err = run([]string{"admin", "reset-password", "--user", "admin", "--data", t.TempDir()}, env(nil), &syncBuffer{})
	assert.ErrorContains(t, err, "has no accounts")
	assert.ErrorContains(t, run([]string{"admin", "frobnicate"}, env(nil), &syncBuffer{}), `unknown admin command "frobnicate"`)
}

// Auth off on loopback is a local setup; anywhere else sotad prints a banner.
func TestAuthOffWarnsLoudlyOffLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:8080": true, "0.0.0.0:8080": false, "[::]:8080": false, "192.168.1.5:8080": false} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err)
		assert.Equal(t, want, loopback(a), addr)
	}
	// What run says for each kind of address (the test binds loopback only, so the decision is called
	// with the addresses a listener on other interfaces would have).
	for _, addr := range []string{"0.0.0.0:8080", "[::]:8080", "192.168.1.5:8080"} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err)
		var b bytes.Buffer
		warnAuthOff(&b, slog.New(slog.NewTextHandler(&b, nil)), ":8080", a)
		assert.Contains(t, b.String(), "!! WARNING: authentication is OFF and sotad listens on "+a.String(), addr)
		assert.Contains(t, b.String(), "AUTHENTICATION IS OFF ON A NON-LOOPBACK ADDRESS (--auth=none, --listen :8080)", addr)
	}
	a, err := net.ResolveTCPAddr("tcp", "127.0.0.1:8080")
	require.NoError(t, err)
	var b bytes.Buffer
	warnAuthOff(&b, slog.New(slog.NewTextHandler(&b, nil)), "127.0.0.1:8080", a)
	assert.NotContains(t, b.String(), "!! WARNING")
	assert.Contains(t, b.String(), "AUTHENTICATION IS OFF (--auth=none): the admin API is open to anyone on this machine at 127.0.0.1:8080")

	r := startServer(t, t.TempDir(), "--auth", "none")
	assert.Contains(t, r.stderr.String(), "AUTHENTICATION IS OFF (--auth=none): the admin API is open to anyone on this machine")
	assert.NotContains(t, r.stderr.String(), "!! WARNING")

	c, err := parseFlags(nil, env(nil), &syncBuffer{})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", c.Listen, "loopback unless asked otherwise")
}
