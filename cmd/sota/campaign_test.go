package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sota campaign create|preview|launch|show|pause|resume|release|abort against the real server.
func TestCampaignCommands(t *testing.T) {
	s := newAdminServer(t)
	for i := 1; i <= 20; i++ {
		s.api("PUT", fmt.Sprintf("/vehicles/WDD%014d", i), "")
	}
	bin := filepath.Join(t.TempDir(), "nav.bin")
	require.NoError(t, os.WriteFile(bin, []byte("navigation"), 0o600))
	code, _, errs := s.sota("package", "upload", "--name", "nav", "--version", "1.0.0", bin)
	require.Equal(t, 0, code, errs)
	s.api("POST", "/filters", `{"name":"all","expression":"TRUE"}`)
	s.api("PUT", "/packages/nav/1.0.0/filter/all", "")

	code, _, errs = s.sota("campaign", "create", "--name", "nav", "--package", "nav", "--version", "1.0.0", "--group", "canary=5%", "--group", "odd=filter:vin_matches \"[13579]$\"")
	require.Equal(t, 0, code, errs)
	code, id, errs := s.sota("campaign", "create", "--name", "nav", "--package", "nav", "--version", "1.0.0",
		"--group", "canary=10%", "--group", "wave=25%,filter:vin_matches \"[02468]$\"", "--error", "5", "--success", "80", "--retry", "2", "--retry-delay", "1m", "-q")
	require.Equal(t, 0, code, errs)
	id = strings.TrimSpace(id)
	code, _, errs = s.sota("campaign", "create", "--name", "x", "--package", "nav", "--version", "1.0.0", "--group", "a=ten%")
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, `group a: "ten%" is not a percent like 10%`)

	code, out, errs := s.sota("campaign", "preview", id)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "20 vehicles match (0 have it already)")
	assert.Regexp(t, `canary\s+2\n`, out)
	assert.Regexp(t, `wave\s+5\n`, out)
	assert.Regexp(t, `rest\s+13\n`, out)
	assert.Contains(t, out, "Problems: none")

	code, out, errs = s.sota("campaign", "launch", id)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "Launched to 20 vehicles in groups: canary 2, wave 5, rest 13")
	assert.Regexp(t, `canary\s+released\s+2\s+\[\.{20}\]\s+0\s+0\s+2`, out)

	code, out, _ = s.sota("campaign", "pause", id)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Paused: paused by admin")
	code, _, errs = s.sota("campaign", "pause", id)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "invalid_state")
	code, _, _ = s.sota("campaign", "resume", id)
	require.Equal(t, 0, code)
	code, out, _ = s.sota("campaign", "release", id)
	require.Equal(t, 0, code)
	assert.Regexp(t, `wave\s+released\s+5`, out)
	code, out, _ = s.sota("campaign", "show", id, "--vins", "wave")
	require.Equal(t, 0, code)
	assert.Len(t, strings.Fields(out), 5)
	code, out, _ = s.sota("campaign", "list")
	require.Equal(t, 0, code)
	assert.Contains(t, out, id)

	code, out, _ = s.sota("campaign", "abort", id)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "Aborted: 7 pending updates canceled")
	code, out, _ = s.sota("campaign", "show", id, "--watch", "--interval", "10ms")
	require.Equal(t, 0, code, "--watch ends with the campaign")
	assert.Contains(t, out, ", aborted\n")
	code, out, _ = s.sota("campaign", "show", id, "-o", "json")
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"status": "aborted"`)
}
