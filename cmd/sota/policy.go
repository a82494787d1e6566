package main

// SDL policy tools: validate a table against the data dictionary, make a snapshot, merge a PTU, and
// simulate a head unit's PTU sequence against a policy server. The rules live in package policy.

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
	"time"

	"sota/policy"
)

func init() {
	register(command{
		name:  "policy validate",
		usage: "FILE|- [--kind ptu|pts|preloaded] [--json]",
		help:  "check a policy table against the SDL data dictionary; print every problem with its path, exit 1 when invalid",
		run:   runPolicyValidate,
	})
	register(command{
		name:  "policy snapshot",
		usage: "LOCAL.json [--vin VIN] [--app ID]... [--device ID]",
		help:  "print the Policy Table Snapshot SDL would send for a local table (no messages, PTS-only sections added)",
		run:   runPolicySnapshot,
	})
	register(command{
		name:  "policy merge",
		usage: "LOCAL.json PTU.json",
		help:  "validate a PTU and print the local table with it merged; exit 1 with the errors when the PTU is invalid",
		run:   runPolicyMerge,
	})
	register(command{
		name:  "policy simulate",
		usage: "[--server URL] [--env production|staging] [--local FILE] [--app ID]",
		help:  "run a head unit's PTU sequence against a policy server; print each status change and retry time",
		run:   runPolicySimulate,
	})
}

// policyFlags parses flags that may come before, between or after the positional arguments.
func policyFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// policyList is a repeatable string flag.
type policyList []string

func (l *policyList) String() string     { return strings.Join(*l, ",") }
func (l *policyList) Set(v string) error { *l = append(*l, v); return nil }

func policyRead(name string, stdin io.Reader) (policy.Table, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	t, err := policy.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

func policyUsage(fs *flag.FlagSet, stderr io.Writer, line, text string) {
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sota %s\n\n%s\n\n", line, text)
		fs.PrintDefaults()
	}
}

func runPolicyValidate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kindName := fs.String("kind", "ptu", "ptu (update), pts (snapshot) or preloaded")
	asJSON := fs.Bool("json", false, `print the report as JSON {"valid","errors","warnings"}`)
	policyUsage(fs, stderr, "policy validate FILE|- [--kind ptu|pts|preloaded] [--json]",
		"FILE holds {\"policy_table\": …}, the policy server envelope {\"data\": [{\"policy_table\": …}]},\nor Base64 of either; - reads standard input.")
	pos, err := policyFlags(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	kind, err := policy.ParseKind(*kindName)
	if err != nil {
		fmt.Fprintln(stderr, "sota policy validate: --kind must be ptu, pts or preloaded")
		return 2
	}
	t, err := policyRead(pos[0], stdin)
	if err != nil {
		fmt.Fprintln(stderr, "sota policy validate:", err)
		return 1
	}
	r := policy.Validate(kind, t)
	if *asJSON {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		for _, p := range r.Errors {
			fmt.Fprintf(stdout, "error: %s: %s\n", p.Path, p.Message)
		}
		for _, p := range r.Warnings {
			fmt.Fprintf(stdout, "warning: %s: %s\n", p.Path, p.Message)
		}
		if r.Valid {
			fmt.Fprintf(stdout, "valid %s\n", kind)
		} else {
			fmt.Fprintf(stdout, "invalid %s: %d errors\n", kind, len(r.Errors))
		}
	}
	if !r.Valid {
		return 1
	}
	return 0
}

func runPolicySnapshot(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var info policy.SnapshotInfo
	var apps policyList
	fs.StringVar(&info.VIN, "vin", "", "module_meta.vin")
	fs.StringVar(&info.Language, "language", "", "module_meta.language (e.g. EN-US)")
	fs.StringVar(&info.DeviceID, "device", "", "a device_data entry for the phone the snapshot travels through")
	fs.Var(&apps, "app", "a registered app id (repeatable); new ones ask for their policy")
	policyUsage(fs, stderr, "policy snapshot LOCAL.json [--vin VIN] [--app ID]... [--device ID]",
		"Prints the Policy Table Snapshot of the local table: a copy without consumer_friendly_messages.messages,\nwith module_meta, usage_and_error_counts and device_data.")
	pos, err := policyFlags(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) != 1 {
		fs.Usage()
		return 2
	}
	local, err := policyRead(pos[0], stdin)
	if err != nil {
		fmt.Fprintln(stderr, "sota policy snapshot:", err)
		return 1
	}
	info.Apps = apps
	fmt.Fprintln(stdout, string(policy.MakeSnapshot(local, info).MarshalIndent()))
	return 0
}

