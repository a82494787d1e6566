package api

// Model-based random sessions: an in-memory model of the resolver's world (vehicles, packages,
// components, filters, associations, exact dependencies) and random sessions of commands against the
// real server (real Badger, real HTTP on loopback). About half the commands are deliberately invalid
// (bad VIN, unknown entity, broken filter, cycle, duplicate POST): each must get its documented 4xx with
// {"code","description"} and change nothing. After every step the server's answers (lists, per-entity
// views, reverse lookups answered by the FleetIndex, resolve and dry run) must equal the model's; the
// server is restarted now and then, so what the index rebuilds from the store is checked too.
//
// The same sessions run against three sotad replicas on one PostgreSQL store
// (TestModelRandomSessionsOnReplicas, model_replicas_test.go): commands go round-robin to the
// replicas, checks read from all of them, restarts restart one replica at a time.
//
// Replay a failing session with SOTA_MODEL_SEED=<seed> (printed on failure; SOTA_MODEL_FULL_LOG=1
// prints every step, not the last 40); SOTA_MODEL_STEPS and SOTA_MODEL_SESSIONS lengthen the run
// (make soak).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/policy"
	"sota/resolver"
	"sota/store"
)

// --- the model ---

type mPkg struct{ name, version string }

func (p mPkg) String() string { return p.name + "-" + p.version }
func (p mPkg) id() resolver.PackageID {
	return resolver.PackageID{Name: p.name, Version: p.version}
}

type mVehicle struct {
	pkgs  map[string]string // name -> version (one version per name; unregistered ones are foreign)
	parts map[string]bool
	attrs map[string]any // string or float64
}

func newMVehicle() *mVehicle {
	return &mVehicle{pkgs: map[string]string{}, parts: map[string]bool{}, attrs: map[string]any{}}
}

// mExpr is a generated filter: its source text and its meaning over a vehicle of the model.
type mExpr struct {
	src  string
	eval func(m *model, vin string) bool
	refs []string // filter names referenced directly
}

type model struct {
	vehicles map[string]*mVehicle
	pkgs     map[mPkg][2]string // -> description, vendor
	parts    map[string]string  // -> description
	filters  map[string]mExpr
	assoc    map[mPkg]map[string]bool // package -> filter names
	deps     map[mPkg]map[mPkg]bool   // dependent -> dependencies (exact)
	requests []*mRequest              // update requests, in creation order
}

// mRequest is an update request: its package, the packages of its install lists, and its pending
// updates (VIN -> install list, sorted).
type mRequest struct {
	id      string
	pkg     mPkg
	pkgs    map[mPkg]bool
	pending map[string]string
}

// pendingFor tells whether the vehicle has an update of the package pending.
func (m *model) pendingFor(vin string, p mPkg) bool {
	for _, r := range m.requests {
		if _, ok := r.pending[vin]; ok && r.pkg == p {
			return true
		}
	}
	return false
}

// inUse tells whether a request with pending updates installs the package.
func (m *model) inUse(p mPkg) bool {
	for _, r := range m.requests {
		if r.pkgs[p] && len(r.pending) > 0 {
			return true
		}
	}
	return false
}

func newModel() *model {
	return &model{vehicles: map[string]*mVehicle{}, pkgs: map[mPkg][2]string{}, parts: map[string]string{},
		filters: map[string]mExpr{}, assoc: map[mPkg]map[string]bool{}, deps: map[mPkg]map[mPkg]bool{}}
}

func (m *model) hasPkg(vin string, p mPkg) bool {
	v := m.vehicles[vin]
	_, reg := m.pkgs[p]
	return reg && v.pkgs[p.name] == p.version
}

