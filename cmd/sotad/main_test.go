package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/api"
	"sota/internal/storetest"
	"sota/store"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFlagsEnvironmentAndPrecedence(t *testing.T) {
	c, err := parseFlags(nil, env(map[string]string{"SOTA_LISTEN": "127.0.0.1:9999", "SOTA_DATA": "/tmp/x", "SOTA_CHUNK_SIZE": "1024"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:9999", c.Listen)
	assert.Equal(t, "/tmp/x", c.Data)
	assert.Equal(t, 1024, c.ChunkSize)

	c, err = parseFlags([]string{"--listen", ":1"}, env(map[string]string{"SOTA_LISTEN": ":2"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":1", c.Listen, "a flag on the command line wins over the environment")

	c, err = parseFlags(nil, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "1536MiB", c.MemoryLimit, "the soft memory limit that keeps a 1M-vehicle server under 2 GB")
	c, err = parseFlags(nil, env(map[string]string{"SOTA_MEMORY_LIMIT": "off"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "off", c.MemoryLimit)

	c, err = parseFlags(nil, env(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "DEFAULT", c.DDITenant)
	assert.Equal(t, api.DDIConfig{Tenant: "DEFAULT", Poll: 5 * time.Minute}, ddiConfig(c))
	c, err = parseFlags([]string{"--ddi-poll", "00:00:45"}, env(map[string]string{"SOTA_DDI_TENANT": "fleet"}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, api.DDIConfig{Tenant: "fleet", Poll: 45 * time.Second}, ddiConfig(c))

	// --blob-store: local with Badger and db with PostgreSQL unless given (flag or SOTA_BLOB_STORE)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "local"},
		{[]string{"--store", "postgres://u@db:5432/sota"}, nil, "db"},
		{[]string{"--store", "badger:/x"}, map[string]string{"SOTA_BLOB_STORE": "db"}, "db"},
		{[]string{"--blob-store", "local"}, map[string]string{"SOTA_STORE": "postgres://u@db:5432/sota"}, "local"},
	} {
		c, err := parseFlags(tc.args, env(tc.env), io.Discard)
		require.NoError(t, err)
		assert.Equal(t, tc.want, blobStoreKind(c), "%v %v", tc.args, tc.env)
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, args := range [][]string{{"--auth", "maybe"}, {"--chunk-size", "1"}, {"--tls", "x"}, {"--tls-cert", "a"}, {"--nope"}, {"extra"}, {"--scheduler-interval", "1ms"}, {"--reconnect-interval", "0s"}, {"--webhook-timeout", "50ms"}, {"--memory-limit", "lots"}, {"--memory-limit", "0"},
		{"--ddi-poll", "5m"}, {"--rvi-ack-timeout", "1ms"}, {"--rvi-advertise-url", "lb:8080"}, {"--rvi-advertise-url", "ftp://lb"}, {"--ddi-poll", "00:00:00"}, {"--ddi-tenant", ""}, {"--ddi-tenant", "a/b"}, {"--ddi-tenant", "API"}, {"--blob-store", "s3"}} {
		_, err := parseFlags(args, env(nil), io.Discard)
		assert.Errorf(t, err, "%v", args)
	}
	_, err := parseFlags(nil, env(map[string]string{"SOTA_CHUNK_SIZE": "lots"}), io.Discard)
	assert.ErrorContains(t, err, "SOTA_CHUNK_SIZE")
}

func TestPortInUseFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	data := t.TempDir()
	err = run([]string{"--listen", ln.Addr().String(), "--data", data, "--store", storetest.Spec(t, data)}, env(nil), io.Discard)
	assert.ErrorContains(t, err, "listen on "+ln.Addr().String())
}

// `sotad --store URL migrate --dry-run` prints the pending migrations and applies nothing; `migrate`
// applies them, once.
func TestMigrateDryRunThenApply(t *testing.T) {
	t.Setenv("SOTA_TEST_STORE", "postgres")
	url := storetest.Spec(t, t.TempDir())
	out := captureStdout(t)
	require.NoError(t, run([]string{"--store", url, "migrate", "--dry-run"}, env(nil), io.Discard))
	assert.Contains(t, out.String(), fmt.Sprintf("%d pending migration(s), not applied (--dry-run)", len(store.Migrations())))
	assert.Contains(t, out.String(), "-- 001_initial.sql\n")
	assert.Contains(t, out.String(), "-- 002_changes.sql\n")
	assert.Contains(t, out.String(), "CREATE TABLE updates (")
	pending, err := store.PendingMigrations(context.Background(), url)
	require.NoError(t, err)
	assert.Len(t, pending, len(store.Migrations()), "the dry run applied nothing")

	out.Reset()
	require.NoError(t, run([]string{"migrate", "--store", url}, env(nil), io.Discard))
	var applied strings.Builder
	for _, m := range store.Migrations() {
		applied.WriteString("applied " + m.Name + "\n")
	}
	assert.Equal(t, applied.String(), out.String())
	assert.Contains(t, out.String(), "applied 001_initial.sql\napplied 002_changes.sql\n")
	out.Reset()
	require.NoError(t, run([]string{"migrate", "--dry-run"}, env(map[string]string{"SOTA_STORE": url}), io.Discard))
	assert.Equal(t, "no pending migrations\n", out.String())

	out.Reset()
	require.NoError(t, run([]string{"migrate"}, env(nil), io.Discard))
	assert.Contains(t, out.String(), "the Badger store has no migrations")
	assert.ErrorContains(t, run([]string{"migrate", "--frobnicate"}, env(nil), io.Discard), "frobnicate")
	assert.ErrorContains(t, run([]string{"--store", "mysql://x", "migrate"}, env(nil), io.Discard), "--store")
}
