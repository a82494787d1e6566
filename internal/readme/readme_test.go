package readme

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const root = "../.."

// makeRunAddr is where `make run` serves; the walkthrough's commands name it and the test rewrites it
// to the address of its own server.
const makeRunAddr = "127.0.0.1:8080"

// block is one walkthrough block of the README: a ```sh fence right after a <!-- walkthrough --> line.
type block struct {
	line int // of the opening fence, 1-based
	text string
}

var walkthroughMark = regexp.MustCompile(`^<!--\s*walkthrough\s*-->\s*$`)

func walkthroughBlocks(t *testing.T, readme string) []block {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		if !walkthroughMark.MatchString(lines[i]) {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		require.Truef(t, j < len(lines) && strings.TrimSpace(lines[j]) == "```sh",
			"README.md:%d: a <!-- walkthrough --> line must be followed by a ```sh block", i+1)
		var body []string
		k := j + 1
		for ; k < len(lines) && strings.TrimSpace(lines[k]) != "```"; k++ {
			body = append(body, lines[k])
		}
		require.Lessf(t, k, len(lines), "README.md:%d: the ```sh block is not closed", j+1)
		out = append(out, block{line: j + 1, text: strings.Join(body, "\n")})
		i = k
	}
	return out
}

// tool finds an external program the walkthrough needs, or skips (fails when SOTA_REQUIRE_CURL=1,
// which .ci/run sets).
func tool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		msg := fmt.Sprintf("the README walkthrough needs %s (apt-get install -y curl coreutils bash)", name)
		if os.Getenv("SOTA_REQUIRE_CURL") == "1" {
			t.Fatal(msg + " (SOTA_REQUIRE_CURL=1)")
		}
		t.Skip(msg)
	}
}

// The README's walkthrough works as written: its blocks run, in order, in one bash session (set -e,
// pipefail) against the server `make run` starts (sotad with the example fleet, auth off), on a
// random loopback port. A failing command fails the test with its block and the output.
func TestREADMEWalkthrough(t *testing.T) {
	for _, name := range []string{"bash", "curl", "sha256sum", "head", "date", "cut", "wc"} {
		tool(t, name)
	}
	if testing.Short() {
		t.Skip("builds the binaries and loads the example fleet; skipped with -short")
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	blocks := walkthroughBlocks(t, string(readme))
	require.GreaterOrEqual(t, len(blocks), 5, "the README marks its walkthrough blocks with <!-- walkthrough -->")

	// The server is the one of `make run`: this checks the Makefile still starts it so.
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	assert.Contains(t, string(mk), "SOTA_LISTEN ?= "+makeRunAddr)
	assert.Contains(t, string(mk), "SOTA_AUTH=$${SOTA_AUTH:-none} SOTA_EXAMPLES=$${SOTA_EXAMPLES:-true} ./$(BIN)/sotad")

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "work", "bin")
	require.NoError(t, os.MkdirAll(bin, 0o755))
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, cmd := range []string{"sotad", "sota"} {
		out, err := exec.Command(goTool, "build", "-o", filepath.Join(bin, cmd), "sota/cmd/"+cmd).CombinedOutput()
		require.NoError(t, err, "go build %s: %s", cmd, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	server := exec.CommandContext(ctx, filepath.Join(bin, "sotad"))
	server.Env = append(os.Environ(), "SOTA_AUTH=none", "SOTA_EXAMPLES=true", "SOTA_LISTEN="+addr, "SOTA_DATA="+filepath.Join(tmp, "data"))
	var serverLog syncBuffer
	server.Stdout, server.Stderr = &serverLog, &serverLog
	require.NoError(t, server.Start())
	t.Cleanup(func() { cancel(); _ = server.Wait() })
	waitHealthy(t, "http://"+addr, &serverLog)

	sh := exec.Command("bash", "--noprofile", "--norc")
	sh.Dir = filepath.Join(tmp, "work")
	sh.Env = append(os.Environ(), "LC_ALL=C")
	stdin, err := sh.StdinPipe()
	require.NoError(t, err)
	pr, pw := io.Pipe()
	sh.Stdout, sh.Stderr = pw, pw
	require.NoError(t, sh.Start())
	exited := make(chan error, 1)
	go func() { err := sh.Wait(); pw.Close(); exited <- err }()
	t.Cleanup(func() { _ = sh.Process.Kill() })
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	_, err = io.WriteString(stdin, "set -eo pipefail\nexec 2>&1\ntrap 'echo \"@@ failed (exit $?): $BASH_COMMAND\"' ERR\n")
	require.NoError(t, err)
	for i, b := range blocks {
		done := fmt.Sprintf("@@walkthrough block %d done", i)
		script := strings.ReplaceAll(b.text, makeRunAddr, addr)
		_, err := io.WriteString(stdin, script+"\necho '"+done+"'\n")
		require.NoError(t, err, "README.md:%d: the shell ended before this block", b.line)
		var out []string
		timeout := time.After(2 * time.Minute)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("README.md:%d: a command of this walkthrough block failed (%v):\n%s\n--- output ---\n%s", b.line, <-exited, b.text, strings.Join(out, "\n"))
				}
				if strings.HasSuffix(l, done) { // the last command's output may not end its line (curl)
					if l = strings.TrimSuffix(l, done); l != "" {
						out = append(out, l)
					}
					break read
				}
				out = append(out, l)
			case <-timeout:
				t.Fatalf("README.md:%d: this walkthrough block did not finish within 2 minutes:\n%s\n--- output so far ---\n%s", b.line, b.text, strings.Join(out, "\n"))
			}
		}
		t.Logf("README.md:%d: ok\n%s", b.line, strings.Join(out, "\n"))
	}
	stdin.Close()
	require.NoError(t, <-exited)

	// The walkthrough did what it says: the vehicle installed the package and was seen.
	var v struct {
		LastSeen *time.Time `json:"lastSeen"`
		Packages []struct{ Name, Version string }
	}
	getJSON(t, "http://"+addr+"/api/v1/vehicles/WDD205000FF186849", &v)
	assert.NotNil(t, v.LastSeen)
	assert.Contains(t, v.Packages, struct{ Name, Version string }{"nav-maps", "2026.12.0"})
}

func waitHealthy(t *testing.T, base string, log *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("sotad did not answer /healthz within 2 minutes:\n%s", log.String())
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}
