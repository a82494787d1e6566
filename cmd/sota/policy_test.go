package main

import (
	"bytes"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/api"
	"sota/auth"
	"sota/internal/storetest"
	"sota/policy"
)

const sdlDir = "../../policy/testdata/"

func sota(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestPolicyValidateCommand(t *testing.T) {
	code, out, _ := sota(t, "policy", "validate", sdlDir+"sdl_core-sdl_preloaded_pt.json", "--kind", "preloaded")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "valid preloaded\n")
	assert.Contains(t, out, "warning: policy_table.module_config.notifications_per_minute_by_priority.PROJECTION")

	code, out, _ = sota(t, "policy", "validate", "--kind=ptu", sdlDir+"sdl_atf_test_scripts-invalid_PTU_missing_seconds_between_retries.json")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "error: policy_table.module_config.seconds_between_retries: is required in PT_UPDATE but missing\n")
	assert.Contains(t, out, "error: policy_table.device_data: should be omitted in PT_UPDATE\n")
	assert.Contains(t, out, "invalid ptu: 5 errors\n")

	code, out, _ = sota(t, "policy", "validate", sdlDir+"sdl_atf_test_scripts-PTU_has_omitted.json", "--json")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, `"path": "policy_table.module_config.preloaded_date"`)

	code, _, errOut := sota(t, "policy", "validate", sdlDir+"sdl_core-sdl_preloaded_pt.json", "--kind", "nonsense")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--kind must be ptu, pts or preloaded")

	notTable := filepath.Join(t.TempDir(), "x.txt")
	require.NoError(t, os.WriteFile(notTable, []byte("hello world"), 0o644))
	code, _, errOut = sota(t, "policy", "validate", notTable)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "neither JSON nor Base64-encoded JSON")
}

func TestPolicySnapshotAndMergeCommands(t *testing.T) {
	dir := t.TempDir()
	code, out, _ := sota(t, "policy", "snapshot", sdlDir+"sdl_core-sdl_preloaded_pt.json", "--vin", "WDD1234567890ABCD", "--app", "123", "--app", "456")
	require.Equal(t, 0, code)
	pts, err := policy.Parse([]byte(out))
	require.NoError(t, err)
	assert.NotContains(t, pts.Section("consumer_friendly_messages"), "messages")
	assert.True(t, policy.Validate(policy.Snapshot, pts).Valid)
	assert.Equal(t, "default", pts.Section("app_policies")["456"])
	ptsFile := filepath.Join(dir, "pts.json")
	require.NoError(t, os.WriteFile(ptsFile, []byte(out), 0o644))
	code, out, _ = sota(t, "policy", "validate", ptsFile, "--kind", "pts")
	assert.Equal(t, 0, code, out)

	code, out, _ = sota(t, "policy", "merge", sdlDir+"sdl_core-sdl_preloaded_pt.json", sdlDir+"sdl_atf_test_scripts-valid_PTU_all_sections.json")
	require.Equal(t, 0, code)
	merged, err := policy.Parse([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, "001.001.023", merged.Section("consumer_friendly_messages")["version"])
	assert.Contains(t, merged.Section("app_policies"), "123456")

	// a PTU without messages leaves the local messages alone
	ptu, err := policy.Parse(mustRead(t, sdlDir+"sdl_atf_test_scripts-valid_PTU_all_sections.json"))
	require.NoError(t, err)
	delete(ptu.Section("consumer_friendly_messages"), "messages")
	noMsgs := filepath.Join(dir, "ptu.json")
	require.NoError(t, os.WriteFile(noMsgs, ptu.MarshalIndent(), 0o644))
	code, out, _ = sota(t, "policy", "merge", sdlDir+"sdl_core-sdl_preloaded_pt.json", noMsgs)
	require.Equal(t, 0, code)
	merged, err = policy.Parse([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, "001.001.021", merged.Section("consumer_friendly_messages")["version"])
	assert.Len(t, merged.Section("consumer_friendly_messages")["messages"], 19)

	code, out, errOut := sota(t, "policy", "merge", sdlDir+"sdl_core-sdl_preloaded_pt.json", sdlDir+"sdl_atf_test_scripts-PTU_has_omitted.json")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "error: policy_table.module_config.preloaded_date: should be omitted in PT_UPDATE")
}

func mustRead(t *testing.T, name string) []byte {
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return b
}

func TestPolicySimulateAgainstTheRealServer(t *testing.T) {
	db, err := storetest.OpenDir(t, t.TempDir())
	require.NoError(t, err)
	defer db.Close()
	h, _, err := api.New(api.Config{}, api.Deps{Auth: auth.New(db), Policy: policy.NewService(db)})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	localOut := filepath.Join(t.TempDir(), "local.json")
	code, out, errOut := sota(t, "policy", "simulate", "--server", srv.URL, "--env", "staging", "--app", "777", "--out", localOut)
	require.Equal(t, 0, code, out+errOut)
	assert.Equal(t, []string{
		"+0s     status UPDATE_NEEDED",
		"+0s     attempt 1: snapshot sent to " + srv.URL + "/api/v1/staging/policy (table endpoint: http://x.x.x.x:3000/api/1/policies/proprietary)",
		"+0s     status UPDATING",
		"+0s     attempt 1: PTU valid, merged into the local table",
		"+0s     status UP_TO_DATE",
		"final status UP_TO_DATE",
	}, strings.Split(strings.TrimSpace(out), "\n"))
	local, err := policy.Parse(mustRead(t, localOut))
	require.NoError(t, err)
	assert.Equal(t, "default", local.Section("app_policies")["777"])
	assert.NotContains(t, local.Section("module_config"), "preloaded_pt")
}

func TestPolicySimulateRetriesWhenNoServerAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	code, out, _ := sota(t, "policy", "simulate", "--server", dead)
	assert.Equal(t, 1, code)
	var statuses, retries []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "status" && strings.HasPrefix(f[0], "+"):
			statuses = append(statuses, f[0]+" "+f[2])
		case len(f) >= 5 && f[1] == "retry:":
			retries = append(retries, f[0]+" -> "+f[5])
		}
	}
	assert.Equal(t, []string{"+60s -> +61s", "+121s -> +126s", "+186s -> +211s", "+271s -> +396s", "+456s -> +1081s"}, retries)
	assert.Equal(t, "+0s UPDATE_NEEDED", statuses[0])
	assert.Equal(t, "+1081s UPDATING", statuses[len(statuses)-2])
	assert.Equal(t, "+1141s UPDATE_NEEDED", statuses[len(statuses)-1])
	assert.Contains(t, out, "+1141s  no retries left\n")
	assert.Contains(t, out, "final status UPDATE_NEEDED\n")
}
