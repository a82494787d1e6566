package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	register(command{
		name:  "fleet import",
		usage: "[--server URL] [--token T] [--quiet] FILE|-",
		help:  "stream a fleet as JSON lines (one vehicle a line) to POST /api/v1/fleet/import, with a progress bar on stderr",
		run:   runFleetImport,
	})
}

// progressInterval is how often the progress bar is redrawn.
var progressInterval = 250 * time.Millisecond

func runFleetImport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server, token := serverFlags(fs)
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: sota fleet import [--server URL] [--token T] [--quiet] FILE|-\n\n"+
			"Streams a fleet as JSON lines (one vehicle a line, the format of sota fleet generate) to\n"+
			"POST /api/v1/fleet/import, from FILE or standard input (-), with a progress bar on stderr.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "sota fleet import: give one FILE, or - for standard input")
		return 2
	}
	in, size := stdin, int64(-1)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "sota fleet import:", err)
			return 1
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		in = f
	}

	body := &lineCounter{r: in}
	req, err := http.NewRequest("POST", strings.TrimRight(*server, "/")+"/api/v1/fleet/import", body)
	if err != nil {
		fmt.Fprintln(stderr, "sota fleet import:", err)
		return 2
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	bar := startProgress(stderr, body, size, *quiet)
	res, err := httpClient().Do(req)
	bar.stop()
	if err != nil {
		fmt.Fprintln(stderr, "sota fleet import:", reachError(strings.TrimRight(*server, "/"), err))
		return 1
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(res.Body)
	if err != nil {
		fmt.Fprintln(stderr, "sota fleet import: reading the answer:", err)
		return 1
	}
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "sota fleet import: %s\n", describeError(res.Status, answer))
		return 1
	}
	var out bytes.Buffer
	if json.Indent(&out, answer, "", "  ") != nil {
		out.Reset()
		out.Write(answer)
	}
	fmt.Fprintln(stdout, strings.TrimSpace(out.String()))
	return 0
}

// describeError is the status with the {"code","description","errors"} of an error answer.
func describeError(status string, body []byte) string {
	var e struct {
		Code        string   `json:"code"`
		Description string   `json:"description"`
		Errors      []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || e.Code == "" {
		return status + ": " + strings.TrimSpace(string(body))
	}
	msg := fmt.Sprintf("%s: %s: %s", status, e.Code, e.Description)
	for _, l := range e.Errors {
		msg += "\n  " + l
	}
	return msg
}

// lineCounter counts the bytes and the non-empty lines read through it.
type lineCounter struct {
	r       io.Reader
	bytes   atomic.Int64
	lines   atomic.Int64
	eof     atomic.Bool
	partial bool // the bytes read so far end in a non-empty, unterminated line
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	var lines int64
	for _, b := range p[:n] {
		switch b {
		case '\n':
			if c.partial {
				lines++
			}
			c.partial = false
		case ' ', '\t', '\r':
		default:
			c.partial = true
		}
	}
	if errors.Is(err, io.EOF) {
		if c.partial {
			lines++
			c.partial = false
		}
		c.eof.Store(true)
	}
	c.bytes.Add(int64(n))
	c.lines.Add(lines)
	return n, err
}

// progress redraws one line on stderr: bytes sent (and the share of the file when its size is
// known), vehicles sent, and the rates, until stop, which draws the final line.
type progress struct {
	w     io.Writer
	c     *lineCounter
	size  int64
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
	width int // of the line on screen
}

// draw replaces the line on screen, blanking what the new one does not cover.
func (p *progress) draw(line string) {
	text := strings.TrimSuffix(line, "\n")
	pad := ""
	if n := p.width - len(text); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(p.w, "\r%s%s%s", text, pad, line[len(text):])
	p.width = len(text)
}

func startProgress(w io.Writer, c *lineCounter, size int64, quiet bool) *progress {
	p := &progress{w: w, c: c, size: size, start: time.Now(), done: make(chan struct{})}
	if quiet {
		close(p.done)
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				p.draw(p.line() + "\n")
				return
			case <-t.C:
				line := p.line()
				if p.c.eof.Load() {
					// Everything is sent; the server validates the whole input, then writes it, then answers.
					line += "; the server is writing"
				}
				p.draw(line)
			}
		}
	}()
	return p
}

func (p *progress) line() string {
	b, n := p.c.bytes.Load(), p.c.lines.Load()
	secs := time.Since(p.start).Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	share := ""
	if p.size > 0 {
		share = fmt.Sprintf(" of %s (%3.0f%%)", mib(p.size), 100*float64(b)/float64(p.size))
	}
	return fmt.Sprintf("%s%s, %d vehicles sent in %.1f s (%s/s, %.0f vehicles/s)",
		mib(b), share, n, secs, mib(int64(float64(b)/secs)), float64(n)/secs)
}

func (p *progress) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
