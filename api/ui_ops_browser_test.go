package api

import (
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
