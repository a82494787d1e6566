package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
	exampleload "sota/examples/load"
	"sota/resolver"
	"sota/wire"
)

// The browser tests drive headless Chromium (Debian package chromium) against the real server: the
// real handler over a real store, auth on, on loopback. Without a browser they skip, unless
// SOTA_REQUIRE_BROWSER=1 (set by .ci/run), where a missing browser fails them. With
// SOTA_SCREENSHOTS=1 they write the screenshots of the README to docs/screenshots/.

// browserPath finds a Chromium binary, or skips (or fails when one is required).
func browserPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SOTA_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (looked for chromium, chromium-browser, google-chrome, headless-shell, or $SOTA_CHROMIUM): " +
		"install it with `apt-get install -y chromium` to run the browser tests"
	if os.Getenv("SOTA_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + " (SOTA_REQUIRE_BROWSER=1)")
	}
	t.Skip(msg)
	return ""
}

// browserEnv is the real server and one browser tab.
type browserEnv struct {
	t      *testing.T
	base   string
	deps   testDeps
	token  string // API token of the admin, for seeding data
	ctx    context.Context
	shots  string       // where screenshots go, "" for none
	client *http.Client // trusts the test server's certificate

	mu         sync.Mutex
	dialogs    []string // the messages of the confirm() dialogs accepted so far
	exceptions []string // uncaught exceptions of the page's scripts
}

// dialogMessages returns the messages of the dialogs accepted so far.
func (e *browserEnv) dialogMessages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.dialogs...)
}

func newBrowserEnv(t *testing.T) *browserEnv { return newBrowserEnvTLS(t, false) }

// newBrowserEnvTLS is newBrowserEnv, over HTTPS with a test certificate when tlsServer (the browser
// accepts the certificate).
func newBrowserEnvTLS(t *testing.T, tlsServer bool) *browserEnv {
	t.Helper()
	return newBrowserEnvWith(t, tlsServer, engine.Options{})
}

// newBrowserEnvWith is newBrowserEnvTLS with engine options.
func newBrowserEnvWith(t *testing.T, tlsServer bool, o engine.Options) *browserEnv {
	t.Helper()
	exe := browserPath(t)
	d, _ := fullDepsWith(t, o)
	d.Filters = d.Resolver
	h, srv := newServer(t, Config{}, d.Deps)
	_, created, err := srv.auth.Bootstrap("admin", testPassword)
	require.NoError(t, err)
	require.True(t, created)
	secret, _, err := srv.auth.CreateToken("admin", "browser test seed")
	require.NoError(t, err)
	var hs *httptest.Server
	if tlsServer {
		hs = httptest.NewTLSServer(h)
	} else {
		hs = httptest.NewServer(h)
	}
	t.Cleanup(hs.Close)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	if tlsServer {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors", true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start Chromium at %s", exe)

	e := &browserEnv{t: t, base: hs.URL, deps: d, token: secret, ctx: ctx, client: hs.Client()}

	// Accept every confirm() (delete, cancel), as the user clicking OK, and keep what it said.
	dialogs := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			e.mu.Lock()
			e.dialogs = append(e.dialogs, ev.Message)
			e.mu.Unlock()
			_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	// An uncaught exception of the UI's scripts (a module that fails to load, a screen that throws) fails
	// the test that met it.
	exceptions := chromedp.Events(ctx, cdpruntime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			e.mu.Lock()
			e.exceptions = append(e.exceptions, fmt.Sprintf("%s (%s:%d)", msg, ev.ExceptionDetails.URL, ev.ExceptionDetails.LineNumber+1))
			e.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		assert.Empty(t, e.exceptions, "uncaught exceptions in the admin UI")
	})

	if os.Getenv("SOTA_SCREENSHOTS") == "1" {
		e.shots = filepath.Join("..", "docs", "screenshots")
		require.NoError(t, os.MkdirAll(e.shots, 0o755))
	}
	return e
}

// api calls the admin API with the seed token and requires a 2xx answer.
func (e *browserEnv) api(method, path string, body any) {
	e.t.Helper()
	e.call(method, path, e.token, body, nil)
}

// call sends a JSON request with a Bearer token, requires a 2xx answer and decodes it into out (unless
// nil); it returns the status.
func (e *browserEnv) call(method, path, token string, body, out any) int {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(e.t, err)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, e.base+"/api/v1"+path, rd)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	require.Less(e.t, resp.StatusCode, 300, "%s %s: %s", method, path, raw)
	if out != nil && resp.StatusCode != http.StatusNoContent {
		require.NoError(e.t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode
}

// do runs browser steps and fails the test with the step's error.
func (e *browserEnv) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	require.NoError(e.t, chromedp.Do(e.ctx, steps...), what)
}

// waitFor evaluates a JavaScript predicate in the page until it is true; errors while a page is
// replaced by another (a form submit, a redirect) count as "not yet".
func (e *browserEnv) waitFor(what, js string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(e.ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	body, _ := chromedp.Run(e.ctx, chromedp.Evaluate[string](`document.querySelector("#view") ? document.querySelector("#view").innerText : document.body.innerText`))
	e.t.Fatalf("waiting for %s (%s): last error %v\npage text:\n%s", what, js, lastErr, body)
}

// waitText waits until the element's text is want.
func (e *browserEnv) waitText(sel, want string) {
	e.t.Helper()
	js := fmt.Sprintf(`(document.querySelector(%q) || {}).textContent === %q`, sel, want)
	e.waitFor(sel+" = "+want, js)
}

func (e *browserEnv) text(sel string) string {
	e.t.Helper()
	s, err := chromedp.Run(e.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel)))
	require.NoError(e.t, err)
	return s
}