// reaches tells whether from reaches to over dependency edges (from == to counts).
func (m *model) reaches(from, to mPkg) bool {
	seen := map[mPkg]bool{}
	var walk func(p mPkg) bool
	walk = func(p mPkg) bool {
		if p == to {
			return true
		}
		if seen[p] {
			return false
		}
		seen[p] = true
		for d := range m.deps[p] {
			if walk(d) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

// solve is the resolve semantics of API.md over exact dependencies: the closure from root, keeping an
// installed version that satisfies every constraint on its name (its dependencies taken as present),
// unresolved when two constraints on one name disagree.
func (m *model) solve(vin string, root mPkg) (install []mPkg, ok bool) {
	installed := m.vehicles[vin].pkgs
	cons := map[string]map[string]bool{root.name: {root.version: true}}
	expanded := map[mPkg]bool{}
	for changed := true; changed; {
		changed = false
		for name, vs := range cons {
			if len(vs) > 1 {
				return nil, false
			}
			for ver := range vs {
				p := mPkg{name, ver}
				if installed[name] == ver || expanded[p] {
					continue
				}
				expanded[p] = true
				changed = true
				for d := range m.deps[p] {
					if cons[d.name] == nil {
						cons[d.name] = map[string]bool{}
					}
					cons[d.name][d.version] = true
				}
			}
		}
	}
	for name, vs := range cons {
		for ver := range vs {
			if installed[name] != ver {
				install = append(install, mPkg{name, ver})
			}
		}
	}
	return install, true
}

// matches tells whether a vehicle passes every filter associated with the package.
func (m *model) matches(vin string, p mPkg) bool {
	for f := range m.assoc[p] {
		if !m.filters[f].eval(m, vin) {
			return false
		}
	}
	return true
}

// --- the pools the generator draws from ---

var (
	mVINs     = []string{"SAJNX5745SC000001", "SAJNX5745SC000002", "SAJWA0E77D8K00003", "WDD12345678900004", "WDD12345678900005", "WDDAB000000000016", "1HGCM82633A000007", "1HGCM82633A000018"}
	mBadVINs  = []string{"SAJNX5745SC00000I", "SAJNX5745SC0001", "sajnx5745sc000001", "SAJNX5745SC0000012", "SAJNX5745SC00000Q"}
	mNames    = []string{"nav", "radio", "maps", "ecu-fw"}
	mVersions = []string{"1.0.0", "1.1.0", "2.0.0"}
	mParts    = []string{"ECU1", "ECU2", "NAV7", "TCU3", "HU12"}
	mFilters  = []string{"F1", "F2", "Fleet3", "F4", "Beta5"}
	mBadPkgs  = []mPkg{{"nav", "1.0"}, {"nav", "v1.0.0"}, {"bad$name", "1.0.0"}, {"nav", "01.0.0"}}
	mBadParts = []string{"ECU-1", "ECU_1", strings.Repeat("P", 31)}
	mBadNames = []string{"F", "bad-name", "F 1", strings.Repeat("F", 101)}
	mBadExprs = []string{"", "vin_matches \"(\"", "has_package \"nav\" >= \"1.0\"", "TRUE AND", "vin_matches abc", "filter \"Nope9\"", "has_component \"[\""}
)

// dq quotes a DSL string (the language has no escape sequences).
func dq(s string) string { return `"` + s + `"` }

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// randomCase changes the case of a name (names compare case-insensitively).
func randomCase(r *rand.Rand, s string) string {
	switch r.IntN(4) {
	case 0:
		return strings.ToUpper(s)
	case 1:
		return strings.ToLower(s)
	}
	return s
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range pa {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x - y
		}
	}
	return 0
}

// genExpr generates a valid filter over the model; it may reference existing filters other than self.
func (m *model) genExpr(r *rand.Rand, depth int, self string) mExpr {
	if depth > 0 && r.IntN(3) > 0 {
		a, b := m.genExpr(r, depth-1, self), m.genExpr(r, depth-1, self)
		refs := append(slices.Clone(a.refs), b.refs...)
		switch r.IntN(3) {
		case 0:
			return mExpr{"(" + a.src + ") AND (" + b.src + ")", func(m *model, v string) bool { return a.eval(m, v) && b.eval(m, v) }, refs}
		case 1:
			return mExpr{"(" + a.src + ") OR (" + b.src + ")", func(m *model, v string) bool { return a.eval(m, v) || b.eval(m, v) }, refs}
		default:
			return mExpr{"NOT (" + a.src + ")", func(m *model, v string) bool { return !a.eval(m, v) }, a.refs}
		}
	}
	switch r.IntN(9) {
	case 0:
		re := pick(r, []string{"^SAJ", "^WDD", "1$", "^1HG", "5", "^SAJNX"})
		rx := regexp.MustCompile(re)
		return mExpr{"vin_matches " + dq(re), func(_ *model, v string) bool { return rx.MatchString(v) }, nil}
	case 1:
		part := pick(r, mParts)
		re := pick(r, []string{"^" + part + "$", part[:3], "2$"})
		rx := regexp.MustCompile(re)
		return mExpr{"has_component " + dq(re), func(m *model, v string) bool {
			for p := range m.vehicles[v].parts {
				if rx.MatchString(p) {
					return true
				}
			}
			return false
		}, nil}
	case 2:
		name := pick(r, mNames)
		vre := pick(r, []string{"", "^1\\.", "^2", "1\\.1"})
		nrx, vrx := regexp.MustCompile(name), regexp.MustCompile(vre)
		return mExpr{"has_package " + dq(name) + " " + dq(vre), func(m *model, v string) bool {
			for n, ver := range m.vehicles[v].pkgs {
				if m.hasPkg(v, mPkg{n, ver}) && nrx.MatchString(n) && vrx.MatchString(ver) {
					return true
				}
			}
			return false
		}, nil}
	case 3:
		name := pick(r, mNames)
		op := pick(r, []string{"==", "!=", "<", "<=", ">", ">="})
		want := pick(r, mVersions)
		return mExpr{"has_package " + dq(randomCase(r, name)) + " " + op + " " + dq(want), func(m *model, v string) bool {
			ver, ok := m.vehicles[v].pkgs[name]
			if !ok || !m.hasPkg(v, mPkg{name, ver}) {
				return false
			}
			c := compareVersions(ver, want)
			switch op {
			case "==":
				return c == 0
			case "!=":
				return c != 0
			case "<":
				return c < 0
			case "<=":
				return c <= 0
			case ">":
				return c > 0
			}
			return c >= 0
		}, nil}
	case 7:
		switch r.IntN(4) {
		case 0:
			want := pick(r, []string{"EU", "US", "CN"})
			op := pick(r, []string{"==", "!="})
			return mExpr{"attr " + dq("region") + " " + op + " " + dq(want), func(m *model, v string) bool {
				got, ok := m.vehicles[v].attrs["region"].(string)
				return ok && (got == want) == (op == "==")
			}, nil}
		case 1:
			want := float64(pick(r, []int{2019, 2021, 2023}))
			op := pick(r, []string{"<", "<=", ">", ">=", "=="})
			return mExpr{fmt.Sprintf("attr %s %s %g", dq("year"), op, want), func(m *model, v string) bool {
				got, ok := m.vehicles[v].attrs["year"].(float64)
				switch {
				case !ok:
					return false
				case op == "<":
					return got < want
				case op == "<=":
					return got <= want
				case op == ">":
					return got > want
				case op == ">=":
					return got >= want
				}
				return got == want
			}, nil}
		case 2:
			a, b := pick(r, []string{"EU", "US"}), pick(r, []string{"CN", "US"})
			return mExpr{"attr " + dq("region") + " IN (" + dq(a) + ", " + dq(b) + ")", func(m *model, v string) bool {
				got, ok := m.vehicles[v].attrs["region"].(string)
				return ok && (got == a || got == b)
			}, nil}
		}
		k := pick(r, []string{"trim", "region", "year"})
		return mExpr{"has_attr " + dq(k), func(m *model, v string) bool { _, ok := m.vehicles[v].attrs[k]; return ok }, nil}
	case 4:
		var names []string
		for n := range m.filters {
			if !strings.EqualFold(n, self) {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			sort.Strings(names)
			n := pick(r, names)
			return mExpr{"filter " + dq(randomCase(r, n)), func(m *model, v string) bool { return m.filters[n].eval(m, v) }, []string{n}}
		}
		fallthrough
	case 5:
		return mExpr{"TRUE", func(*model, string) bool { return true }, nil}
	case 6:
		return mExpr{"FALSE", func(*model, string) bool { return false }, nil}
	}
	return mExpr{"true", func(*model, string) bool { return true }, nil}
}

// genAttrs generates a valid attribute set.
func genAttrs(r *rand.Rand) map[string]any {
	a := map[string]any{}
	if r.IntN(3) > 0 {
		a["region"] = pick(r, []string{"EU", "US", "CN"})
	}
	if r.IntN(3) > 0 {
		a["year"] = float64(pick(r, []int{2018, 2019, 2020, 2021, 2022, 2023}))
	}
	if r.IntN(2) == 0 {
		a["trim"] = pick(r, []string{"base", "sport", ""})
	}
	return a
}

// --- the server ---

// modelTarget is what a session drives: one server, or several replicas of one.
type modelTarget interface {
	// command sends a command (to the next replica) and read a check's read (to the next replica, or
	// the one reads are pinned to).
	command(method, path string, body any) response
	read(method, path string, body any) response
	// restart restarts the server (one replica) and pins reads to it until unpin; it returns what it
	// did, for the session's log.
	restart() string
	unpin()
	// followsFeed tells whether reads other than resolve and dry run may lag behind an acknowledged
	// write (replicas: they follow the change feed, within 1 s by API.md "Stores and replicas").
	followsFeed() bool
}

// modelServer is the full server (resolver, engine, policy over one store) on loopback; restart
// closes everything and opens it again on the same directory.
type modelServer struct {
	t   *testing.T
	dir string
	db  *store.DB
	eng *engine.Service
	srv *fleetServer
}

func (ms *modelServer) command(method, path string, body any) response {
	return sendTo(ms.t, ms.srv.srv.Client(), ms.srv.srv.URL+"/api/v1", method, path, body)
}
func (ms *modelServer) read(method, path string, body any) response {
	return ms.command(method, path, body)
}
func (ms *modelServer) restart() string { ms.close(); ms.open(); return "restart" }
func (ms *modelServer) unpin()          {}
func (ms *modelServer) followsFeed() bool {
	return false
}

func (ms *modelServer) open() {
	db, err := storetest.OpenDir(ms.t, ms.dir+"/db")
	require.NoError(ms.t, err)
	rs, err := resolver.New(db)
	require.NoError(ms.t, err)
	eng, err := engine.New(db, rs, engine.Options{DataDir: ms.dir})
	require.NoError(ms.t, err)
	h, _ := newServer(ms.t, Config{AuthNone: true}, Deps{Auth: auth.New(db), Engine: eng, Resolver: rs, Filters: rs, Policy: policy.NewService(db)})
	ms.db, ms.eng = db, eng
	ms.srv = &fleetServer{t: ms.t, dir: ms.dir, db: db, rs: rs, srv: newLoopback(h)}
}

func (ms *modelServer) close() {
	if ms.srv != nil {
		ms.srv.srv.Close()
		require.NoError(ms.t, ms.db.Close())
		ms.srv = nil
	}
}

// --- sessions ---

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestModelRandomSessions(t *testing.T) {
	steps := envInt("SOTA_MODEL_STEPS", 250)
	sessions := envInt("SOTA_MODEL_SESSIONS", 2)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SOTA_MODEL_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "SOTA_MODEL_SEED")
		seed, sessions = s, 1
	}
	for i := range sessions {
		s := seed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			t.Logf("replay with SOTA_MODEL_SEED=%d SOTA_MODEL_STEPS=%d", s, steps)
			runModelSession(t, s, steps)
		})
	}
}