func runPolicyMerge(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy merge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyUsage(fs, stderr, "policy merge LOCAL.json PTU.json",
		"Validates PTU.json as a PTU and prints LOCAL.json with it merged: module_config, functional_groupings\nand app_policies replaced; consumer_friendly_messages replaced only when the PTU has messages.")
	pos, err := policyFlags(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) != 2 {
		fs.Usage()
		return 2
	}
	local, err := policyRead(pos[0], stdin)
	if err != nil {
		fmt.Fprintln(stderr, "sota policy merge:", err)
		return 1
	}
	ptu, err := policyRead(pos[1], stdin)
	if err != nil {
		fmt.Fprintln(stderr, "sota policy merge:", err)
		return 1
	}
	merged, r := policy.Merge(local, ptu)
	if !r.Valid {
		fmt.Fprintf(stderr, "sota policy merge: the PTU is invalid and was discarded (%d errors):\n", len(r.Errors))
		for _, p := range r.Errors {
			fmt.Fprintf(stderr, "error: %s: %s\n", p.Path, p.Message)
		}
		return 1
	}
	fmt.Fprintln(stdout, string(merged.MarshalIndent()))
	return 0
}

func runPolicySimulate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server, token := serverFlags(fs) // the policy endpoint itself needs no token
	env := fs.String("env", "production", "production or staging")
	localFile := fs.String("local", "", "the head unit's local policy table (default: SDL Core's preloaded table)")
	appID := fs.String("app", "sota-sim-app", "the app the snapshot travels through (registered with the snapshot)")
	vin := fs.String("vin", "", "module_meta.vin of the snapshot")
	out := fs.String("out", "", "write the local table after the sequence to this file")
	wait := fs.Duration("http-timeout", 10*time.Second, "real time to wait for each HTTP answer")
	policyUsage(fs, stderr, "policy simulate [--server URL] [--env production|staging] [--local FILE] [--app ID]",
		"Runs SDL's HTTP PTU sequence on a virtual clock: UPDATE_NEEDED, snapshot to the server, UPDATING,\n"+
			"then UP_TO_DATE on a valid PTU, or a timeout (timeout_after_x_seconds) and retries after\n"+
			"seconds_between_retries. Times are virtual seconds since the trigger; only the HTTP calls are real.")
	pos, err := policyFlags(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) != 0 || (*env != "production" && *env != "staging") {
		fs.Usage()
		return 2
	}
	local := policy.PreloadedTable()
	if *localFile != "" {
		if local, err = policyRead(*localFile, stdin); err != nil {
			fmt.Fprintln(stderr, "sota policy simulate:", err)
			return 1
		}
	}
	target := strings.TrimRight(*server, "/") + "/api/v1/" + *env + "/policy"
	client := &http.Client{Timeout: *wait}
	start := time.Unix(0, 0).UTC()
	clock := policy.NewVirtualClock(start)
	at := func(t time.Time) string { return fmt.Sprintf("+%ds", int(t.Sub(start)/time.Second)) }

	var seq *policy.Sequence
	seq = policy.NewSequence(local, policy.SequenceConfig{
		Clock: clock,
		AppID: *appID,
		Info:  policy.SnapshotInfo{VIN: *vin, Apps: []string{*appID}},
		Send: func(attempt int, url string, pts policy.Table) {
			body, err := policySend(client, target, *token, pts)
			if err != nil {
				fmt.Fprintf(stdout, "%-7s attempt %d: no PTU: %v\n", at(clock.Now()), attempt, err)
				return
			}
			seq.Receive(body)
		},
		Observe: func(e policy.Event) {
			t := at(e.At)
			switch e.Kind {
			case policy.EventStatus:
				fmt.Fprintf(stdout, "%-7s status %s\n", t, e.Status)
			case policy.EventSend:
				fmt.Fprintf(stdout, "%-7s attempt %d: snapshot sent to %s (table endpoint: %s)\n", t, e.Attempt, target, orNone(e.URL))
			case policy.EventTimeout:
				fmt.Fprintf(stdout, "%-7s attempt %d: timed out\n", t, e.Attempt)
			case policy.EventRetry:
				fmt.Fprintf(stdout, "%-7s retry: attempt %d at %s\n", t, e.Attempt, at(e.Next))
			case policy.EventRejected:
				fmt.Fprintf(stdout, "%-7s attempt %d: PTU invalid, discarded (%d errors)\n", t, e.Attempt, len(e.Report.Errors))
				for _, p := range e.Report.Errors {
					fmt.Fprintf(stdout, "        error: %s: %s\n", p.Path, p.Message)
				}
			case policy.EventApplied:
				fmt.Fprintf(stdout, "%-7s attempt %d: PTU valid, merged into the local table\n", t, e.Attempt)
			case policy.EventGiveUp:
				fmt.Fprintf(stdout, "%-7s no retries left\n", t)
			}
		},
	})
	seq.Trigger()
	for seq.Active() && clock.Step() {
	}
	final := seq.Status()
	fmt.Fprintf(stdout, "final status %s\n", final)
	if *out != "" {
		if err := os.WriteFile(*out, seq.Local().MarshalIndent(), 0o644); err != nil {
			fmt.Fprintln(stderr, "sota policy simulate:", err)
			return 1
		}
	}
	if final != policy.UpToDate {
		return 1
	}
	return 0
}

// policySend POSTs a snapshot and returns the body of a 200 answer.
func policySend(client *http.Client, url, token string, pts policy.Table) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(pts.MarshalIndent()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", res.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