func (e *browserEnv) location() string {
	e.t.Helper()
	l, err := chromedp.Run(e.ctx, chromedp.Location())
	require.NoError(e.t, err)
	return l
}

// choose selects an option of a <select> by its value and fires change, as a user would.
func (e *browserEnv) choose(sel, value string) {
	e.t.Helper()
	js := fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event("change")); return s.value; })()`, sel, value)
	got, err := chromedp.Run(e.ctx, chromedp.Evaluate[string](js))
	require.NoError(e.t, err)
	require.Equal(e.t, value, got, "option %s of %s", value, sel)
}

// shot saves a screenshot of the viewport when screenshots are asked for.
func (e *browserEnv) shot(name string) {
	e.t.Helper()
	if e.shots == "" {
		return
	}
	// Let transitions (progress bars) settle.
	e.do("settle", chromedp.Sleep(600*time.Millisecond))
	png, err := chromedp.Run(e.ctx, chromedp.CaptureScreenshot())
	require.NoError(e.t, err)
	require.NoError(e.t, os.WriteFile(filepath.Join(e.shots, name+".png"), png, 0o644))
}

// typeFilter types text into the filter editor (focused first) as a keyboard would insert it,
// character by character, so that completion and lint answer as they do for a person typing.
// (Key events into CodeMirror's contenteditable make Chrome insert no-break spaces for spaces.)
func typeFilter(text string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Focus(chromedp.CSS("#filter-expr"))(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		for _, r := range text {
			if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: string(r)}); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
}

func seedVIN(prefix string, i int) string { return fmt.Sprintf("%s%0*d", prefix, 17-len(prefix), i) }

// seed puts a small fleet in the store through the API: four Hondas (three with nav 1.0.0), two
// Toyotas with nav 1.0.0, the packages nav 1.0.0 and 2.0.0, a component and attributes.
func (e *browserEnv) seed() (hondas, toyotas []string) {
	e.t.Helper()
	for _, v := range []string{"1.0.0", "2.0.0"} {
		e.api("POST", "/packages", map[string]any{"id": pkgID("nav", v), "description": "Navigation " + v, "vendor": "ACME Maps"})
	}
	e.api("POST", "/components", map[string]any{"partNumber": "HU2040", "description": "head unit"})
	for i := 1; i <= 4; i++ {
		hondas = append(hondas, seedVIN("1HGCM8263", i))
	}
	for i := 1; i <= 2; i++ {
		toyotas = append(toyotas, seedVIN("2T1BR32E5", i))
	}
	for i, v := range append(append([]string{}, hondas...), toyotas...) {
		e.api("PUT", "/vehicles/"+v, nil)
		if i != 3 {
			e.api("PUT", "/vehicles/"+v+"/package/nav/1.0.0", nil)
		}
		e.api("PUT", "/vehicles/"+v+"/attributes", map[string]any{"model": map[bool]string{true: "civic", false: "corolla"}[i < 4], "year": 2018 + i})
	}
	e.api("PUT", "/vehicles/"+hondas[0]+"/component/HU2040", nil)
	e.api("POST", "/data_plans", map[string]any{"id": "fleet-basic"})
	e.api("PUT", "/vehicles/"+hondas[0]+"/data_plan", map[string]any{"id": "fleet-basic"})
	return hondas, toyotas
}

// device is a vehicle talking to the device API with its own token, as a SOTA client would.
type device struct {
	e        *browserEnv
	vin, tok string
	updateID string
}

func (e *browserEnv) device(vin string) *device {
	e.t.Helper()
	var out struct{ Token string }
	e.call("POST", "/vehicles/"+vin+"/token", e.token, nil, &out)
	require.NotEmpty(e.t, out.Token)
	return &device{e: e, vin: vin, tok: out.Token}
}

// start polls for the update of the request and starts its transfer (the update goes in flight).
func (d *device) start(requestID string) {
	d.e.t.Helper()
	base := "/vehicle_updates/" + d.vin
	var rows []struct{ UpdateID, RequestID string }
	d.e.call("GET", base, d.tok, nil, &rows)
	for _, r := range rows {
		if r.RequestID == requestID {
			d.updateID = r.UpdateID
		}
	}
	require.NotEmpty(d.e.t, d.updateID, "%s has an update of %s", d.vin, requestID)
	d.e.call("POST", base+"/"+d.updateID+"/start", d.tok, nil, nil)
}

// install downloads every chunk (acknowledging each), checks the whole against the announced sha256,
// finalizes and reports success.
func (d *device) install() {
	d.e.t.Helper()
	base := "/vehicle_updates/" + d.vin + "/" + d.updateID
	var tr struct {
		ChunksCount int
		SHA256      string
	}
	d.e.call("POST", base+"/start", d.tok, nil, &tr) // a restarted client asks again; harmless
	var whole []byte
	for {
		var c struct {
			Index int
			Data  []byte
		}
		if d.e.call("GET", base+"/chunk", d.tok, nil, &c) == http.StatusNoContent {
			break
		}
		whole = append(whole, c.Data...)
		d.e.call("POST", base+"/ack", d.tok, map[string]any{"chunks": []int{c.Index}}, nil)
	}
	sum := sha256.Sum256(whole)
	require.Equal(d.e.t, tr.SHA256, hex.EncodeToString(sum[:]))
	d.e.call("POST", base+"/finalize", d.tok, map[string]any{"chunks": tr.ChunksCount, "sha256": tr.SHA256}, nil)
	d.e.call("POST", base, d.tok, map[string]any{"operation_results": []map[string]any{{"id": d.updateID, "result_code": 0, "result_text": "installed"}}}, nil)
}

// The release engineer's day: log in (and come back to the page asked for), find vehicles, write a
// filter with a typo and see the caret error, fix it and see who matches, ask why a VIN does not,
// create and launch a campaign and watch its counts move as vehicles install, cancel the rest, log out.
func TestBrowserReleaseEngineerFlow(t *testing.T) {
	e := newBrowserEnv(t)
	hondas, toyotas := e.seed()

	// Unauthenticated: the server sends the browser to the login page, remembering the page.
	e.do("open the UI", chromedp.Navigate(e.base+"/index.html"))
	assert.Equal(t, e.base+"/login?next=%2Findex.html", e.location())
	e.do("wrong password", chromedp.SendKeys(chromedp.CSS("#username"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Click(chromedp.CSS("#login-submit")), chromedp.WaitVisible(chromedp.CSS("#login-error")))
	assert.Equal(t, "Invalid username or password", e.text("#login-error"))
	e.do("log in", chromedp.SendKeys(chromedp.CSS("#username"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitText("#dash-fleet", "6")
	assert.Equal(t, e.base+"/index.html", e.location(), "back on the page asked for")
	assert.Contains(t, e.text("#who"), "admin")
	assert.Equal(t, "0", e.text("#dash-seen-day"))
	assert.Contains(t, e.text("#dash-campaigns"), "No campaign is running.")
	assert.Contains(t, e.text("#dash-failures"), "No update failed in the last 24 hours.")
	e.do("vehicles", chromedp.Click(chromedp.CSS(`#nav a[data-nav="vehicles"]`)))
	e.waitText("#vehicle-total", "6 vehicles")

	// Vehicle search by regex and by package.
	e.do("search by VIN regex", chromedp.SendKeys(chromedp.CSS("#vehicle-q1"), "^2T1"), chromedp.Click(chromedp.CSS("#vehicle-search")))
	e.waitText("#vehicle-total", "2 vehicles")
	assert.Contains(t, e.text("#vehicle-results"), toyotas[1])
	assert.NotContains(t, e.text("#vehicle-results"), hondas[0])
	e.choose("#vehicle-mode", "attribute")
	e.do("search by attribute", chromedp.Clear(chromedp.CSS("#vehicle-q1")), chromedp.SendKeys(chromedp.CSS("#vehicle-q1"), "model"),
		chromedp.SendKeys(chromedp.CSS("#vehicle-q2"), "corolla"), chromedp.Click(chromedp.CSS("#vehicle-search")))
	e.waitText("#vehicle-total", "2 vehicles")

	// Vehicle detail.
	e.do("vehicle detail", chromedp.Navigate(e.base+"/#/vehicles/"+hondas[0]))
	e.waitFor("installed packages", `document.querySelector("#view h1") && document.querySelector("#view h1").textContent.includes("`+hondas[0]+`")`)
	detail := e.text("#view")
	for _, s := range []string{"nav 1.0.0", "HU2040", "fleet-basic", "No updates yet."} {
		assert.Contains(t, detail, s)
	}
	attrs, err := chromedp.Run(e.ctx, chromedp.Value(chromedp.CSS("#vehicle-attributes")))
	require.NoError(t, err)
	assert.Contains(t, attrs, `"model": "civic"`)

	// The filter editor: a typo shows the server's error with a caret under it.
	e.do("new filter", chromedp.Click(chromedp.CSS(`#nav a[data-nav="filters"]`)), chromedp.Click(chromedp.CSS("#filter-new")),
		chromedp.WaitVisible(chromedp.CSS("#filter-expr")))
	typo := `vin_matches "^1HG" AND has_pakage "nav" "^1"`
	e.do("type a filter with a typo", chromedp.SendKeys(chromedp.CSS("#filter-name"), "hondasOnNav1"), typeFilter(typo))
	e.waitFor("caret error", `document.querySelector("#filter-error .caret-msg") !== null`)
	assert.Equal(t, `1:24: unexpected word "has_pakage", expected a predicate, NOT, TRUE, FALSE or "("; did you mean has_package?`, e.text("#filter-error .caret-msg"))
	assert.Equal(t, typo+"\n"+strings.Repeat(" ", 23)+"^", e.text("#filter-error pre"), "the caret sits under the typo")
	assert.Contains(t, e.text("#filter-status"), "1 error")
	e.do("jump to the error", chromedp.Click(chromedp.CSS("#filter-error .caret-error")))
	assert.Equal(t, 23, evalInt(e, `document.querySelector("#filter-expr").selectionStart`), "a click on the error puts the cursor on the typo")

	// Fixing it clears the error and shows the live match count for nav 2.0.0.
	e.choose("#dry-package", `{"name":"nav","version":"2.0.0"}`)
	e.do("fix the typo", chromedp.Evaluate[chromedp.Void](`document.querySelector("#filter-expr").value = ""`), typeFilter(`vin_matches "^1HG"   and has_package "nav" "^1"`))
	e.waitText("#filter-status", "✓ valid")
	e.waitText("#match-count", "3")
	assert.Empty(t, e.text("#filter-error"))
	matches := e.text("#filter-matches")
	for _, v := range hondas[:3] {
		assert.Contains(t, matches, v)
	}
	assert.NotContains(t, matches, hondas[3], "no nav 1.x installed")
	assert.NotContains(t, matches, toyotas[0])
	assert.Contains(t, matches, "nav 2.0.0")

	// Format writes the canonical form back.
	e.do("format", chromedp.Click(chromedp.CSS("#filter-format")))
	e.waitFor("formatted", `document.querySelector("#filter-expr").value === 'vin_matches "^1HG" AND has_package "nav" "^1"'`)
	e.waitText("#match-count", "3")

	// Why not this VIN?
	e.do("explain", chromedp.SendKeys(chromedp.CSS("#explain-vin"), hondas[3]), chromedp.Click(chromedp.CSS("#explain-submit")))
	e.waitText("#explain-verdict", "Does not match")
	assert.Contains(t, e.text("#explain-result"), `✗ has_package "nav" "^1"`)
	assert.Contains(t, e.text("#explain-result"), `✓ vin_matches "^1HG"`)

	e.do("save", chromedp.Click(chromedp.CSS("#filter-save")))
	e.waitFor("saved filter page", `location.hash === "#/filters/hondasOnNav1"`)

	// Link the filter to nav 2.0.0 on the package page.
	e.do("package page", chromedp.Navigate(e.base+"/#/packages/nav/2.0.0"), chromedp.WaitVisible(chromedp.CSS("#associate-filter")))
	e.choose("#associate-filter", "hondasOnNav1")
	e.do("link filter", chromedp.Click(chromedp.CSS("#associate-submit")))
	e.waitFor("filter linked", `document.querySelector("#view").innerText.includes("Unlink")`)

	// Upload a binary with the progress bar.
	bin := filepath.Join(t.TempDir(), "nav-2.0.0.bin")
	require.NoError(t, os.WriteFile(bin, bytes.Repeat([]byte("map tiles "), 300_000), 0o644))
	e.do("packages", chromedp.Navigate(e.base+"/#/packages"), chromedp.WaitVisible(chromedp.CSS("#upload-file")))
	e.do("upload", chromedp.SendKeys(chromedp.CSS("#upload-name"), "nav"), chromedp.SendKeys(chromedp.CSS("#upload-version"), "2.0.0"),
		chromedp.SetUploadFiles(chromedp.CSS("#upload-file"), []string{bin}), chromedp.Click(chromedp.CSS("#upload-submit")))
	e.waitFor("upload done", `document.querySelector("#upload-status").textContent.startsWith("Uploaded nav 2.0.0")`)
	assert.Equal(t, 100, evalInt(e, `document.querySelector("#upload-progress").value`))
	e.waitFor("size listed", `document.querySelector("#view").innerText.includes("2.9 MiB")`)

	// A campaign: create, preview, launch.
	e.do("campaigns", chromedp.Click(chromedp.CSS(`#nav a[data-nav="campaigns"]`)), chromedp.WaitVisible(chromedp.CSS("#campaign-name")))
	e.choose("#campaign-package", `{"name":"nav","version":"2.0.0"}`)
	e.do("create campaign", chromedp.SendKeys(chromedp.CSS("#campaign-name"), "nav2 for Hondas"), chromedp.Click(chromedp.CSS("#campaign-create")))
	e.waitFor("campaign page", `location.hash.startsWith("#/campaigns/") && document.querySelector("#campaign-launch") !== null`)
	e.do("preview", chromedp.Click(chromedp.CSS("#campaign-preview")))
	e.waitText("#match-count", "3")
	e.do("launch", chromedp.Click(chromedp.CSS("#campaign-launch")))
	e.waitText("#count-pending", "3")
	e.waitText("#count-finished", "0")

	cs, err := e.deps.Engine.Campaigns()
	require.NoError(t, err)
	require.Len(t, cs, 1)
	req := cs[0].UpdateRequest
	require.NotEmpty(t, req)

	// Vehicles download and install through the device API: the counts move without a reload.
	first, second := e.device(hondas[0]), e.device(hondas[1])
	first.start(req)
	e.waitText("#count-inFlight", "1")
	e.waitText("#count-pending", "2")
	first.install()
	second.start(req)
	e.waitText("#count-finished", "1")
	e.waitText("#count-inFlight", "1")
	e.waitText("#count-pending", "1")

	// The dashboard shows the running campaign with its progress; the vehicle list what is waiting.
	e.do("dashboard", chromedp.Click(chromedp.CSS(`#nav a[data-nav="dashboard"]`)))
	e.waitFor("running campaign", `document.querySelector("#dash-campaign-table") !== null`)
	assert.Equal(t, "1", e.text("#dash-running"))
	assert.Equal(t, "2", e.text("#dash-seen-day"), "the two vehicles that called")
	row := e.text("#dash-campaign-table")
	assert.Contains(t, row, "nav2 for Hondas")
	assert.Contains(t, row, "1 finished · 1 in flight · 1 pending")
	assert.Contains(t, row, "33%")
	e.do("vehicles", chromedp.Click(chromedp.CSS(`#nav a[data-nav="vehicles"]`)))
	e.waitText("#vehicle-total", "6 vehicles")
	e.waitFor("pending column", `[...document.querySelectorAll("#vehicle-results tr")].some(r => r.textContent.includes("`+hondas[1]+`") && r.textContent.includes("1 in flight"))`)
	vrows := e.text("#vehicle-results")
	assert.Contains(t, vrows, "PENDING UPDATES")
	assert.Regexp(t, hondas[0]+`\s+just now\s+none`, vrows, "finished: nothing waits")
	assert.Regexp(t, hondas[2]+`\s+never\s+1 pending`, vrows)
	e.do("back to the campaign", chromedp.Navigate(e.base+"/#/campaigns/"+cs[0].ID))
	e.waitText("#count-pending", "1")

	// Cancel the pending rest; the one in flight goes on and finishes.
	e.do("cancel", chromedp.Click(chromedp.CSS("#campaign-cancel")))
	e.waitText("#count-canceled", "1")
	e.waitText("#count-pending", "0")
	second.install()
	e.waitText("#count-finished", "2")
	e.waitText("#count-inFlight", "0")
	e.do("finished list", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#campaign-progress a")].find(a => a.textContent === "finished").click()`))
	e.waitFor("finished vehicles", `document.querySelector("#campaign-vehicles h2").textContent === "Vehicles finished (2)"`)
	list := e.text("#campaign-vehicles")
	assert.Contains(t, list, hondas[0])
	assert.Contains(t, list, hondas[1])
	assert.NotContains(t, list, hondas[2])

	// The vehicle's page shows the new package and the update in its history.
	e.do("vehicle detail after the update", chromedp.Navigate(e.base+"/#/vehicles/"+hondas[0]))
	e.waitFor("history", `document.querySelector("#view").innerText.includes("finished")`)
	detail = e.text("#view")
	assert.Contains(t, detail, "nav 2.0.0")
	assert.Contains(t, detail, "0 OK: installed", "the result code and text of the report")

	// Components: add one, list the vehicles that have another.
	e.do("components", chromedp.Click(chromedp.CSS(`#nav a[data-nav="components"]`)), chromedp.WaitVisible(chromedp.CSS("#new-part")))
	e.do("add component", chromedp.SendKeys(chromedp.CSS("#new-part"), "TCU9"), chromedp.SendKeys(chromedp.CSS("#new-part-description"), "telematics"),
		chromedp.Click(chromedp.CSS("#component-add")))
	e.waitFor("component listed", `document.querySelector("#view table") && document.querySelector("#view table").innerText.includes("TCU9")`)
	e.do("vehicles with HU2040", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#view tr")].find(r => r.textContent.includes("HU2040")).querySelector("button").click()`))
	e.waitFor("component vehicles", `document.querySelector("#component-vehicles").innerText.includes("Vehicles with HU2040 (1)")`)
	assert.Contains(t, e.text("#component-vehicles"), hondas[0])

	// Data plans: the first plan's billing cycles show; add one.
	e.do("data plans", chromedp.Click(chromedp.CSS(`#nav a[data-nav="data-plans"]`)), chromedp.WaitVisible(chromedp.CSS("#cycle-start")))
	assert.Contains(t, e.text("#plan-detail"), "Billing cycles of fleet-basic")
	e.do("add cycle", chromedp.Evaluate[chromedp.Void](`document.querySelector("#cycle-start").value = "2026-01-01T00:00"`),
		chromedp.SendKeys(chromedp.CSS("#cycle-pool"), "1000000"), chromedp.Click(chromedp.CSS("#cycle-add")))
	e.waitFor("cycle listed", `document.querySelector("#plan-detail").innerText.includes("976.6 KiB")`)

	// Settings: an API token for a script, shown once, then revoked.
	e.do("settings", chromedp.Click(chromedp.CSS(`#nav a[data-nav="settings"]`)), chromedp.WaitVisible(chromedp.CSS("#token-name")))
	e.do("create token", chromedp.SendKeys(chromedp.CSS("#token-name"), "release script"), chromedp.Click(chromedp.CSS("#token-create")))
	e.waitFor("token secret", `(document.querySelector("#token-secret code") || {textContent: ""}).textContent.startsWith("sota_")`)
	secret := e.text("#token-secret code")
	status := e.call("GET", "/filters", secret, nil, nil)
	assert.Equal(t, http.StatusOK, status, "the token shown works as a Bearer token")
	e.waitFor("token listed", `document.querySelector("#token-list").textContent.includes("release script")`)
	e.do("revoke", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#token-list tr")].find(r => r.textContent.includes("release script")).querySelector("button").click()`))
	e.waitFor("revoked", `!document.querySelector("#token-list").textContent.includes("release script")`)
	// a hawkBit DDI gateway token, shown once, listed, revoked
	e.do("create gateway token", chromedp.SendKeys(chromedp.CSS("#gateway-name"), "depot gateway"), chromedp.Click(chromedp.CSS("#gateway-create")))
	e.waitFor("gateway secret", `(document.querySelector("#gateway-secret code") || {textContent: ""}).textContent.startsWith("sotagw_")`)
	e.waitFor("gateway listed", `document.querySelector("#gateway-list").textContent.includes("depot gateway")`)
	e.do("revoke gateway", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#gateway-list tr")].find(r => r.textContent.includes("depot gateway")).querySelector("button").click()`))
	e.waitFor("gateway revoked", `!document.querySelector("#gateway-list").textContent.includes("depot gateway")`)

	// Log out: the session ends and the UI sends the browser back to the login page.
	e.do("log out", chromedp.Click(chromedp.CSS("#logout")))
	e.waitFor("login page", `location.pathname === "/login"`)
	e.do("reopen the UI", chromedp.Navigate(e.base+"/"))
	assert.Equal(t, e.base+"/login?next=%2F", e.location())
}

func evalInt(e *browserEnv, js string) int {
	e.t.Helper()
	n, err := chromedp.Run(e.ctx, chromedp.Evaluate[int](js))
	require.NoError(e.t, err)
	return n
}

// Over HTTPS the browser keeps the session cookie HttpOnly (page scripts cannot read it), Secure and
// SameSite=Strict, and a state-changing call the page makes without the session's CSRF token is 403.
func TestBrowserSessionCookieOverTLS(t *testing.T) {
	e := newBrowserEnvTLS(t, true)
	require.True(t, strings.HasPrefix(e.base, "https://"))
	e.api("PUT", "/vehicles/"+seedVIN("1HGCM8263", 1), nil)

	e.do("open the UI", chromedp.Navigate(e.base+"/#/filters"))
	assert.Equal(t, e.base+"/login?next=%2F#/filters", e.location(), "the browser keeps the fragment, the server never sees it")
	e.do("log in", chromedp.SendKeys(chromedp.CSS("#username"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitFor("the filters screen asked for", `document.querySelector("#filter-new") !== null`)
	assert.Equal(t, e.base+"/#/filters", e.location(), "back on the screen asked for")

	cookies, err := chromedp.Run(e.ctx, func(ctx context.Context, _ *chromedp.Target) (*network.GetCookiesResult, error) {
		r, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
		return &r, err
	})
	require.NoError(t, err)
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == SessionCookie {
			session = c
		}
	}
	require.NotNil(t, session, "the browser keeps the session cookie")
	assert.True(t, session.HTTPOnly)
	assert.True(t, session.Secure)
	assert.Equal(t, network.CookieSameSiteStrict, session.SameSite)
	visible, err := chromedp.Run(e.ctx, chromedp.Evaluate[string](`document.cookie`))
	require.NoError(t, err)
	assert.NotContains(t, visible, SessionCookie, "page scripts cannot read the session cookie")

	status, err := chromedp.Run(e.ctx, chromedp.Evaluate[int](`fetch("/api/v1/vehicles", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({vin: "1HGCM82633A004352"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, status, "the cookie alone does not change state")
	status, err = chromedp.Run(e.ctx, chromedp.Evaluate[int](`fetch("/api/v1/session").then(r => r.json()).then(s => fetch("/api/v1/vehicles", {method: "POST",
		headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrfToken}, body: JSON.stringify({vin: "1HGCM82633A004352"})})).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "with the session's CSRF token it does")
}

// TestScreenshots rewrites the README's screenshots (docs/screenshots/) from the example fleet when
// SOTA_SCREENSHOTS=1. The campaign's progress in the picture is set through the engine, not by devices
// (the flow test above covers devices).
func TestScreenshots(t *testing.T) {
	if os.Getenv("SOTA_SCREENSHOTS") != "1" {
		t.Skip("set SOTA_SCREENSHOTS=1 to rewrite docs/screenshots/")
	}
	var offset atomic.Int64 // the engine's clock is the wall clock moved back by offset (contacts below)
	e := newBrowserEnvWith(t, false, engine.Options{Now: func() time.Time { return time.Now().Add(-time.Duration(offset.Load())) }})
	_, err := exampleload.All(context.Background(), e.deps.Resolver, exampleload.DefaultSeed, 2000)
	require.NoError(t, err)

	// A launch needs the binaries of every package it installs: give the radio and Qt ones (the rest of
	// the catalogue stays without, as the package page's picture shows).
	pkgs, _, err := e.deps.Resolver.ListPackages("^(dab-radio|qt-runtime)$", resolver.Page{Limit: 1000})
	require.NoError(t, err)
	for _, p := range pkgs {
		_, err := e.deps.Engine.UploadBinary(p.ID, strings.NewReader("binary of "+p.ID.String()), engine.Upload{})
		require.NoError(t, err)
	}
	var c struct{ ID string }
	e.call("POST", "/campaigns", e.token, map[string]any{"name": "DAB radio 1.1.0 for everyone", "packageId": pkgID("dab-radio", "1.1.0"), "priority": 5}, &c)
	e.call("POST", "/campaigns/"+c.ID+"/launch", e.token, nil, nil)
	cp, err := e.deps.Engine.Campaign(c.ID)
	require.NoError(t, err)
	pending, _, err := e.deps.Engine.RequestVehicles(cp.UpdateRequest, engine.Pending, engine.Page{Limit: 10000})
	require.NoError(t, err)
	require.NotEmpty(t, pending)
	for i, v := range pending {
		var moves []engine.Status
		switch {
		case i%20 < 9:
			moves = []engine.Status{engine.InFlight, engine.Finished}
		case i%20 == 9:
			moves = []engine.Status{engine.InFlight, engine.Failed}
		case i%20 < 13:
			moves = []engine.Status{engine.InFlight}
		}
		for _, to := range moves {
			code := 0
			if to == engine.Failed {
				code = []int{wire.ResultInstallFailed, wire.ResultValidationFailed, wire.ResultInstallFailed, wire.ResultUserDeclined}[i/20%4]
			}
			_, err := e.deps.Engine.SetStatus(v.VIN, v.UpdateID, to, &code, map[int]string{0: "installed", wire.ResultInstallFailed: "install script failed",
				wire.ResultValidationFailed: "signature check failed", wire.ResultUserDeclined: "declined by the driver"}[code])
			require.NoError(t, err)
		}
	}
	vin := pending[0].VIN
	// Contacts: the vehicles that took part called today, others within the month, the rest earlier.
	for i, v := range pending {
		ago := time.Duration(i%7) * time.Hour
		if i%20 >= 13 {
			ago = time.Duration(2+i%25) * 24 * time.Hour
		}
		offset.Store(int64(ago))
		require.NoError(t, e.deps.Engine.Seen(v.VIN))
	}
	offset.Store(0)

	e.do("open", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.base+"/"))
	e.do("log in", chromedp.SendKeys(chromedp.CSS("#username"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitFor("dashboard", `document.querySelector("#dash-campaign-table") !== null && document.querySelector("#dash-failure-chart") !== null`)
	e.shot("dashboard")

	e.do("vehicles", chromedp.Navigate(e.base+"/#/vehicles"))
	e.waitFor("vehicles", `(document.querySelector("#vehicle-total") || {}).textContent === "2000 vehicles"`)
	e.shot("vehicles")

	e.do("vehicle", chromedp.Navigate(e.base+"/#/vehicles/"+vin))
	e.waitFor("history", `document.querySelector("#view").innerText.includes("Update history") && document.querySelector("#view").innerText.includes("finished")`)
	e.shot("vehicle-detail")

	e.do("filter editor", chromedp.Navigate(e.base+"/#/filters/new"), chromedp.WaitVisible(chromedp.CSS("#filter-expr")))
	e.choose("#dry-package", `{"name":"nav-engine","version":"3.2.0"}`)
	e.do("typo", chromedp.SendKeys(chromedp.CSS("#filter-name"), "euMercedesNav"),
		typeFilter(`filter "mercedes" AND attr "region" == "EU" AND has_pakage "nav-engine" < "3.2.0"`))
	e.waitFor("caret error", `document.querySelector("#filter-error .caret-msg") !== null`)
	e.shot("filter-editor-error")
	e.do("fix", chromedp.Evaluate[chromedp.Void](`document.querySelector("#filter-expr").value = ""`),
		typeFilter(`filter "mercedes" AND attr "region" == "EU" AND has_package "nav-engine" < "3.2.0"`))
	e.waitFor("match count", `document.querySelector("#match-count") !== null`)
	e.shot("filter-editor-match")

	e.do("packages", chromedp.Navigate(e.base+"/#/packages"))
	e.waitFor("package list", `document.querySelector("#view table") !== null`)
	e.shot("packages")

	e.do("package without a binary", chromedp.Navigate(e.base+"/#/packages/nav-engine/3.2.0"))
	e.waitFor("package page", `document.querySelector("#package-no-binary") !== null && document.querySelector("#package-vins-total") !== null`)
	e.shot("package-detail")

	e.do("campaign", chromedp.Navigate(e.base+"/#/campaigns/"+c.ID))
	e.waitFor("progress", `document.querySelector("#count-finished") !== null`)
	e.do("finished list", chromedp.Evaluate[chromedp.Void](`document.querySelector('#campaign-progress a[data-status="failed"]').click()`))
	e.waitFor("failed list", `document.querySelector("#campaign-vehicles table") !== null`)
	e.shot("campaign-progress")
}

// The screens a new user meets first: the dashboard's figures and charts, the vehicle list's last seen
// and pending updates, a package page that says plainly that a version without a binary cannot be
// delivered and pages through the VINs that have it, human status labels and times with their zone,
// and a confirm dialog that names what deleting a filter does.
func TestBrowserDashboardAndProductScreens(t *testing.T) {
	e := newBrowserEnv(t)
	hondas, _ := e.seed()
	// 130 more vehicles with nav 1.0.0: the package page pages through its VINs, 100 at a time.
	var more []string
	for i := 1; i <= 130; i++ {
		v := seedVIN("WDD2050", i)
		more = append(more, v)
		require.NoError(t, e.deps.Resolver.PutVehicle(v))
		require.NoError(t, e.deps.Resolver.InstallPackage(v, resolver.PackageID{Name: "nav", Version: "1.0.0"}))
	}
	e.api("POST", "/filters", map[string]any{"name": "everyone", "expression": "TRUE"})
	e.api("POST", "/filters", map[string]any{"name": "hondas", "expression": `vin_matches "^1HG"`})
	e.api("POST", "/filters", map[string]any{"name": "hondasEverywhere", "expression": `filter "hondas" AND TRUE`})
	e.api("PUT", "/packages/nav/2.0.0/filter/hondas", nil)
	_, err := e.deps.Engine.UploadBinary(resolver.PackageID{Name: "nav", Version: "2.0.0"}, strings.NewReader("map tiles"), engine.Upload{})
	require.NoError(t, err)
	var req struct{ ID string }
	e.call("POST", "/update_requests", e.token, map[string]any{"packageId": pkgID("nav", "2.0.0")}, &req)
	require.NotEmpty(t, req.ID)
	// Three Hondas report: two fail validation, one is declined; the fourth downloads.
	for i, code := range []int{wire.ResultValidationFailed, wire.ResultValidationFailed, wire.ResultUserDeclined} {
		q, err := e.deps.Engine.Queue(hondas[i])
		require.NoError(t, err)
		require.Len(t, q, 1)
		require.NoError(t, e.deps.Engine.Seen(hondas[i]))
		_, _, err = e.deps.Engine.InstallReport(hondas[i], q[0].ID, []engine.OperationResult{{ID: "nav", ResultCode: code, ResultText: "rejected"}})
		require.NoError(t, err)
	}
	e.device(hondas[3]).start(req.ID)

	e.do("open", chromedp.Navigate(e.base+"/"))
	e.do("log in", chromedp.SendKeys(chromedp.CSS("#username"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitText("#dash-fleet", "136")
	assert.Equal(t, "4", e.text("#dash-seen-day"), "three reported, one downloads")
	assert.Equal(t, "4", e.text("#dash-seen-month"))
	assert.Equal(t, "3", e.text("#dash-failed"))
	failures := e.text("#dash-failure-chart")
	assert.Regexp(t, `3 VALIDATION_FAILED\s+2`, failures)
	assert.Regexp(t, `13 USER_DECLINED\s+1`, failures)
	assert.Equal(t, 2, evalInt(e, `document.querySelectorAll("#dash-failure-chart .chart-row").length`))
	assert.Equal(t, 100, evalInt(e, `Math.round(100 * parseFloat(getComputedStyle(document.querySelector('#dash-failure-chart [data-code="3"] .fill')).width) / parseFloat(getComputedStyle(document.querySelector('#dash-failure-chart [data-code="3"] .meter')).width))`),
		"the largest count fills its bar")
	assert.Regexp(t, `last 24 hours\s+4 \(3%\)`, e.text("#dash-seen-chart"))
	assert.Contains(t, e.text("#dash-campaigns"), "No campaign is running.", "an update request is not a campaign")

	// The update request's page: human labels.
	e.do("request page", chromedp.Navigate(e.base+"/#/update-requests/"+req.ID))
	e.waitText("#count-inFlight", "1")
	assert.Equal(t, "in flight", e.text(`#campaign-progress a[data-status="inFlight"]`))
	e.do("failed list", chromedp.Click(chromedp.CSS(`#campaign-progress a[data-status="failed"]`)))
	e.waitFor("failed vehicles", `(document.querySelector("#campaign-vehicles h2") || {}).textContent === "Vehicles failed (3)"`)

	// A vehicle's page: the last contact with its time zone, the update's status as a label.
	e.do("vehicle", chromedp.Navigate(e.base+"/#/vehicles/"+hondas[3]))
	e.waitFor("vehicle page", `document.querySelector("#vehicle-last-seen") !== null`)
	assert.Regexp(t, `^Last seen \w{3} \d{1,2}, \d{4}, \d{2}:\d{2}:\d{2} (AM |PM )?[A-Z][A-Za-z0-9+:-]+ \(just now\)$`, e.text("#vehicle-last-seen"))
	assert.Contains(t, e.text("#view"), "in flight")
	assert.NotContains(t, e.text("#view"), "inFlight")

	// The package page says plainly that nav 1.0.0 has no binary (2.0.0 has one), and pages through
	// the VINs that have it installed.
	e.do("package list", chromedp.Navigate(e.base+"/#/packages"))
	e.waitFor("package list", `document.querySelector("#view table") !== null`)
	assert.Regexp(t, `nav 1\.0\.0\s+Navigation 1\.0\.0\s+ACME Maps\s+no binary`, e.text("#view table"))
	assert.Equal(t, "1 of 2 versions listed has no binary: it cannot be delivered to vehicles until one is uploaded.", e.text("#packages-no-binary"))
	assert.Regexp(t, `nav 2\.0\.0\s+Navigation 2\.0\.0\s+ACME Maps\s+9 B`, e.text("#view table"))
	e.do("package with a binary", chromedp.Navigate(e.base+"/#/packages/nav/2.0.0"))
	e.waitFor("package page", `document.querySelector("#package-vins-total") !== null`)
	assert.Contains(t, e.text("#view"), "9 B · sha256 ")
	assert.Zero(t, evalInt(e, `document.querySelectorAll("#package-no-binary").length`))
	e.do("package without binary", chromedp.Navigate(e.base+"/#/packages/nav/1.0.0"))
	e.waitFor("package page", `document.querySelector("#package-no-binary") !== null`)
	assert.Contains(t, e.text("#package-no-binary"), "this version cannot be delivered to vehicles")
	e.waitText("#package-vins-total", "135")
	assert.Equal(t, "1–100 of 135", e.text("#package-vins-range"))
	assert.Equal(t, 100, evalInt(e, `document.querySelectorAll("#package-vins li").length`))
	assert.NotContains(t, e.text("#package-vins"), more[129])
	e.do("next page", chromedp.Click(chromedp.CSS("#package-vins-next")))
	e.waitText("#package-vins-range", "101–135 of 135")
	assert.Equal(t, 35, evalInt(e, `document.querySelectorAll("#package-vins li").length`))
	assert.Contains(t, e.text("#package-vins"), more[129])
	e.do("previous page", chromedp.Click(chromedp.CSS("#package-vins-prev")))
	e.waitText("#package-vins-range", "1–100 of 135")

	// Deleting a filter: the dialog names the packages that lose it; a filter others refer to is refused.
	e.do("filters", chromedp.Click(chromedp.CSS(`#nav a[data-nav="filters"]`)))
	e.waitFor("filter list", `document.querySelector('button[data-delete="hondas"]') !== null`)
	e.do("delete a referenced filter", chromedp.Click(chromedp.CSS(`button[data-delete="hondas"]`)))
	e.waitFor("refused", `document.querySelector("#toast").textContent.includes("referenced by filter hondasEverywhere")`)
	msgs := e.dialogMessages()
	require.NotEmpty(t, msgs)
	assert.Contains(t, msgs[len(msgs)-1], "Filters hondasEverywhere refer to it: the server will refuse to delete it")
	assert.Contains(t, msgs[len(msgs)-1], "It is linked to 1 package: nav 2.0.0.")
	e.do("delete the referring filter", chromedp.Click(chromedp.CSS(`button[data-delete="hondasEverywhere"]`)))
	e.waitFor("deleted", `document.querySelector('button[data-delete="hondasEverywhere"]') === null`)
	assert.Contains(t, e.dialogMessages()[len(e.dialogMessages())-1], "No package is linked to it and no filter refers to it.")
	var links []resolver.Filter
	e.do("delete a linked filter", chromedp.Click(chromedp.CSS(`button[data-delete="hondas"]`)))
	e.waitFor("deleted", `document.querySelector('button[data-delete="hondas"]') === null`)
	msg := e.dialogMessages()[len(e.dialogMessages())-1]
	assert.Contains(t, msg, "Delete filter hondas?")
	assert.Contains(t, msg, "It is linked to 1 package: nav 2.0.0.")
	assert.Contains(t, msg, "each of them then goes to every vehicle its other filters select, a wider audience than today")
	links, err = e.deps.Resolver.PackageFilters(resolver.PackageID{Name: "nav", Version: "2.0.0"})
	require.NoError(t, err)
	assert.Empty(t, links, "the deletion unlinked it")
}