type session struct {
	t       *testing.T
	ct      checkT // the checks' T: t, or a probe while a check that may lag is retried
	r       *rand.Rand
	m       *model
	ms      modelTarget
	log     []string // the steps so far, printed on failure
	valid   int
	invalid int
	queued  int           // updates queued by valid update requests
	acked   time.Time     // when the last command was answered
	lag     time.Duration // the longest a check waited for the change feed
	waits   int           // checks that had to wait for it
}

func runModelSession(t *testing.T, seed uint64, steps int) {
	ms := &modelServer{t: t, dir: t.TempDir()}
	ms.open()
	t.Cleanup(ms.close)
	runSession(t, ms, seed, steps)
}

// runSession runs steps random commands against the target, checking it against the model after each.
func runSession(t *testing.T, ms modelTarget, seed uint64, steps int) *session {
	s := &session{t: t, ct: t, r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m: newModel(), ms: ms}
	t.Cleanup(func() {
		if t.Failed() {
			n := max(0, len(s.log)-40)
			if os.Getenv("SOTA_MODEL_FULL_LOG") != "" {
				n = 0
			}
			t.Logf("seed %d, last steps:\n  %s", seed, strings.Join(s.log[n:], "\n  "))
		}
	})
	for i := range steps {
		s.step(i < steps/4)
		if i%10 == 9 || i == steps-1 {
			s.checkAll()
		} else {
			s.eventually(s.checkLists)
		}
		if s.r.IntN(60) == 0 {
			s.log = append(s.log, ms.restart())
			s.checkAll()
			ms.unpin()
		}
	}
	t.Logf("%d steps: %d valid, %d invalid commands; %d updates queued", steps, s.valid, s.invalid, s.queued)
	require.Greater(t, s.invalid, steps/4, "about half the commands are invalid")
	require.Greater(t, s.valid, steps/10, "a tenth of the commands at least are valid (a seed gave 37 of 250)")
	return s
}

// checkT is what the checks fail through: the test, or a probe.
type checkT interface {
	require.TestingT
	Helper()
}

// probe is a checkT that records the first failure and stops the check (FailNow panics with it).
type probe struct{ msg string }

type probeFailed struct{}

func (p *probe) Errorf(format string, args ...any) {
	if p.msg == "" {
		p.msg = fmt.Sprintf(format, args...)
	}
}
func (p *probe) FailNow() { panic(probeFailed{}) }
func (p *probe) Helper()  {}

// try runs check with a probe and returns its failure ("" when it passed).
func (s *session) try(check func()) (msg string) {
	p := &probe{}
	s.ct = p
	defer func() {
		s.ct = s.t
		if r := recover(); r != nil {
			if _, ok := r.(probeFailed); !ok {
				panic(r)
			}
			msg = p.msg
		}
	}()
	check()
	return p.msg
}

// feedFollowWithin is how soon a read of another replica reflects an acknowledged write, by API.md
// "Stores and replicas" (resolve and dry run reflect it at once).
const feedFollowWithin = time.Second

