package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// This file holds what every command that talks to the admin API shares: its flags (--server, --token,
// -o), one HTTP client whose connection attempts give up after a few seconds, and error messages that
// say what to do (server down, bad token, the API's {code, description}).

// dialTimeout bounds connecting to --server: a server that is down fails a command within seconds.
var dialTimeout = 3 * time.Second

// httpClient is the CLI's client: quick to give up connecting, patient with a server that works (an
// upload or a dry run over a large fleet takes as long as it takes).
func httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: 10 * time.Minute,
	}}
}

// reachError explains a failed call: the server is not there, or the connection broke.
func reachError(server string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the server at %s: connection refused (is sotad running? set --server or $SOTA_SERVER)", server)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("cannot reach the server at %s: no answer within %s (is the address right? set --server or $SOTA_SERVER)", server, dialTimeout)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot reach the server at %s: unknown host %s (set --server or $SOTA_SERVER)", server, dnsErr.Name)
	}
	return fmt.Errorf("calling the server at %s: %v", server, err)
}

// adminCmd is one command that talks to the admin API: its flag set, connection flags and output.
type adminCmd struct {
	name           string // "package list"
	fs             *flag.FlagSet
	server, token  *string
	output         *string // "table" or "json"; nil when the command prints no listing
	stdout, stderr io.Writer
	required       []string // flags that must be given
	args           []string // the arguments after parse, flags taken out
}

// arg is the i-th argument (after parse).
func (c *adminCmd) arg(i int) string { return c.args[i] }

// newAdminCmd makes the flag set of "sota NAME": synopsis is the usage line after the name, about
// explains the command. listing adds -o table|json.
func newAdminCmd(name, synopsis, about string, listing bool, stdout, stderr io.Writer) *adminCmd {
	c := &adminCmd{name: name, fs: flag.NewFlagSet(name, flag.ContinueOnError), stdout: stdout, stderr: stderr}
	c.fs.SetOutput(stderr)
	c.server, c.token = serverFlags(c.fs)
	if listing {
		c.output = c.fs.String("o", "table", "output: table, or json (the API's answer as it is)")
	}
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "Usage: sota %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		c.fs.PrintDefaults()
	}
	return c
}

// require marks flags that must be given; parse names the first one missing.
func (c *adminCmd) require(names ...string) { c.required = append(c.required, names...) }

// parse parses args and checks the required flags and the number of arguments (nargs; -1: any).
// It returns false with the exit code when the command should stop.
func (c *adminCmd) parse(args []string, nargs int, argsName string) (int, bool) {
	// Flags may come before, between and after the arguments (sota package show nav 2.0 -o json); "--"
	// ends the flags.
	rest, tail := args, []string(nil)
	for i, a := range args {
		if a == "--" {
			rest, tail = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := c.fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0, false
			}
			return 2, false
		}
		rest = c.fs.Args()
		if len(rest) == 0 {
			break
		}
		c.args = append(c.args, rest[0])
		rest = rest[1:]
	}
	c.args = append(c.args, tail...)
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, n := range c.required {
		if !set[n] && c.fs.Lookup(n).Value.String() == "" {
			fmt.Fprintf(c.stderr, "sota %s: --%s is required (%s)\n", c.name, n, c.fs.Lookup(n).Usage)
			return 2, false
		}
	}
	if nargs >= 0 && len(c.args) != nargs {
		if nargs == 0 {
			fmt.Fprintf(c.stderr, "sota %s: unexpected argument %q\n", c.name, c.args[0])
		} else {
			fmt.Fprintf(c.stderr, "sota %s: give %s\n", c.name, argsName)
		}
		fmt.Fprintf(c.stderr, "Run 'sota %s --help' for usage.\n", c.name)
		return 2, false
	}
	if c.output != nil && *c.output != "table" && *c.output != "json" {
		fmt.Fprintf(c.stderr, "sota %s: -o must be table or json, not %q\n", c.name, *c.output)
		return 2, false
	}
	return 0, true
}

// json tells whether the listing is asked for as JSON.
func (c *adminCmd) json() bool { return c.output != nil && *c.output == "json" }

// fail prints an error of the command and returns exit code 1.
func (c *adminCmd) fail(err error) int {
	fmt.Fprintf(c.stderr, "sota %s: %v\n", c.name, err)
	return 1
}

// call sends a request to the admin API (path below /api/v1) and returns the answer's body and
// headers; a non-2xx answer is an error with the API's code and description.
func (c *adminCmd) call(method, path string, body io.Reader, contentType string) ([]byte, http.Header, error) {
	base := strings.TrimRight(*c.server, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("--server %q is not an http:// or https:// URL", *c.server)
	}
	req, err := http.NewRequest(method, base+"/api/v1"+path, body)
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if *c.token != "" {
		req.Header.Set("Authorization", "Bearer "+*c.token)
	}
	res, err := httpClient().Do(req)
	if err != nil {
		return nil, nil, reachError(base, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	if res.StatusCode == http.StatusUnauthorized {
		hint := "give an admin API token with --token or $SOTA_TOKEN (create one under Settings in the admin UI, or POST /api/v1/tokens)"
		if *c.token != "" {
			hint = "the token given with --token or $SOTA_TOKEN is not valid (revoked, or of another server)"
		}
		return nil, nil, fmt.Errorf("%s: %s", describeError(res.Status, raw), hint)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, nil, errors.New(describeError(res.Status, raw))
	}
	return raw, res.Header, nil
}

// getJSON calls GET path and decodes the answer into out; it returns the raw answer too.
func (c *adminCmd) getJSON(path string, out any) ([]byte, http.Header, error) {
	raw, hdr, err := c.call(http.MethodGet, path, nil, "")
	if err != nil {
		return nil, nil, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, nil, fmt.Errorf("unexpected answer from GET %s: %v", path, err)
		}
	}
	return raw, hdr, nil
}

// sendJSON calls method path with in as its JSON body and decodes the answer into out (unless nil).
func (c *adminCmd) sendJSON(method, path string, in, out any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	raw, _, err := c.call(method, path, body, "application/json")
	if err != nil {
		return nil, err
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("unexpected answer from %s %s: %v", method, path, err)
		}
	}
	return raw, nil
}

// printJSON prints an API answer indented.
func (c *adminCmd) printJSON(raw []byte) {
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil {
		out.Reset()
		out.Write(raw)
	}
	fmt.Fprintln(c.stdout, strings.TrimSpace(out.String()))
}

// table prints rows under a header, columns aligned.
func (c *adminCmd) table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// pathEscape escapes each argument for use as one path segment.
func pathEscape(parts ...string) string {
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// when formats an API time for a table: local time with its zone, "never" when absent.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// orDash is s, or "-" when empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
