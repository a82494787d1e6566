package client_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/signing"
)

// tufJS runs client/testdata/tufjs/verify.mjs (tuf-js from npm) against the server's image
// repository. The test skips when node or the script's node_modules is missing, unless
// SOTA_REQUIRE_TUFJS=1 (CI runs npm ci for it).
func tufJS(t *testing.T, s *signedServer, work, target string) (string, error) {
	t.Helper()
	node, err := exec.LookPath("node")
	dir, _ := filepath.Abs(filepath.Join("testdata", "tufjs"))
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "tuf-js"))
	if err != nil || modErr != nil {
		if os.Getenv("SOTA_REQUIRE_TUFJS") == "1" {
			t.Fatalf("SOTA_REQUIRE_TUFJS=1 but node (%v) or tuf-js (%v; run npm ci in %s) is missing", err, modErr, dir)
		}
		t.Skipf("tuf-js not installed (node: %v; run `npm ci --prefix client/testdata/tufjs`; SOTA_REQUIRE_TUFJS=1 makes this a failure)", err)
	}
	cmd := exec.Command(node, filepath.Join(dir, "verify.mjs"), s.srv.URL+"/api/v1/tuf/image", filepath.Join(s.keys, "root.json"), work, target)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// tuf-js, a TUF client this project did not write, verifies the image repository sotad serves: the
// root chain through a key rotation, the online snapshot and timestamp, the offline targets, and the
// bytes of a target; it refuses a target whose stored bytes were replaced.
func TestTufJSVerifiesImageRepository(t *testing.T) {
	s := newSignedServer(t)
	s.want(200, "", "POST", "/filters", map[string]any{"name": "fleet", "expression": `vin_matches "^WDD"`})
	fw1 := []byte(strings.Repeat("firmware for tuf-js ", 500))
	s.release("fw", "1.0.0", fw1)

	work := t.TempDir()
	out, err := tufJS(t, s, work, "fw/1.0.0/fw-1.0.0.bin")
	require.NoErrorf(t, err, "%s", out)
	var res struct {
		Targets []string
		File    string
		Length  int
	}
	require.NoErrorf(t, json.Unmarshal([]byte(out), &res), "%s", out)
	require.Equal(t, []string{"fw/1.0.0/fw-1.0.0.bin"}, res.Targets)
	got, err := os.ReadFile(res.File)
	require.NoError(t, err)
	require.Equal(t, fw1, got)

	// rotate the targets key through root version 2 and publish another release with the new key: the
	// client that trusted root 1 follows the chain
	rootKey, err := signing.ReadKeyFile(filepath.Join(s.keys, "root_key.json"))
	require.NoError(t, err)
	newKey, err := signing.NewKey()
	require.NoError(t, err)
	rot, err := signing.Rotate(s.want(200, "", "GET", "/tuf/image/root.json", nil), s.want(200, "", "GET", "/tuf/image/targets.json", nil), "targets", []signing.KeyFile{rootKey}, newKey, nil, time.Now())
	require.NoError(t, err)
	s.want(200, "", "POST", "/tuf/image/root", rot.Root)
	s.want(200, "", "POST", "/tuf/image/targets", rot.Targets)
	require.NoError(t, os.Remove(filepath.Join(s.keys, "targets_key.json")))
	require.NoError(t, signing.WriteKeyFile(filepath.Join(s.keys, "targets_key.json"), newKey))
	fw2 := []byte(strings.Repeat("second firmware for tuf-js ", 500))
	tg := s.release("fw", "2.0.0", fw2)
	out, err = tufJS(t, s, work, "fw/2.0.0/fw-2.0.0.bin")
	require.NoErrorf(t, err, "%s", out)
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, []string{"fw/1.0.0/fw-1.0.0.bin", "fw/2.0.0/fw-2.0.0.bin"}, res.Targets)
	got, err = os.ReadFile(res.File)
	require.NoError(t, err)
	require.Equal(t, fw2, got)
	root, err := os.ReadFile(filepath.Join(work, "metadata", "root.json"))
	require.NoError(t, err)
	v, err := signing.Version(root)
	require.NoError(t, err)
	require.EqualValues(t, 2, v, "tuf-js walked to root version 2")

	// the stored bytes replaced: tuf-js refuses them
	blob := filepath.Join(s.dir, "blobs", "sha256", tg.SHA256[:2], tg.SHA256)
	require.NoError(t, os.WriteFile(blob, bytes.Repeat([]byte("Z"), len(fw2)), 0o644))
	out, err = tufJS(t, s, t.TempDir(), "fw/2.0.0/fw-2.0.0.bin")
	require.Errorf(t, err, "%s", out)
	require.Contains(t, out, "tuf-js:")
	t.Log(out)
}
