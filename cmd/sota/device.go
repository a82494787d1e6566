package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"sota/client"
	"sota/wire"
)

func init() {
	register(command{
		name:  "device",
		usage: "--vin VIN --token TOKEN [--server URL] [--dir DIR] [--tuf-root FILE] [--decline|--ask] [--once]",
		help:  "run a simulated vehicle: poll, download with progress, verify, install into DIR, report",
		run:   runDevice,
	})
}

func runDevice(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("device", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := serverFlag(fs)
	vin := fs.String("vin", os.Getenv("SOTA_VIN"), "the vehicle's VIN")
	token := fs.String("token", os.Getenv("SOTA_DEVICE_TOKEN"), "the vehicle's device token (POST /api/v1/vehicles/VIN/token)")
	dir := fs.String("dir", "", "directory the packages are installed into (default ./device-VIN)")
	decline := fs.Bool("decline", false, "decline every update (reported as USER_DECLINED)")
	ask := fs.Bool("ask", false, "ask on standard input before installing an update that requests confirmation")
	once := fs.Bool("once", false, "handle what the server has now, then exit")
	interval := fs.Duration("interval", 30*time.Second, "how often to connect without a wake-up")
	wakeup := fs.String("wakeup-listen", "", "address to receive signed wake-ups on (POST /wakeup), e.g. :9090")
	tufRoot := fs.String("tuf-root", "", "the image repository's root.json: install only what the image repository and the director both sign (else report VALIDATION_FAILED)")
	attempts := fs.Int("retries", 10, "attempts per call while the network is down (with exponential backoff)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sota device --vin VIN --token TOKEN [flags]\n\nA simulated vehicle: the SOTA client and a software loading manager.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *vin == "" || *token == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *dir == "" {
		*dir = "device-" + *vin
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "sota device: %v\n", err)
		return 1
	}
	var imageRoot []byte
	if *tufRoot != "" {
		b, err := os.ReadFile(*tufRoot)
		if err != nil {
			fmt.Fprintf(stderr, "sota device: --tuf-root: %v\n", err)
			return 1
		}
		imageRoot = b
	}
	bar := &progressBar{w: stdout}
	m := &client.Manager{
		Dir:       *dir,
		Decline:   *decline,
		Client:    &client.Client{Server: *server, VIN: *vin, Token: *token, Backoff: client.Backoff{Attempts: *attempts}},
		Progress:  bar.update,
		ImageRoot: imageRoot,
		Logf:      func(f string, a ...any) { bar.line(fmt.Sprintf(f, a...)) },
	}
	if *ask {
		in := bufio.NewReader(stdin)
		m.Confirm = func(ua wire.UpdateAvailable) bool {
			names := make([]string, len(ua.Packages))
			for i, p := range ua.Packages {
				names[i] = p.Name + " " + p.Version
			}
			bar.line(fmt.Sprintf("Install %s (%s, %s)? [y/N]", strings.Join(names, ", "), human(ua.Size), ua.Description))
			answer, _ := in.ReadString('\n')
			return strings.EqualFold(strings.TrimSpace(answer), "y") || strings.EqualFold(strings.TrimSpace(answer), "yes")
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *once {
		out, err := m.RunOnce(ctx)
		for _, o := range out {
			bar.line(describe(o))
		}
		if err != nil {
			fmt.Fprintf(stderr, "sota device: %v\n", err)
			return 1
		}
		if len(out) == 0 {
			fmt.Fprintln(stdout, "nothing to do")
		}
		return 0
	}
	if *wakeup != "" {
		ln, err := net.Listen("tcp", *wakeup)
		if err != nil {
			fmt.Fprintf(stderr, "sota device: %v\n", err)
			return 1
		}
		srv := &http.Server{Handler: wakeupHandler(ctx, m, bar), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(stdout, "listening for wake-ups on %s\n", ln.Addr())
	}
	err := m.Run(ctx, *interval)
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "sota device: %v\n", err)
		return 1
	}
	return 0
}

func describe(o client.Outcome) string {
	names := make([]string, len(o.Packages))
	for i, p := range o.Packages {
		names[i] = p.Name + " " + p.Version
	}
	return fmt.Sprintf("update %s (%s): %s, result %s", o.UpdateID, strings.Join(names, ", "), o.Message, wire.ResultNames[o.Code])
}

// wakeupHandler receives wake-ups (POST /wakeup); the manager checks the signature.
func wakeupHandler(ctx context.Context, m *client.Manager, bar *progressBar) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var wk wire.Wakeup
		if r.Method != http.MethodPost || json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&wk) != nil {
			http.Error(w, "POST a wake-up", http.StatusBadRequest)
			return
		}
		if !m.Wakeup(ctx, wk) {
			bar.line("ignored a wake-up that is not signed by the server")
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// progressBar draws one line per download, redrawn in place.
type progressBar struct {
	mu     sync.Mutex
	w      io.Writer
	active bool
}

func (b *progressBar) update(id string, done, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	fmt.Fprintf(b.w, "\r%s [%s%s] %3.0f%% %s / %s", id[:min(8, len(id))], strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, human(done), human(total))
	b.active = done < total
	if !b.active {
		fmt.Fprintln(b.w)
	}
}

func (b *progressBar) line(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active {
		fmt.Fprintln(b.w)
		b.active = false
	}
	fmt.Fprintln(b.w, s)
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
