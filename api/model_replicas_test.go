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
	"fmt"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/internal/sotadtest"
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
	bin := sotadtest.Build(t)
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
	procs    []*sotadtest.Proc
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
		rt.procs = append(rt.procs, startReplica(t, bin, dir, rt.spec))
	}
	return rt
}

// startReplica starts sotad with --auth none on its data directory and the shared store.
func startReplica(t *testing.T, bin, dir, spec string) *sotadtest.Proc {
	return sotadtest.Start(t, bin, nil, "--data", dir, "--store", spec, "--auth", "none")
}

func (rt *replicaTarget) command(method, path string, body any) response {
	rt.t.Helper()
	p := rt.procs[rt.next]
	rt.next = (rt.next + 1) % len(rt.procs)
	return sendTo(rt.t, rt.client, p.URL+"/api/v1", method, path, body)
}

func (rt *replicaTarget) read(method, path string, body any) response {
	rt.t.Helper()
	i := rt.pinned
	if i < 0 {
		i = rt.nextRead
		rt.nextRead = (rt.nextRead + 1) % len(rt.procs)
	}
	return sendTo(rt.t, rt.client, rt.procs[i].URL+"/api/v1", method, path, body)
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
	rt.procs[i].Stop(sig)
	rt.procs[i] = startReplica(rt.t, rt.bin, rt.dirs[i], rt.spec)
	rt.pinned = i
	return fmt.Sprintf("restart replica %c (%v)", 'A'+i, sig)
}

func (rt *replicaTarget) unpin()            { rt.pinned = -1 }
func (rt *replicaTarget) followsFeed() bool { return true }
