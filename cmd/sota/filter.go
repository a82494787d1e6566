package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"sota/dsl"
)

func init() {
	register(command{
		name:  "filter validate",
		usage: "[--filters FILE] FILE|-",
		help:  "parse and check a filter; print OK, or every error with a caret and exit 1",
		run: func(args []string, in io.Reader, out, errw io.Writer) int {
			return runFilter("validate", args, in, out, errw)
		},
	})
	register(command{
		name:  "filter list",
		usage: "[--regex RE] [-o json]",
		help:  "list the saved filters of a server (-o json: the --filters FILE of validate and fmt)",
		run:   runFilterList,
	})
	register(command{
		name:  "filter fmt",
		usage: "[--filters FILE] FILE|-",
		help:  "print a filter in canonical form; exit 1 with the errors when it is invalid",
		run: func(args []string, in io.Reader, out, errw io.Writer) int {
			return runFilter("fmt", args, in, out, errw)
		},
	})
	register(command{
		name:  "filter lint",
		usage: "[--filters FILE] [--server URL [--token TOKEN]] FILE|-",
		help:  "print a filter's errors and warnings with carets and suggestions; exit 1 on errors",
		run:   runFilterLint,
	})
}

func runFilterList(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	c := newAdminCmd("filter list", "[--regex RE] [-o json] [--server URL] [--token T]",
		"Lists the saved filters of a server (GET /api/v1/filters). With -o json the output is what\n"+
			"sota filter validate and fmt take as --filters FILE.", true, stdout, stderr)
	regex := c.fs.String("regex", "", "only filters whose name matches this RE2 regex")
	if code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	path := "/filters"
	if *regex != "" {
		path += "?regex=" + url.QueryEscape(*regex)
	}
	var fs []struct{ Name, Expression string }
	raw, _, err := c.getJSON(path, &fs)
	if err != nil {
		return c.fail(err)
	}
	if c.json() {
		c.printJSON(raw)
		return 0
	}
	rows := make([][]string, 0, len(fs))
	for _, f := range fs {
		rows = append(rows, []string{f.Name, strings.Join(strings.Fields(f.Expression), " ")})
	}
	c.table([]string{"NAME", "EXPRESSION"}, rows)
	return 0
}

func runFilter(verb string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("filter "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	filters := fs.String("filters", "", "saved filters for `filter \"name\"` references: the JSON of GET /api/v1/filters ([{\"name\",\"expression\"}]) or an object name -> expression")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sota filter %s [--filters FILE] FILE|-\n\nReads the filter from FILE, or from standard input with -.\n\n", verb)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	src, err := readInput(fs.Arg(0), stdin)
	if err != nil {
		fmt.Fprintf(stderr, "sota filter %s: %v\n", verb, err)
		return 1
	}
	var refs dsl.FilterLookup
	if *filters != "" {
		if refs, err = loadFilters(*filters); err != nil {
			fmt.Fprintf(stderr, "sota filter %s: --filters: %v\n", verb, err)
			return 1
		}
	}
	n, err := dsl.ValidateFilter("", src, refs)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if refs == nil && strings.Contains(err.Error(), "unknown filter") {
			fmt.Fprintf(stderr, "\nThis filter refers to saved filters, which live on the server: give them with --filters FILE,\n"+
				"for example:  sota filter list -o json > filters.json && sota filter %s --filters filters.json %s\n", verb, fs.Arg(0))
		}
		return 1
	}
	if verb == "fmt" {
		fmt.Fprintln(stdout, dsl.Format(n))
	} else {
		fmt.Fprintln(stdout, "OK")
	}
	return 0
}

func readInput(name string, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, dsl.MaxLength+1))
	} else {
		b, err = os.ReadFile(name)
	}
	return strings.TrimSuffix(string(b), "\n"), err
}

// loadFilters reads saved filters: GET /api/v1/filters output, or a JSON object name -> expression.
func loadFilters(name string) (dsl.FilterLookup, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	byName := map[string]string{}
	var list []struct{ Name, Expression string }
	if err := json.Unmarshal(b, &list); err == nil {
		for _, f := range list {
			byName[strings.ToLower(f.Name)] = f.Expression
		}
	} else if err := json.Unmarshal(b, &byName); err == nil {
		for k, v := range byName {
			byName[strings.ToLower(k)] = v
		}
	} else {
		return nil, errors.New("expected [{\"name\",\"expression\"}] or {\"name\": \"expression\"}")
	}
	return savedFilters(byName), nil
}

// savedFilters are filters read from a file: lower-cased name -> expression. It lists its names, so
// that an unknown reference suggests the nearest one.
type savedFilters map[string]string

func (f savedFilters) LookupFilter(name string) (string, bool) {
	e, ok := f[strings.ToLower(name)]
	return e, ok
}

func (f savedFilters) FilterNames() []string {
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// runFilterLint lints a filter offline (against --filters) or, with --server, on the server, where the
// saved filters and the fleet give suggestions and warnings about names no vehicle has.
func runFilterLint(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("filter lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	filters := fs.String("filters", "", "saved filters for `filter \"name\"` references (offline): the JSON of GET /api/v1/filters ([{\"name\",\"expression\"}]) or an object name -> expression")
	server := fs.String("server", "", "lint on this server (base URL), against its saved filters and its fleet; default: offline")
	token := fs.String("token", os.Getenv("SOTA_TOKEN"), "API token for --server ($SOTA_TOKEN)")
	name := fs.String("name", "", "the name the filter is saved under, so that a reference cycle through it is found")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sota filter lint [--filters FILE] [--server URL [--token TOKEN]] [--name NAME] FILE|-\n\n"+
			"Prints every error and warning of the filter in FILE (standard input with -), each under its source\n"+
			"line with a caret, with a suggestion where there is one (\"did you mean has_package?\"); OK when\n"+
			"there are none. Warnings (names no vehicle has, regexes that match nothing, sub-expressions that\n"+
			"are always true or false) need the fleet: pass --server. Exit 1 when there are errors, 0 otherwise.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	src, err := readInput(fs.Arg(0), stdin)
	if err != nil {
		fmt.Fprintf(stderr, "sota filter lint: %v\n", err)
		return 1
	}
	var res dsl.LintResult
	if *server != "" {
		if res, err = lintOnServer(*server, *token, *name, src); err != nil {
			fmt.Fprintf(stderr, "sota filter lint: %v\n", err)
			return 1
		}
	} else {
		var refs dsl.FilterLookup
		if *filters != "" {
			if refs, err = loadFilters(*filters); err != nil {
				fmt.Fprintf(stderr, "sota filter lint: --filters: %v\n", err)
				return 1
			}
		}
		res = dsl.Lint(src, dsl.LintOptions{Filters: refs, Name: *name})
	}
	if len(res.Errors)+len(res.Warnings) == 0 {
		fmt.Fprintln(stdout, "OK")
		return 0
	}
	fmt.Fprintln(stdout, res.Print(src))
	if !res.Valid {
		return 1
	}
	return 0
}

// lintOnServer asks POST /api/v1/filters/lint.
func lintOnServer(server, token, name, src string) (dsl.LintResult, error) {
	var res dsl.LintResult
	body, _ := json.Marshal(map[string]string{"expression": src, "name": name})
	req, err := http.NewRequest("POST", strings.TrimRight(server, "/")+"/api/v1/filters/lint", bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return res, err
	}
	if resp.StatusCode != http.StatusOK {
		return res, errors.New(describeError(resp.Status, answer))
	}
	return res, json.Unmarshal(answer, &res)
}
