package api

// The model-based random sessions of model_test.go against three replicas: three real sotad
// processes, each with its own data directory, on one fresh PostgreSQL schema over loopback, sharing
// nothing but the database. Each command goes to the next replica round-robin, and so does each read
// of the checks; a restart restarts one replica at a time (SIGTERM and SIGKILL in turn), and the
// check after it reads from the restarted replica only. Resolves and dry runs must equal the model at
// once (a replica catches up with the change feed first); the other reads must equal it within 1 s of
// the last command's answer (API.md "Stores and replicas"); the longest wait is logged. Skipped with
// a message without a PostgreSQL server (SOTA_TEST_PG_URL, default the development server);
// SOTA_REQUIRE_POSTGRES=1 makes that a failure. SOTA_MODEL_SEED, SOTA_MODEL_STEPS and
// SOTA_MODEL_SESSIONS work as for TestModelRandomSessions (a seed replays the same commands; which
// replica gets which one is the same too, but the timing of the feed is not).

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/internal/storetest"
)

func TestModelRandomSessionsOnReplicas(t *testing.T) {
	storetest.SpecKind(t, "postgres", t.TempDir()) // skips (or fails) here without a server
	steps := envInt("SOTA_MODEL_STEPS", 200)
	sessions := envInt("SOTA_MODEL_SESSIONS", 2)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SOTA_MODEL_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "SOTA_MODEL_SEED")
		seed, sessions = s, 1
	}
	bin := buildSotadBinary(t)
	for i := range sessions {
		s := seed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			t.Logf("replay with SOTA_MODEL_SEED=%d SOTA_MODEL_STEPS=%d", s, steps)
			rt := startReplicaTarget(t, bin, 3)
			start := time.Now()
			ss := runSession(t, rt, s, steps)
			t.Logf("3 replicas, %d restarts, %v: %d checks waited for the change feed, the longest %v after the last command's answer",
				rt.restarts, time.Since(start).Round(time.Millisecond), ss.waits, ss.lag.Round(time.Millisecond))
		})
	}
}

// replicaTarget is a modelTarget of n sotad processes on one PostgreSQL schema.
type replicaTarget struct {
	t        *testing.T
	bin      string
	spec     string
	dirs     []string
	procs    []*sotadProcess
	next     int // the replica the next command goes to
	nextRead int // the replica the next read goes to
	pinned   int // reads go to this replica when >= 0
	restarts int
	client   *http.Client
}

func startReplicaTarget(t *testing.T, bin string, n int) *replicaTarget {
	rt := &replicaTarget{t: t, bin: bin, spec: storetest.SpecKind(t, "postgres", t.TempDir()), pinned: -1,
		client: &http.Client{Timeout: time.Minute}}
	for range n {
		dir := t.TempDir()
		rt.dirs = append(rt.dirs, dir)
		rt.procs = append(rt.procs, startSotadProcess(t, bin, dir, rt.spec))
	}
	t.Cleanup(func() {
		for _, p := range rt.procs {
			p.stop(syscall.SIGKILL)
		}
	})
	return rt
}

func (rt *replicaTarget) command(method, path string, body any) response {
	rt.t.Helper()
	p := rt.procs[rt.next]
	rt.next = (rt.next + 1) % len(rt.procs)
	return sendTo(rt.t, rt.client, p.url+"/api/v1", method, path, body)
}

func (rt *replicaTarget) read(method, path string, body any) response {
	rt.t.Helper()
	i := rt.pinned
	if i < 0 {
		i = rt.nextRead
		rt.nextRead = (rt.nextRead + 1) % len(rt.procs)
	}
	return sendTo(rt.t, rt.client, rt.procs[i].url+"/api/v1", method, path, body)
}

// restart stops one replica (the next in turn; SIGTERM and SIGKILL alternately), starts it again
// on its data directory and pins reads to it; the others keep serving.
func (rt *replicaTarget) restart() string {
	rt.t.Helper()
	i := rt.restarts % len(rt.procs)
	sig := syscall.SIGTERM
	if rt.restarts%2 == 1 {
		sig = syscall.SIGKILL
	}
	rt.restarts++
	rt.procs[i].stop(sig)
	rt.procs[i] = startSotadProcess(rt.t, rt.bin, rt.dirs[i], rt.spec)
	rt.pinned = i
	return fmt.Sprintf("restart replica %c (%v)", 'A'+i, sig)
}

func (rt *replicaTarget) unpin()            { rt.pinned = -1 }
func (rt *replicaTarget) followsFeed() bool { return true }

// buildSotadBinary builds cmd/sotad into the test's temporary directory.
func buildSotadBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sotad")
	out, err := exec.Command("go", "build", "-o", bin, "sota/cmd/sotad").CombinedOutput()
	require.NoErrorf(t, err, "go build sota/cmd/sotad: %s", out)
	return bin
}

// sotadProcess is one running sotad.
type sotadProcess struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

var sotadListening = regexp.MustCompile(`msg="sotad listening" addr=(\S+)`)

// startSotadProcess starts sotad on a free loopback port with --auth none over dataDir and the
// store spec, and waits until it listens.
func startSotadProcess(t *testing.T, bin, dataDir, spec string) *sotadProcess {
	t.Helper()
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--data", dataDir, "--store", spec, "--auth", "none", "--log-level", "info")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &sotadProcess{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := sotadListening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatalf("sotad exited at start:\n%s", p.output())
	case <-time.After(60 * time.Second):
		p.stop(syscall.SIGKILL)
		t.Fatalf("sotad did not start within 60 s:\n%s", p.output())
	}
	return p
}

func (p *sotadProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends the signal and waits for the process to exit (killing it after 30 s).
func (p *sotadProcess) stop(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}
