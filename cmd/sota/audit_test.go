package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuditCommand(t *testing.T) {
	s := newAdminServer(t)
	s.api("PUT", "/vehicles/WDD00000000000001", "")
	s.api("PUT", "/vehicles/WDD00000000000002", "")
	s.api("DELETE", "/vehicles/WDD00000000000001", "")
	audit := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"audit", "--server", s.url, "--token", s.token}, args...), strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := audit()
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5, out)
	assert.Contains(t, lines[0], "ACTOR")
	assert.Contains(t, lines[1], "DELETE /api/v1/vehicles/:vin")
	assert.Contains(t, lines[1], "token:cli")
	assert.Contains(t, lines[1], "WDD00000000000001")
	assert.Contains(t, lines[3], "PUT /api/v1/vehicles/:vin")
	assert.Equal(t, "entries 1-3 of 3", lines[4])

	code, out, _ = audit("--target", "WDD00000000000002", "-o", "json")
	require.Equal(t, 0, code)
	var entries []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &entries))
	require.Len(t, entries, 1)
	assert.Equal(t, float64(204), entries[0]["status"])

	code, _, errOut = audit("--from", "yesterday")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "RFC 3339")
}
