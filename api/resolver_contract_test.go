package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The Resolver table of API.md as a checklist: every row with its success status and each
// documented error (status and code). The fleet server of the resolver tests records every call it
// answers; after a full run of the package TestMain fails when a row's outcome was never seen, or
// when a row that reads was never answered 200 after a restart of the server, or answered a 5xx or
// a 4xx code the row does not document (400 invalid_entity, malformed input, is allowed on every
// row by the conventions of API.md).
var resolverContract = []contractRow{
	{"PUT", "/vehicles/:vin", []string{"204", "400 invalid_entity"}},
	{"POST", "/vehicles", []string{"200", "400 invalid_entity", "409 duplicate_entry"}},
	{"GET", "/vehicles", []string{"200", "400 invalid_entity", "406 invalid_filter"}},
	{"GET", "/vehicles/:vin", []string{"200", "404 missing_vehicle"}},
	{"DELETE", "/vehicles/:vin", []string{"200", "404 missing_vehicle"}},
	{"GET", "/vehicles/:vin/package", []string{"200", "404 missing_vehicle"}},
	{"PUT", "/vehicles/:vin/package/:name/:version", []string{"200", "404 missing_vehicle", "404 package_not_found"}},
	{"DELETE", "/vehicles/:vin/package/:name/:version", []string{"200", "404 missing_vehicle", "404 package_not_found", "409 not_installed"}},
	{"PUT", "/vehicles/:vin/packages", []string{"204", "404 missing_vehicle"}},
	{"GET", "/vehicles/:vin/component", []string{"200", "404 missing_vehicle"}},
	{"PUT", "/vehicles/:vin/component/:part", []string{"200", "404 missing_vehicle", "404 missing_component", "409 duplicate_entry"}},
	{"DELETE", "/vehicles/:vin/component/:part", []string{"200", "404 missing_vehicle", "404 missing_component"}},
	{"GET", "/vehicles/:vin/attributes", []string{"200", "400 invalid_entity", "404 missing_vehicle"}},
	{"PUT", "/vehicles/:vin/attributes", []string{"200", "400 invalid_entity", "404 missing_vehicle"}},
	{"GET", "/packages", []string{"200", "400 invalid_entity"}},
	{"PUT", "/packages/:name/:version", []string{"200", "400 invalid_entity"}},
	{"POST", "/packages", []string{"200", "400 invalid_entity", "409 duplicate_entry"}},
	{"GET", "/packages/:name/:version", []string{"200", "404 package_not_found"}},
	{"DELETE", "/packages/:name/:version", []string{"200", "404 package_not_found", "409 package_in_use"}},
	{"GET", "/packages/:name/:version/vehicles", []string{"200", "404 package_not_found"}},
	{"PUT", "/packages/:name/:version/dependencies/:depName/:depVersion", []string{"200", "404 package_not_found", "409 duplicate_entry", "409 dependency_cycle"}},
	{"DELETE", "/packages/:name/:version/dependencies/:depName/:depVersion", []string{"200", "404 package_not_found", "404 missing_dependency"}},
	{"PUT", "/packages/:name/:version/dependencies/:depName", []string{"200", "400 invalid_entity", "404 package_not_found", "409 dependency_cycle"}},
	{"DELETE", "/packages/:name/:version/dependencies/:depName", []string{"200", "404 package_not_found", "404 missing_dependency"}},
	{"GET", "/packages/:name/:version/dependencies", []string{"200", "404 package_not_found"}},
	{"GET", "/packages/filter", []string{"200"}},
	{"GET", "/packages/:name/:version/filter", []string{"200", "404 package_not_found"}},
	{"PUT", "/packages/:name/:version/filter/:filter", []string{"200", "404 package_not_found", "404 filter_not_found", "409 duplicate_entry"}},
	{"DELETE", "/packages/:name/:version/filter/:filter", []string{"200", "404 filter_not_found"}},
	{"GET", "/filters", []string{"200", "400 invalid_entity"}},
	{"POST", "/filters", []string{"200", "400 invalid_entity", "406 invalid_filter", "409 duplicate_entry"}},
	{"GET", "/filters/:name", []string{"200", "404 filter_not_found"}},
	{"PUT", "/filters/:name", []string{"200", "404 filter_not_found", "406 invalid_filter"}},
	{"DELETE", "/filters/:name", []string{"200", "404 filter_not_found", "409 filter_in_use"}},
	{"GET", "/filters/:name/package", []string{"200", "404 filter_not_found"}},
	{"POST", "/validate/filter", []string{"200", "406 invalid_filter"}},
	{"POST", "/filters/format", []string{"200", "406 invalid_filter"}},
	{"POST", "/filters/explain", []string{"200", "404 missing_vehicle", "406 invalid_filter"}},
	{"POST", "/filters/lint", []string{"200", "413 body_too_large"}},
	{"POST", "/filters/complete", []string{"200", "400 invalid_entity"}},
	{"GET", "/components", []string{"200", "400 invalid_entity"}},
	{"PUT", "/components/:part", []string{"200", "400 invalid_entity"}},
	{"POST", "/components", []string{"200", "400 invalid_entity", "409 duplicate_entry"}},
	{"DELETE", "/components/:part", []string{"200", "404 missing_component", "409 component_is_installed"}},
	{"GET", "/components/:part/vehicles", []string{"200", "404 missing_component"}},
	{"GET", "/resolve/:name/:version", []string{"200", "404 package_not_found", "404 no_filters"}},
	{"POST", "/resolve/dry-run", []string{"200", "400 invalid_entity", "404 package_not_found", "404 no_filters", "406 invalid_filter"}},
	{"POST", "/fleet/import", []string{"200", "400 invalid_entity"}},
}