// eventually runs a check of reads that follow the change feed. On one server it must pass at once;
// on replicas it is run again until it passes, and fails when it still does not once
// feedFollowWithin has passed since the last command was answered. Each run draws the same random
// choices (names in random case, versions), so that a seed replays the same session.
func (s *session) eventually(check func()) {
	s.t.Helper()
	if !s.ms.followsFeed() {
		check()
		return
	}
	seed := s.r.Uint64()
	saved := s.r
	defer func() { s.r = saved }()
	for retried := false; ; retried = true {
		s.r = rand.New(rand.NewPCG(seed, seed))
		msg := s.try(check)
		if msg == "" {
			if retried {
				s.waits++
				s.lag = max(s.lag, time.Since(s.acked))
			}
			return
		}
		if time.Since(s.acked) > feedFollowWithin {
			s.t.Fatalf("a read still differs from the model %v after the last command was answered (reads follow the change feed within %v):\n%s", time.Since(s.acked).Round(time.Millisecond), feedFollowWithin, msg)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// send sends a command and requires the status; for an error it requires the code and a description.
func (s *session) send(status int, code, method, path string, body any) response {
	s.t.Helper()
	s.log = append(s.log, fmt.Sprintf("%s %s %v -> %d %s", method, path, body, status, code))
	r := s.ms.command(method, path, body)
	s.acked = time.Now()
	require.Equalf(s.t, status, r.status, "%s %s %v: body %s", method, path, body, r.body)
	if status >= 400 {
		s.invalid++
		require.Equalf(s.t, code, r.code(), "%s %s: body %s", method, path, r.body)
		require.NotEmptyf(s.t, r.description(), "%s %s: body %s", method, path, r.body)
	} else {
		s.valid++
	}
	return r
}

// binary uploads a binary for a registered package (queuing refuses install lists without one; that
// rule has its own tests) through the API, keeping its description and vendor.
func (s *session) binary(p mPkg) {
	s.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	f, err := w.CreateFormFile("file", p.String()+".bin")
	require.NoError(s.t, err)
	f.Write([]byte("binary of " + p.String()))
	require.NoError(s.t, w.Close())
	info := s.m.pkgs[p]
	path := pkgPath(p) + "?description=" + url.QueryEscape(info[0]) + "&vendor=" + url.QueryEscape(info[1])
	s.log = append(s.log, "upload the binary of "+p.String())
	r := s.ms.command("PUT", path, rawBody{w.FormDataContentType(), body.Bytes()})
	s.acked = time.Now()
	require.Equalf(s.t, http.StatusNoContent, r.status, "PUT %s (multipart): %s", path, r.body)
}

// rawBody is a request body sent as is, with its content type.
type rawBody struct {
	contentType string
	data        []byte
}

// sendTo sends a request to base (a server's URL with /api/v1); body is JSON-encoded unless it is a
// rawBody, or nil.
func sendTo(t testing.TB, c *http.Client, base, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case rawBody:
		rd, ct = bytes.NewReader(b.data), b.contentType
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, base+path, rd)
	require.NoError(t, err)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func pkgPath(p mPkg) string {
	return "/packages/" + url.PathEscape(p.name) + "/" + url.PathEscape(p.version)
}

func (s *session) somePkg() mPkg { return mPkg{pick(s.r, mNames), pick(s.r, mVersions)} }

// casePath is pkgPath with the name in a random case.
func (s *session) casePath(p mPkg) string { return pkgPath(mPkg{randomCase(s.r, p.name), p.version}) }

func (s *session) existingVIN() (string, bool) {
	vins := sortedKeys(s.m.vehicles)
	if len(vins) == 0 {
		return "", false
	}
	return pick(s.r, vins), true
}

func (s *session) missingVIN() string {
	for {
		if v := pick(s.r, mVINs); s.m.vehicles[v] == nil {
			return v
		}
		if len(s.m.vehicles) == len(mVINs) {
			return "SAJNX5745SC999999"
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (s *session) filterName(name string) (string, bool) {
	for n := range s.m.filters {
		if strings.EqualFold(n, name) {
			return n, true
		}
	}
	return "", false
}

// step runs one random command, valid or not, and applies it to the model when it must succeed. While
// growing, it picks the commands that build the world (which still fail half the time).
func (s *session) step(grow bool) {
	m, r := s.m, s.r
	c := r.IntN(28)
	if grow {
		c = pick(r, []int{0, 1, 3, 4, 5, 7, 9, 11, 12, 14, 15, 16, 19, 19, 21, 22, 25})
	}
	switch c {
	case 25, 26: // POST /update_requests
		p := s.somePkg()
		var withFilters []mPkg
		for q, fs := range m.assoc {
			if _, ok := m.pkgs[q]; ok && len(fs) > 0 {
				withFilters = append(withFilters, q)
			}
		}
		if len(withFilters) > 0 && r.IntN(4) > 0 {
			sort.Slice(withFilters, func(i, j int) bool { return withFilters[i].String() < withFilters[j].String() })
			p = pick(r, withFilters)
		}
		body := map[string]any{"packageId": p.id(), "priority": 1 + r.IntN(20)}
		_, known := m.pkgs[p]
		switch {
		case r.IntN(6) == 0:
			s.send(400, "invalid_entity", "POST", "/update_requests", map[string]any{"packageId": map[string]string{"name": p.name, "version": "1.0"}})
		case r.IntN(6) == 0:
			body["periodOfValidity"] = "yesterday"
			s.send(400, "invalid_entity", "POST", "/update_requests", body)
		case !known:
			s.send(404, "package_not_found", "POST", "/update_requests", body)
		case len(m.assoc[p]) == 0:
			s.send(404, "no_filters", "POST", "/update_requests", body)
		default:
			rq := &mRequest{pkg: p, pkgs: map[mPkg]bool{}, pending: map[string]string{}}
			queued, skipped := 0, 0
			for _, vin := range sortedKeys(m.vehicles) {
				if !m.matches(vin, p) || m.hasPkg(vin, p) {
					continue
				}
				install, ok := m.solve(vin, p)
				if !ok {
					continue
				}
				if m.pendingFor(vin, p) {
					skipped++
					continue
				}
				queued++
				sort.Slice(install, func(i, j int) bool { return install[i].String() < install[j].String() })
				rq.pending[vin] = fmt.Sprint(install)
				for _, ip := range install {
					rq.pkgs[ip] = true
				}
			}
			var got struct {
				ID                string
				Vehicles, Skipped int
			}
			body["packageId"] = map[string]string{"name": randomCase(r, p.name), "version": p.version}
			s.send(200, "", "POST", "/update_requests", body).decode(s.t, &got)
			require.Equal(s.t, [2]int{queued, skipped}, [2]int{got.Vehicles, got.Skipped}, "POST /update_requests %s: vehicles, skipped", p)
			rq.id = got.ID
			s.queued += queued
			m.requests = append(m.requests, rq)
		}
	case 27: // PUT /update_requests/:id/cancel
		if len(m.requests) == 0 || r.IntN(4) == 0 {
			s.send(404, "missing_update_request", "PUT", "/update_requests/00000000-0000-4000-8000-000000000000/cancel", nil)
			return
		}
		rq := pick(r, m.requests)
		var got struct{ Canceled int }
		s.send(200, "", "PUT", "/update_requests/"+rq.id+"/cancel", nil).decode(s.t, &got)
		require.Equal(s.t, len(rq.pending), got.Canceled, "canceled updates of %s", rq.id)
		rq.pending = map[string]string{}
	case 22: // PUT /vehicles/:vin/attributes
		vin, ok := s.existingVIN()
		switch {
		case !ok || r.IntN(5) == 0:
			s.send(404, "missing_vehicle", "PUT", "/vehicles/"+s.missingVIN()+"/attributes", map[string]any{"region": "EU"})
		case r.IntN(3) == 0:
			bad := pick(r, []any{map[string]any{"region": map[string]any{"x": 1}}, map[string]any{"year": true}, map[string]any{"a": nil}, []any{1}, "x", map[string]any{"": "empty key"}})
			s.send(400, "invalid_entity", "PUT", "/vehicles/"+vin+"/attributes", bad)
		default:
			a := genAttrs(r)
			s.send(200, "", "PUT", "/vehicles/"+vin+"/attributes", a)
			m.vehicles[vin].attrs = a
		}
	case 23, 24: // POST /resolve/dry-run with an unsaved expression (a query: nothing changes)
		p := s.somePkg()
		body := map[string]any{"package": p.id(), "sample": 1000}
		if _, known := m.pkgs[p]; !known {
			body["expression"] = "TRUE"
			s.send(404, "package_not_found", "POST", "/resolve/dry-run", body)
			return
		}
		if r.IntN(3) == 0 {
			body["expression"] = pick(r, mBadExprs)
			s.send(406, "invalid_filter", "POST", "/resolve/dry-run", body)
			return
		}
		e := m.genExpr(r, 2, "")
		body["expression"] = e.src
		var dr resolver.DryRunResult
		s.send(200, "", "POST", "/resolve/dry-run", body).decode(s.t, &dr)
		s.checkDryRun(p, dr, func(vin string) bool { return e.eval(m, vin) }, "dry run of "+p.String()+" with "+e.src)
	case 0: // PUT /vehicles/:vin
		if r.IntN(2) == 0 {
			s.send(400, "invalid_entity", "PUT", "/vehicles/"+pick(r, mBadVINs), nil)
			return
		}
		vin := pick(r, mVINs)
		s.send(204, "", "PUT", "/vehicles/"+vin, nil)
		if m.vehicles[vin] == nil {
			m.vehicles[vin] = newMVehicle()
		}
	case 1: // POST /vehicles
		switch vin := pick(r, mVINs); {
		case r.IntN(3) == 0:
			s.send(400, "invalid_entity", "POST", "/vehicles", map[string]string{"vin": pick(r, mBadVINs)})
		case m.vehicles[vin] != nil:
			s.send(409, "duplicate_entry", "POST", "/vehicles", map[string]string{"vin": vin})
		default:
			s.send(200, "", "POST", "/vehicles", map[string]string{"vin": vin})
			m.vehicles[vin] = newMVehicle()
		}
	case 2: // DELETE /vehicles/:vin
		if vin, ok := s.existingVIN(); ok && r.IntN(3) > 0 {
			s.send(200, "", "DELETE", "/vehicles/"+vin, nil)
			delete(m.vehicles, vin)
			for _, rq := range m.requests {
				delete(rq.pending, vin)
			}
			return
		}
		s.send(404, "missing_vehicle", "DELETE", "/vehicles/"+s.missingVIN(), nil)
	case 3, 4: // PUT /packages/:name/:version
		if r.IntN(3) == 0 {
			s.send(400, "invalid_entity", "PUT", pkgPath(pick(r, mBadPkgs)), map[string]string{"description": "x"})
			return
		}
		p := s.somePkg()
		info := [2]string{fmt.Sprintf("d%d", r.IntN(100)), pick(r, []string{"", "ACME", "Bosch"})}
		s.send(200, "", "PUT", pkgPath(p), map[string]string{"description": info[0], "vendor": info[1]})
		m.pkgs[p] = info
		s.binary(p)
	case 5: // POST /packages
		p := s.somePkg()
		body := map[string]any{"id": map[string]string{"name": p.name, "version": p.version}, "description": "posted", "vendor": "V"}
		if _, ok := m.pkgs[p]; ok {
			body["id"] = map[string]string{"name": randomCase(r, p.name), "version": p.version}
			s.send(409, "duplicate_entry", "POST", "/packages", body)
			return
		}
		if r.IntN(3) == 0 {
			bad := pick(r, mBadPkgs)
			body["id"] = map[string]string{"name": bad.name, "version": bad.version}
			s.send(400, "invalid_entity", "POST", "/packages", body)
			return
		}
		s.send(200, "", "POST", "/packages", body)
		m.pkgs[p] = [2]string{"posted", "V"}
		s.binary(p)
	case 6: // DELETE /packages/:name/:version
		p := s.somePkg()
		if _, ok := m.pkgs[p]; !ok {
			s.send(404, "package_not_found", "DELETE", pkgPath(p), nil)
			return
		}
		if m.inUse(p) {
			s.send(409, "package_in_use", "DELETE", s.casePath(p), nil)
			return
		}
		s.send(200, "", "DELETE", s.casePath(p), nil)
		delete(m.pkgs, p)
		delete(m.assoc, p)
		delete(m.deps, p)
		for _, ds := range m.deps {
			delete(ds, p)
		}
	case 7: // PUT /components/:part, POST /components
		part := pick(r, mParts)
		switch {
		case r.IntN(4) == 0:
			s.send(400, "invalid_entity", "PUT", "/components/"+url.PathEscape(pick(r, mBadParts)), map[string]string{"description": "x"})
		case r.IntN(2) == 0:
			d := fmt.Sprintf("c%d", r.IntN(100))
			s.send(200, "", "PUT", "/components/"+part, map[string]string{"description": d})
			m.parts[part] = d
		default:
			if _, ok := m.parts[part]; ok {
				s.send(409, "duplicate_entry", "POST", "/components", map[string]string{"partNumber": randomCase(r, part), "description": "p"})
				return
			}
			s.send(200, "", "POST", "/components", map[string]string{"partNumber": part, "description": "p"})
			m.parts[part] = "p"
		}
	case 8: // DELETE /components/:part
		part := pick(r, mParts)
		if _, ok := m.parts[part]; !ok {
			s.send(404, "missing_component", "DELETE", "/components/"+part, nil)
			return
		}
		for _, v := range m.vehicles {
			if v.parts[part] {
				s.send(409, "component_is_installed", "DELETE", "/components/"+part, nil)
				return
			}
		}
		s.send(200, "", "DELETE", "/components/"+randomCase(r, part), nil)
		delete(m.parts, part)
	case 9: // PUT /vehicles/:vin/component/:part
		vin, ok := s.existingVIN()
		part := pick(r, mParts)
		switch _, known := m.parts[part]; {
		case !ok || r.IntN(5) == 0:
			s.send(404, "missing_vehicle", "PUT", "/vehicles/"+s.missingVIN()+"/component/"+part, nil)
		case !known:
			s.send(404, "missing_component", "PUT", "/vehicles/"+vin+"/component/"+part, nil)
		case m.vehicles[vin].parts[part]:
			s.send(409, "duplicate_entry", "PUT", "/vehicles/"+vin+"/component/"+part, nil)
		default:
			s.send(200, "", "PUT", "/vehicles/"+vin+"/component/"+part, nil)
			m.vehicles[vin].parts[part] = true
		}
	case 10: // DELETE /vehicles/:vin/component/:part
		vin, ok := s.existingVIN()
		part := pick(r, mParts)
		switch {
		case !ok || r.IntN(5) == 0:
			s.send(404, "missing_vehicle", "DELETE", "/vehicles/"+s.missingVIN()+"/component/"+part, nil)
		case !m.vehicles[vin].parts[part]:
			s.send(404, "missing_component", "DELETE", "/vehicles/"+vin+"/component/"+part, nil)
		default:
			s.send(200, "", "DELETE", "/vehicles/"+vin+"/component/"+part, nil)
			delete(m.vehicles[vin].parts, part)
		}
	case 11, 12: // PUT /vehicles/:vin/package/:name/:version
		vin, ok := s.existingVIN()
		p := s.somePkg()
		_, known := m.pkgs[p]
		switch {
		case !ok || r.IntN(6) == 0:
			s.send(404, "missing_vehicle", "PUT", "/vehicles/"+s.missingVIN()+"/package/"+p.name+"/"+p.version, nil)
		case !known:
			s.send(404, "package_not_found", "PUT", "/vehicles/"+vin+"/package/"+p.name+"/"+p.version, nil)
		case m.vehicles[vin].pkgs[p.name] != "" && m.vehicles[vin].pkgs[p.name] != p.version:
			// another version of the name is installed: this model keeps one version per name
			s.send(400, "invalid_entity", "PUT", "/vehicles/"+pick(r, mBadVINs)+"/package/"+p.name+"/"+p.version, nil)
		default:
			s.send(200, "", "PUT", "/vehicles/"+vin+"/package/"+randomCase(r, p.name)+"/"+p.version, nil)
			m.vehicles[vin].pkgs[p.name] = p.version
		}
	case 13: // DELETE /vehicles/:vin/package/:name/:version
		vin, ok := s.existingVIN()
		p := s.somePkg()
		_, known := m.pkgs[p]
		switch {
		case !ok:
			s.send(404, "missing_vehicle", "DELETE", "/vehicles/"+s.missingVIN()+"/package/"+p.name+"/"+p.version, nil)
		case !known:
			s.send(404, "package_not_found", "DELETE", "/vehicles/"+vin+"/package/"+p.name+"/"+p.version, nil)
		case m.vehicles[vin].pkgs[p.name] != p.version:
			s.send(409, "not_installed", "DELETE", "/vehicles/"+vin+"/package/"+p.name+"/"+p.version, nil)
		default:
			s.send(200, "", "DELETE", "/vehicles/"+vin+"/package/"+randomCase(r, p.name)+"/"+p.version, nil)
			delete(m.vehicles[vin].pkgs, p.name)
		}
	case 14: // PUT /vehicles/:vin/packages (unknown packages are kept as foreign)
		vin, ok := s.existingVIN()
		if !ok || r.IntN(4) == 0 {
			s.send(404, "missing_vehicle", "PUT", "/vehicles/"+s.missingVIN()+"/packages", map[string]any{"packages": []any{}})
			return
		}
		set := map[string]string{}
		body := []resolver.PackageID{}
		for _, n := range mNames {
			if r.IntN(2) == 0 {
				set[n] = pick(r, mVersions)
				body = append(body, resolver.PackageID{Name: n, Version: set[n]})
			}
		}
		s.send(204, "", "PUT", "/vehicles/"+vin+"/packages", map[string]any{"packages": body})
		m.vehicles[vin].pkgs = set
	case 15, 16: // POST /filters
		name := pick(r, mFilters)
		switch existing, dup := s.filterName(name); {
		case r.IntN(5) == 0:
			s.send(400, "invalid_entity", "POST", "/filters", map[string]string{"name": pick(r, mBadNames), "expression": "TRUE"})
		case !dup && r.IntN(4) == 0:
			s.send(406, "invalid_filter", "POST", "/filters", map[string]string{"name": name, "expression": pick(r, mBadExprs)})
		case dup:
			s.send(409, "duplicate_entry", "POST", "/filters", map[string]string{"name": randomCase(r, existing), "expression": "TRUE"})
		default:
			e := m.genExpr(r, 2, name)
			s.send(200, "", "POST", "/filters", map[string]string{"name": name, "expression": e.src})
			m.filters[name] = e
		}
	case 17: // PUT /filters/:name
		name := pick(r, mFilters)
		existing, ok := s.filterName(name)
		if !ok {
			s.send(404, "filter_not_found", "PUT", "/filters/"+name, map[string]string{"expression": "TRUE"})
			return
		}
		if r.IntN(3) == 0 {
			s.send(406, "invalid_filter", "PUT", "/filters/"+name, map[string]string{"expression": pick(r, mBadExprs)})
			return
		}
		e := m.genExpr(r, 2, existing)
		if s.referencesReach(e.refs, existing) {
			s.send(406, "invalid_filter", "PUT", "/filters/"+randomCase(r, name), map[string]string{"expression": e.src})
			return
		}
		s.send(200, "", "PUT", "/filters/"+randomCase(r, name), map[string]string{"expression": e.src})
		m.filters[existing] = e
	case 18: // DELETE /filters/:name
		name := pick(r, mFilters)
		existing, ok := s.filterName(name)
		if !ok {
			s.send(404, "filter_not_found", "DELETE", "/filters/"+name, nil)
			return
		}
		for n, f := range m.filters {
			if n != existing && slices.Contains(f.refs, existing) {
				s.send(409, "filter_in_use", "DELETE", "/filters/"+name, nil)
				return
			}
		}
		force := r.IntN(2) == 0
		if !force {
			for _, fs := range m.assoc {
				if _, linked := fs[existing]; linked {
					s.send(409, "filter_in_use", "DELETE", "/filters/"+name, nil)
					return
				}
			}
		}
		s.send(200, "", "DELETE", "/filters/"+randomCase(r, name)+"?force="+strconv.FormatBool(force), nil)
		delete(m.filters, existing)
		for _, fs := range m.assoc {
			delete(fs, existing)
		}
	case 19: // PUT /packages/:name/:version/filter/:filter
		p := s.somePkg()
		name := pick(r, mFilters)
		existing, ok := s.filterName(name)
		_, known := m.pkgs[p]
		switch {
		case !known:
			s.send(404, "package_not_found", "PUT", pkgPath(p)+"/filter/"+name, nil)
		case !ok:
			s.send(404, "filter_not_found", "PUT", pkgPath(p)+"/filter/"+name, nil)
		case m.assoc[p][existing]:
			s.send(409, "duplicate_entry", "PUT", s.casePath(p)+"/filter/"+randomCase(r, name), nil)
		default:
			s.send(200, "", "PUT", s.casePath(p)+"/filter/"+randomCase(r, name), nil)
			if m.assoc[p] == nil {
				m.assoc[p] = map[string]bool{}
			}
			m.assoc[p][existing] = true
		}
	case 20: // DELETE /packages/:name/:version/filter/:filter
		p := s.somePkg()
		name := pick(r, mFilters)
		existing, ok := s.filterName(name)
		_, known := m.pkgs[p]
		switch {
		case !known:
			s.send(404, "package_not_found", "DELETE", pkgPath(p)+"/filter/"+name, nil)
		case !ok || !m.assoc[p][existing]:
			s.send(404, "filter_not_found", "DELETE", pkgPath(p)+"/filter/"+name, nil)
		default:
			s.send(200, "", "DELETE", s.casePath(p)+"/filter/"+randomCase(r, name), nil)
			delete(m.assoc[p], existing)
		}
	case 21: // PUT / DELETE /packages/:name/:version/dependencies/:depName/:depVersion
		p, d := s.somePkg(), s.somePkg()
		_, pk := m.pkgs[p]
		_, dk := m.pkgs[d]
		path := pkgPath(p) + "/dependencies/" + d.name + "/" + d.version
		switch {
		case !pk || !dk:
			s.send(404, "package_not_found", "PUT", path, nil)
		case r.IntN(3) == 0:
			if m.deps[p][d] {
				s.send(200, "", "DELETE", path, nil)
				delete(m.deps[p], d)
			} else {
				s.send(404, "missing_dependency", "DELETE", path, nil)
			}
		case m.deps[p][d]:
			s.send(409, "duplicate_entry", "PUT", path, nil)
		case m.reaches(d, p):
			s.send(409, "dependency_cycle", "PUT", path, nil)
		case p.name == d.name:
			// a dependency on another version of the same name: not modelled; send a bad version instead
			s.send(400, "invalid_entity", "PUT", pkgPath(p)+"/dependencies/"+d.name+"/1.0", nil)
		default:
			s.send(200, "", "PUT", path, nil)
			if m.deps[p] == nil {
				m.deps[p] = map[mPkg]bool{}
			}
			m.deps[p][d] = true
		}
	}
}

// referencesReach tells whether a filter with these references would reach target (a cycle).
func (s *session) referencesReach(refs []string, target string) bool {
	seen := map[string]bool{}
	var walk func(n string) bool
	walk = func(n string) bool {
		if strings.EqualFold(n, target) {
			return true
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		for _, r := range s.m.filters[n].refs {
			if walk(r) {
				return true
			}
		}
		return false
	}
	for _, r := range refs {
		if walk(r) {
			return true
		}
	}
	return false
}

// --- checks: the server's answers equal the model's ---

func (s *session) get(path string, v any) {
	s.ct.Helper()
	r := s.ms.read("GET", path, nil)
	require.Equalf(s.ct, http.StatusOK, r.status, "GET %s: %s", path, r.body)
	s.decode(r, v)
}

// decode decodes a response's body into v (zeroed first) for a check.
func (s *session) decode(r response, v any) {
	s.ct.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	require.NoErrorf(s.ct, json.Unmarshal(r.body, v), "body %s", r.body)
}

func (s *session) checkLists() {
	t, m := s.ct, s.m
	t.Helper()
	var vs []resolver.Vehicle
	s.get("/vehicles", &vs)
	var gotVINs []string
	for _, v := range vs {
		gotVINs = append(gotVINs, v.VIN)
	}
	require.Equal(t, nilIfEmpty(sortedKeys(m.vehicles)), gotVINs, "GET /vehicles")

	var pkgs []resolver.Package
	s.get("/packages", &pkgs)
	var want, got []string
	for p, info := range m.pkgs {
		want = append(want, fmt.Sprintf("%s %s %q %q", p.name, p.version, info[0], info[1]))
	}
	slices.SortFunc(want, func(a, b string) int { return comparePkgLine(a, b) })
	for _, p := range pkgs {
		got = append(got, fmt.Sprintf("%s %s %q %q", p.ID.Name, p.ID.Version, p.Description, p.Vendor))
	}
	require.Equal(t, nilIfEmpty(want), got, "GET /packages")

	var comps []struct{ PartNumber, Description string }
	s.get("/components", &comps)
	want, got = nil, nil
	for _, part := range sortedKeys(m.parts) {
		want = append(want, part+" "+m.parts[part])
	}
	for _, c := range comps {
		got = append(got, c.PartNumber+" "+c.Description)
	}
	require.Equal(t, want, got, "GET /components")

	var fs []resolver.Filter
	s.get("/filters", &fs)
	want, got = nil, nil
	names := sortedKeys(m.filters)
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	for _, n := range names {
		want = append(want, n+": "+m.filters[n].src)
	}
	for _, f := range fs {
		got = append(got, f.Name+": "+f.Expression)
	}
	require.Equal(t, want, got, "GET /filters")

	var as []resolver.PackageFilter
	s.get("/packages/filter", &as)
	want, got = nil, nil
	for p, fs := range m.assoc {
		for f := range fs {
			want = append(want, p.String()+" "+f)
		}
	}
	for _, a := range as {
		got = append(got, a.PackageName+"-"+a.PackageVersion+" "+a.FilterName)
	}
	sort.Strings(want)
	sort.Strings(got)
	require.Equal(t, want, got, "GET /packages/filter")
}

func comparePkgLine(a, b string) int {
	fa, fb := strings.Fields(a), strings.Fields(b)
	if c := strings.Compare(fa[0], fb[0]); c != 0 {
		return c
	}
	return compareVersions(fa[1], fb[1])
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// checkAll compares every per-entity view, reverse lookup, resolve and dry run with the model: first
// the resolves and dry runs, which reflect every acknowledged write at once on any replica, then the
// reads that follow the change feed.
func (s *session) checkAll() {
	s.t.Helper()
	for _, p := range s.registered() {
		s.checkResolve(p)
	}
	s.eventually(s.checkLists)
	s.eventually(s.checkState)
}

// registered is the model's packages, in the order of mNames and mVersions.
func (s *session) registered() []mPkg {
	var ps []mPkg
	for _, n := range mNames {
		for _, ver := range mVersions {
			if _, ok := s.m.pkgs[mPkg{n, ver}]; ok {
				ps = append(ps, mPkg{n, ver})
			}
		}
	}
	return ps
}

// checkState compares the per-entity views and reverse lookups with the model.
func (s *session) checkState() {
	t, m := s.ct, s.m
	t.Helper()
	for _, vin := range sortedKeys(m.vehicles) {
		v := m.vehicles[vin]
		var ids []resolver.PackageID
		s.get("/vehicles/"+vin+"/package", &ids)
		var want, got []string
		for n, ver := range v.pkgs {
			want = append(want, n+"-"+ver)
		}
		for _, id := range ids {
			got = append(got, strings.ToLower(id.Name)+"-"+id.Version)
		}
		sort.Strings(want)
		sort.Strings(got)
		require.Equal(t, want, got, "GET /vehicles/%s/package", vin)
		var parts []string
		s.get("/vehicles/"+vin+"/component", &parts)
		sort.Strings(parts)
		require.Equal(t, sortedKeys(v.parts), nilIfEmpty(parts), "GET /vehicles/%s/component", vin)
	}
	for _, part := range sortedKeys(m.parts) {
		var vins []string
		s.get("/components/"+part+"/vehicles", &vins)
		var want []string
		for _, vin := range sortedKeys(m.vehicles) {
			if m.vehicles[vin].parts[part] {
				want = append(want, vin)
			}
		}
		require.Equal(t, want, nilIfEmpty(vins), "GET /components/%s/vehicles", part)
		var byQuery []resolver.Vehicle
		s.get("/vehicles?component="+part, &byQuery)
		require.Len(t, byQuery, len(want), "GET /vehicles?component=%s", part)
	}
	// Searches: by package (foreign installs count too), by package name, by VIN regex.
	vinsOf := func(path string) []string {
		var vs []resolver.Vehicle
		s.get(path, &vs)
		var vins []string
		for _, v := range vs {
			vins = append(vins, v.VIN)
		}
		return vins
	}
	for _, n := range mNames {
		var byName []string
		for _, vin := range sortedKeys(m.vehicles) {
			if m.vehicles[vin].pkgs[n] != "" {
				byName = append(byName, vin)
			}
		}
		require.Equal(t, byName, vinsOf("/vehicles?packageName="+randomCase(s.r, n)), "GET /vehicles?packageName=%s", n)
		ver := pick(s.r, mVersions)
		var byID []string
		for _, vin := range byName {
			if m.vehicles[vin].pkgs[n] == ver {
				byID = append(byID, vin)
			}
		}
		require.Equal(t, byID, vinsOf("/vehicles?packageName="+n+"&packageVersion="+ver), "GET /vehicles?packageName=%s&packageVersion=%s", n, ver)
	}
	re := pick(s.r, []string{"^SAJ", "1$", "000"})
	var byRegex []string
	for _, vin := range sortedKeys(m.vehicles) {
		if regexp.MustCompile(re).MatchString(vin) {
			byRegex = append(byRegex, vin)
		}
	}
	require.Equal(t, byRegex, vinsOf("/vehicles?regex="+url.QueryEscape(re)), "GET /vehicles?regex=%s", re)
	for _, vin := range sortedKeys(m.vehicles) {
		var want, got []string
		for _, rq := range m.requests {
			if install, ok := rq.pending[vin]; ok {
				want = append(want, rq.id+" "+rq.pkg.String()+" "+install)
			}
		}
		var queue []struct {
			RequestID string
			PackageID resolver.PackageID
			Install   []resolver.PackageID
			Status    string
		}
		s.get("/vehicles/"+vin+"/queue", &queue)
		for _, u := range queue {
			require.Equal(t, "pending", u.Status, "queue of %s", vin)
			var install []mPkg
			for _, id := range u.Install {
				install = append(install, mPkg{strings.ToLower(id.Name), id.Version})
			}
			sort.Slice(install, func(i, j int) bool { return install[i].String() < install[j].String() })
			got = append(got, u.RequestID+" "+strings.ToLower(u.PackageID.Name)+"-"+u.PackageID.Version+" "+fmt.Sprint(install))
		}
		sort.Strings(want)
		sort.Strings(got)
		require.Equal(t, want, got, "GET /vehicles/%s/queue", vin)
	}
	for _, rq := range m.requests {
		var got struct{ Counts map[string]int }
		s.get("/update_requests/"+rq.id, &got)
		require.Equal(t, len(rq.pending), got.Counts["pending"], "pending updates of request %s", rq.id)
	}
	for _, vin := range sortedKeys(m.vehicles) {
		var attrs map[string]any
		s.get("/vehicles/"+vin+"/attributes", &attrs)
		require.Equal(t, m.vehicles[vin].attrs, attrs, "GET /vehicles/%s/attributes", vin)
	}
	for _, n := range mNames {
		for _, ver := range mVersions {
			p := mPkg{n, ver}
			if _, ok := m.pkgs[p]; !ok {
				r := s.ms.read("GET", pkgPath(p), nil)
				require.Equal(t, http.StatusNotFound, r.status, "GET %s", pkgPath(p))
				continue
			}
			s.checkPackage(p)
		}
	}
}

func (s *session) checkPackage(p mPkg) {
	t, m := s.ct, s.m
	t.Helper()
	var vins []string
	s.get(s.casePath(p)+"/vehicles", &vins)
	var want []string
	for _, vin := range sortedKeys(m.vehicles) {
		if m.vehicles[vin].pkgs[p.name] == p.version {
			want = append(want, vin)
		}
	}
	require.Equal(t, want, nilIfEmpty(vins), "GET %s/vehicles", pkgPath(p))

	var edges []resolver.DependencyEdge
	s.get(pkgPath(p)+"/dependencies", &edges)
	var wantDeps, gotDeps []string
	for d := range m.deps[p] {
		wantDeps = append(wantDeps, d.String())
	}
	for _, e := range edges {
		require.Equal(t, p.id(), e.Dependent)
		gotDeps = append(gotDeps, e.Dependency.Name+"-"+e.Dependency.Version)
	}
	sort.Strings(wantDeps)
	sort.Strings(gotDeps)
	require.Equal(t, wantDeps, gotDeps, "GET %s/dependencies", pkgPath(p))
}

// checkResolve compares the resolve and the dry run of a package with the model.
func (s *session) checkResolve(p mPkg) {
	t, m := s.t, s.m
	t.Helper()
	if len(m.assoc[p]) == 0 {
		r := s.ms.read("GET", "/resolve/"+p.name+"/"+p.version, nil)
		require.Equalf(t, http.StatusNotFound, r.status, "resolve %s: %s", p, r.body)
		require.Equalf(t, "no_filters", r.code(), "resolve %s: %s", p, r.body)
		return
	}
	var targets [][2]any
	var wantT []string
	for _, vin := range sortedKeys(m.vehicles) {
		if !m.matches(vin, p) || m.hasPkg(vin, p) {
			continue
		}
		if install, ok := m.solve(vin, p); ok {
			sort.Slice(install, func(i, j int) bool { return install[i].String() < install[j].String() })
			wantT = append(wantT, fmt.Sprint(vin, install))
		}
	}
	r := s.ms.read("GET", "/resolve/"+randomCase(s.r, p.name)+"/"+p.version, nil)
	require.Equalf(t, http.StatusOK, r.status, "resolve %s: %s", p, r.body)
	s.decode(r, &targets)
	var gotT []string
	for _, tg := range targets {
		vin, _ := tg[0].(string)
		list, _ := tg[1].([]any)
		var install []mPkg
		pos := map[mPkg]int{}
		for i, x := range list {
			id, _ := x.(map[string]any)
			ip := mPkg{strings.ToLower(fmt.Sprint(id["name"])), fmt.Sprint(id["version"])}
			install = append(install, ip)
			pos[ip] = i
		}
		// install order: the package last, every dependency before its dependents
		require.NotEmpty(t, install, "resolve %s: %s has an empty install list", p, vin)
		require.Equal(t, p, install[len(install)-1], "resolve %s: %s installs the package last", p, vin)
		for _, ip := range install {
			for d := range m.deps[ip] {
				if j, ok := pos[d]; ok {
					require.Less(t, j, pos[ip], "resolve %s: %s installs %s before its dependency %s", p, vin, ip, d)
				}
			}
		}
		sort.Slice(install, func(i, j int) bool { return install[i].String() < install[j].String() })
		gotT = append(gotT, fmt.Sprint(vin, install))
	}
	require.Equal(t, wantT, gotT, "GET /resolve/%s/%s", p.name, p.version)

	var dr resolver.DryRunResult
	rr := s.ms.read("POST", "/resolve/dry-run", map[string]any{"package": p.id(), "sample": 1000})
	require.Equalf(t, http.StatusOK, rr.status, "dry-run %s: %s", p, rr.body)
	s.decode(rr, &dr)
	s.checkDryRun(p, dr, func(vin string) bool { return m.matches(vin, p) }, "dry run of "+p.String())
}

// checkDryRun compares a dry-run answer with the model, for the vehicles that pass.
func (s *session) checkDryRun(p mPkg, dr resolver.DryRunResult, pass func(vin string) bool, what string) {
	t, m := s.ct, s.m
	t.Helper()
	matched, already := 0, 0
	var unresolved, sample []string
	for _, vin := range sortedKeys(m.vehicles) {
		if !pass(vin) {
			continue
		}
		if m.hasPkg(vin, p) {
			already++
			continue
		}
		matched++
		install, ok := m.solve(vin, p)
		if !ok {
			unresolved = append(unresolved, vin)
			continue
		}
		sort.Slice(install, func(i, j int) bool { return install[i].String() < install[j].String() })
		sample = append(sample, fmt.Sprint(vin, install))
	}
	var gotU []string
	for _, u := range dr.Unresolved {
		gotU = append(gotU, u.VIN)
	}
	require.Equal(t, [4]any{matched, already, len(m.vehicles), unresolved}, [4]any{dr.Matched, dr.AlreadyInstalled, dr.TotalVehicles, nilIfEmpty(gotU)}, "%s: matched, alreadyInstalled, totalVehicles, unresolved", what)
	var gotS []string
	for _, sv := range dr.Sample {
		var install []mPkg
		for _, id := range sv.Install {
			install = append(install, mPkg{strings.ToLower(id.Name), id.Version})
		}
		sort.Slice(install, func(i, j int) bool { return install[i].String() < install[j].String() })
		gotS = append(gotS, fmt.Sprint(sv.VIN, install))
	}
	require.Equal(t, sample, nilIfEmpty(gotS), "%s: sample of the resolvable, with their install lists", what)
}

func newLoopback(h http.Handler) *httptest.Server { return httptest.NewServer(h) }
