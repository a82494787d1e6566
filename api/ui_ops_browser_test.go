package api

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
)

// The Audit and Webhooks screens (admin), and the navigation a viewer sees without them.
func TestBrowserAuditAndWebhooksScreens(t *testing.T) {
	e := newBrowserEnv(t)
	e.api("PUT", "/vehicles/WDD00000000000123", nil)
	e.api("POST", "/webhooks", map[string]any{"url": "http://127.0.0.1:9/first", "events": []string{"vehicle.deleted"}, "secret": "browser-secret"})

	e.do("open", chromedp.Navigate(e.base+"/"))
	e.do("log in", chromedp.SendKeys(chromedp.CSS("#username"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitFor("signed in", `document.querySelector("#who") && document.querySelector("#who").textContent.includes("admin")`)
	e.waitFor("audit link shown", `getComputedStyle(document.querySelector('a[data-nav="audit"]')).display !== "none"`)

	e.do("audit", chromedp.Navigate(e.base+"/#/audit"))
	e.waitFor("audit entries", `document.querySelector("#audit-list table") !== null`)
	log := e.text("#audit-list")
	assert.Contains(t, log, "PUT /api/v1/vehicles/:vin")
	assert.Contains(t, log, "WDD00000000000123")
	assert.Contains(t, log, "token:browser test seed")
	assert.Contains(t, e.text("#audit-total"), "of 2")
	e.do("filter by target", chromedp.SendKeys(chromedp.CSS("#audit-target"), "WDD00000000000123"), chromedp.Click(chromedp.CSS("#audit-search")))
	e.waitText("#audit-total", "Entries 1–1 of 1")

	e.do("webhooks", chromedp.Navigate(e.base+"/#/webhooks"))
	e.waitFor("webhook list", `document.querySelector("#view table") !== null`)
	assert.Contains(t, e.text("#view table"), "http://127.0.0.1:9/first")
	e.do("create", chromedp.SendKeys(chromedp.CSS("#webhook-url"), "http://127.0.0.1:9/second"),
		chromedp.SendKeys(chromedp.CSS("#webhook-secret"), "another secret"),
		chromedp.Click(chromedp.CSS(`input[data-event="update.failed"]`)), chromedp.Click(chromedp.CSS("#webhook-create")))
	e.waitFor("second webhook", `document.querySelector("#view table") && document.querySelector("#view table").innerText.includes("/second")`)
	assert.Contains(t, e.text("#view table"), "update.failed")
	hooks := e.deps.Engine.Webhooks()
	require.Len(t, hooks, 2)

	// a viewer's navigation has no Audit or Webhooks
	_, err := auth.New(e.deps.DB).CreateAccount("vic", testPassword, auth.RoleViewer)
	require.NoError(t, err)
	e.do("log out", chromedp.Click(chromedp.CSS("#logout")))
	e.waitFor("login page", `document.querySelector("#username") !== null`)
	e.do("log in as viewer", chromedp.SendKeys(chromedp.CSS("#username"), "vic"), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitFor("signed in as viewer", `document.querySelector("#who") && document.querySelector("#who").textContent.includes("vic")`)
	e.waitFor("audit link hidden", `getComputedStyle(document.querySelector('a[data-nav="audit"]')).display === "none"`)
	e.waitFor("webhooks link hidden", `getComputedStyle(document.querySelector('a[data-nav="webhooks"]')).display === "none"`)
	assert.Equal(t, 1, evalInt(e, `getComputedStyle(document.querySelector('a[data-nav="vehicles"]')).display === "none" ? 0 : 1`))
}

// visibleButtons is the text of every button (and button-styled link) of the screen a user can see.
func visibleButtons(e *browserEnv) []string {
	e.t.Helper()
	s, err := chromedp.Run(e.ctx, chromedp.Evaluate[string](`JSON.stringify(Array.from(document.querySelectorAll("#view button, #view a.button"))
		.filter((b) => b.getClientRects().length > 0).map((b) => b.textContent.trim()))`))
	require.NoError(e.t, err)
	var out []string
	require.NoError(e.t, json.Unmarshal([]byte(s), &out))
	return out
}

// The UI offers each role only what it may do: a viewer sees no control that changes anything on the
// vehicles, packages, filters and campaigns screens (only searching, previews, dry runs, explain), an
// operator sees the create, edit and delete controls there but not the admin's gateway tokens and
// accounts, and both reach their own tokens in Settings.
func TestBrowserRoleAwareControls(t *testing.T) {
	e := newBrowserEnv(t)
	hondas, _ := e.seed()
	e.api("POST", "/filters", map[string]any{"name": "hondas", "expression": `vin_matches "^1HG"`})
	e.api("PUT", "/packages/nav/2.0.0/filter/hondas", nil)
	var c struct {
		ID string `json:"id"`
	}
	e.call("POST", "/campaigns", e.token, map[string]any{"name": "nav 2 for hondas", "packageId": pkgID("nav", "2.0.0")}, &c)
	a := auth.New(e.deps.DB)
	_, err := a.CreateAccount("vic", testPassword, auth.RoleViewer)
	require.NoError(t, err)
	_, err = a.CreateAccount("olga", testPassword, auth.RoleOperator)
	require.NoError(t, err)

	// Each screen with what marks it as drawn (its asynchronous parts included) and the controls an
	// operator must be offered there.
	screens := []struct {
		hash, ready string
		operator    []string
	}{
		{"#/vehicles", `document.querySelector("#vehicle-total")`, []string{"Add"}},
		{"#/vehicles/" + hondas[0], `document.querySelector("#vehicle-last-seen")`,
			[]string{"Remove", "Mark installed", "Install component", "Save attributes", "Set plan", "Ask for installed packages", "Delete vehicle"}},
		{"#/packages", `document.querySelector("#view table")`, []string{"Create / upload"}},
		{"#/packages/nav/2.0.0", `document.querySelector("#queue-submit")`,
			[]string{"Upload binary", "Unlink", "Link filter", "Add exact dependency", "Add range dependency", "Queue", "Delete package"}},
		{"#/filters", `document.querySelector('[data-delete="hondas"]')`, []string{"New filter", "Delete"}},
		{"#/filters/hondas", `document.querySelector("#filter-save")`, []string{"Save"}},
		{"#/campaigns", `document.querySelector("#campaign-create") && document.querySelector("#view table")`, []string{"Create", "Add group"}},
		{"#/campaigns/" + c.ID, `document.querySelector("#campaign-pause")`, []string{"Launch", "Cancel pending updates", "Pause", "Resume", "Release", "Abort"}},
	}
	// what a viewer may still press: it reads or computes without changing anything
	readOnly := []string{"Search", "Filter", "Preview", "Dry run with its filters", "Explain", "Format", "‹ Previous", "Next ›"}

	login := func(user string) {
		e.do("open", chromedp.Navigate(e.base+"/"))
		e.waitFor("login page", `document.querySelector("#username") !== null || document.querySelector("#logout") !== null`)
		if n := evalInt(e, `document.querySelector("#logout") ? 1 : 0`); n == 1 {
			e.do("log out", chromedp.Click(chromedp.CSS("#logout")))
			e.waitFor("login page", `document.querySelector("#username") !== null`)
		}
		e.do("log in as "+user, chromedp.SendKeys(chromedp.CSS("#username"), user), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
			chromedp.Click(chromedp.CSS("#login-submit")))
		e.waitFor("signed in as "+user, `document.querySelector("#who") && document.querySelector("#who").textContent.includes(`+strconv.Quote(user)+`)`)
	}
	show := func(s struct {
		hash, ready string
		operator    []string
	}) []string {
		e.do("open "+s.hash, chromedp.Navigate(e.base+"/"+s.hash))
		e.waitFor(s.hash+" drawn", s.ready)
		return visibleButtons(e)
	}

	login("vic")
	for _, s := range screens {
		for _, b := range show(s) {
			assert.Containsf(t, readOnly, b, "a viewer is offered %q on %s", b, s.hash)
		}
	}
	e.do("settings", chromedp.Navigate(e.base+"/#/settings"))
	e.waitFor("settings drawn", `document.querySelector("#token-create")`)
	assert.Equal(t, 1, evalInt(e, `document.querySelector("#token-create").getClientRects().length > 0 ? 1 : 0`), "a viewer manages its own tokens")
	assert.Equal(t, 0, evalInt(e, `document.querySelector("#gateway-create").getClientRects().length`), "gateway tokens are the admin's")

	login("olga")
	for _, s := range screens {
		got := show(s)
		for _, b := range s.operator {
			assert.Containsf(t, got, b, "an operator is offered %q on %s", b, s.hash)
		}
	}
	e.do("settings", chromedp.Navigate(e.base+"/#/settings"))
	e.waitFor("settings drawn", `document.querySelector("#token-create")`)
	got := visibleButtons(e)
	assert.Contains(t, got, "Create token")
	assert.Contains(t, got, "Change password")
	assert.NotContains(t, got, "Create gateway token")
	assert.NotContains(t, got, "Add account")
}