// contractRow is one row of an API.md table: a route with its success status and each documented
// error.
type contractRow struct {
	method, path string
	outcomes     []string // "200", "404 missing_vehicle", …
}

// contractCall is one answered call of a fleet server.
type contractCall struct {
	method, path string // path without /api/v1 and the query
	outcome      string // "200", "404 missing_vehicle"
	restarted    bool   // the server had been restarted before the call
}

// contractLog collects the answered calls of the servers of one table.
type contractLog struct {
	sync.Mutex
	list []contractCall
}

var contractCalls contractLog

// recordingWriter keeps the status and, for errors, the body of an answer.
type recordingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *recordingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status >= 400 && w.body.Len() < 1<<16 {
		w.body.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// recordContract wraps the handler of a fleet server so that its calls count for the checklist.
func recordContract(h http.Handler, restarted func() bool) http.Handler {
	return recordInto(&contractCalls, h, restarted)
}

// recordInto wraps a handler so that its calls are kept in log.
func recordInto(log *contractLog, h http.Handler, restarted func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &recordingWriter{ResponseWriter: w}
		h.ServeHTTP(rw, r)
		outcome := fmt.Sprint(rw.status)
		if rw.status >= 400 {
			var e struct{ Code string }
			json.Unmarshal(rw.body.Bytes(), &e)
			outcome += " " + e.Code
		}
		log.Lock()
		defer log.Unlock()
		log.list = append(log.list, contractCall{r.Method, strings.TrimPrefix(r.URL.Path, "/api/v1"), outcome, restarted()})
	})
}

var paramSegment = regexp.MustCompile(`:[A-Za-z]+`)

// checkContract lists the rows and outcomes of a table that no call in log produced.
func checkContract(rows []contractRow, log *contractLog) []string {
	log.Lock()
	defer log.Unlock()
	var missing []string
	for _, row := range rows {
		re := regexp.MustCompile("^" + paramSegment.ReplaceAllString(row.path, `[^/]+`) + "$")
		seen, readAfterRestart := map[string]bool{}, false
		for _, c := range log.list {
			if c.method == row.method && re.MatchString(c.path) {
				seen[c.outcome] = true
				readAfterRestart = readAfterRestart || c.restarted && c.outcome == "200"
			}
		}
		for _, o := range row.outcomes {
			if !seen[o] {
				missing = append(missing, fmt.Sprintf("%s %s: no test answered %s", row.method, row.path, o))
			}
		}
		if row.method == "GET" && !readAfterRestart {
			missing = append(missing, fmt.Sprintf("%s %s: no test read it (200) after a restart", row.method, row.path))
		}
		var undocumented []string
		for o := range seen {
			if o[0] == '4' && o != "400 invalid_entity" && !contains(row.outcomes, o) {
				undocumented = append(undocumented, o)
			}
			if o[0] == '5' {
				missing = append(missing, fmt.Sprintf("%s %s: answered %s", row.method, row.path, o))
			}
		}
		sort.Strings(undocumented)
		for _, o := range undocumented {
			missing = append(missing, fmt.Sprintf("%s %s: answered %s, which the table does not document", row.method, row.path, o))
		}
	}
	return missing
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestMain runs the package's tests, then, when the whole package ran (no -run, -skip or -short),
// checks the Resolver and Core checklists.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" && !testing.Short() {
		for _, table := range []struct {
			name string
			rows []contractRow
			log  *contractLog
		}{{"Resolver", resolverContract, &contractCalls}, {"Core", coreContract, &coreCalls}} {
			if missing := checkContract(table.rows, table.log); len(missing) > 0 {
				fmt.Fprintf(os.Stderr, "FAIL: the %s table of API.md is not fully tested on the real server:\n  %s\n", table.name, strings.Join(missing, "\n  "))
				code = 1
			}
		}
	}
	os.Exit(code)
}
