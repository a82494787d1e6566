// Package sotadtest builds and starts real sotad processes for tests and benchmarks outside cmd/sotad
// (the model-based sessions on replicas, the replica benchmarks): each on a free loopback port, with
// its log kept for failure messages.
//
//	bin := sotadtest.Build(t)
//	p := sotadtest.Start(t, bin, "--data", dir, "--store", url, "--auth", "none")
//	... p.URL ...
//	p.Stop(syscall.SIGTERM)
package sotadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles sota/cmd/sotad into a temporary directory of tb and returns the binary's path.
func Build(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "sotad")
	out, err := exec.Command("go", "build", "-o", bin, "sota/cmd/sotad").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build sota/cmd/sotad: %v\n%s", err, out)
	}
	return bin
}

// Proc is one running sotad.
type Proc struct {
	URL     string        // http://127.0.0.1:port
	Started time.Duration // from exec to the "sotad listening" log line
	cmd     *exec.Cmd
	mu      sync.Mutex
	logs    bytes.Buffer
	done    chan struct{}
}

var listening = regexp.MustCompile(`msg="sotad listening" addr=(\S+)`)

// Start runs bin with args plus --listen 127.0.0.1:0 and --log-level info, waits until it listens
// (at most startWithin), and kills it when tb ends. env is added to the process's environment.
func Start(tb testing.TB, bin string, env []string, args ...string) *Proc {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--log-level", "info"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	DieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() { p.Stop(syscall.SIGKILL) })
	select {
	case a := <-addr:
		p.URL, p.Started = "http://"+a, time.Since(start)
	case <-p.done:
		tb.Fatalf("sotad exited at start:\n%s", p.Logs())
	case <-time.After(startWithin):
		p.Stop(syscall.SIGKILL)
		tb.Fatalf("sotad did not start within %v:\n%s", startWithin, p.Logs())
	}
	return p
}

const startWithin = 2 * time.Minute

// Logs is what the process wrote to stderr so far.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Stop sends sig and waits for the process to exit (killing it after 30 s).
func (p *Proc) Stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// StatusKB reads a "Name: N kB" line of the process's /proc/<pid>/status (VmRSS, VmHWM, RssAnon).
func (p *Proc) StatusKB(name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s line in /proc/%d/status", name, p.cmd.Process.Pid)
}

// CPU is the user and system CPU time the process used so far (/proc/<pid>/stat, in clock ticks of
// 10 ms): unlike wall-clock time it hardly grows with the machine's load.
func (p *Proc) CPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// the fields after the command name, which is in parentheses and may hold spaces
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", p.cmd.Process.Pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %v %v", p.cmd.Process.Pid, err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
