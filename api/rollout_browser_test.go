package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/engine"
	"sota/resolver"
	"sota/wire"
)

// The release engineer stages a rollout in the admin UI: a campaign with a canary of 10%, a group of
// 25% and the rest, a 75% success and a 20% error threshold; the preview shows each group's size and
// no problem; after the launch the canary's vehicles install and its bar goes green, the next group
// is released by itself, injected failures pause the campaign with the reason on the page, and the
// resume button sets it running again. SOTA_SCREENSHOTS=1 saves docs/screenshots/campaign-rollout.png.
func TestBrowserStagedRollout(t *testing.T) {
	e := newBrowserEnv(t)
	hmi := resolver.PackageID{Name: "hmi", Version: "2.0.0"}
	_, err := e.deps.Engine.UploadBinary(hmi, strings.NewReader("hmi 2.0.0 image"), engine.Upload{})
	require.NoError(t, err)
	e.api("POST", "/filters", map[string]any{"name": "fleet", "expression": `vin_matches "^WDD"`})
	e.api("PUT", "/packages/hmi/2.0.0/filter/fleet", nil)
	for i := 1; i <= 40; i++ {
		e.api("PUT", "/vehicles/"+fmt.Sprintf("WDD%014d", i), nil)
	}

	e.do("open", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.base+"/#/campaigns"))
	e.do("log in", chromedp.SendKeys(chromedp.CSS("#username"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitFor("campaigns", `document.querySelector("#campaign-name") !== null`)
	e.choose("#campaign-package", `{"name":"hmi","version":"2.0.0"}`)
	e.do("staged groups", chromedp.SendKeys(chromedp.CSS("#campaign-name"), "HMI 2.0 staged"), chromedp.Click(chromedp.CSS("#group-staged")),
		chromedp.Evaluate[chromedp.Void](`(() => { const p = document.querySelectorAll(".group-percent"); p[0].value = "10"; p[1].value = "25";
			document.querySelector("#campaign-success").value = "75"; document.querySelector("#campaign-error").value = "20"; })()`),
		chromedp.Click(chromedp.CSS("#campaign-create")))
	e.waitFor("campaign page", `location.hash.startsWith("#/campaigns/") && document.querySelector("#campaign-groups") !== null`)
	id := strings.TrimPrefix(e.location()[strings.Index(e.location(), "#"):], "#/campaigns/")

	e.do("preview", chromedp.Click(chromedp.CSS("#campaign-preview")))
	e.waitFor("group sizes", `document.querySelector('.group-size[data-group="rest"]') !== null`)
	assert.Equal(t, "4", e.text(`.group-size[data-group="canary"]`))
	assert.Equal(t, "10", e.text(`.group-size[data-group="early"]`))
	assert.Equal(t, "26", e.text(`.group-size[data-group="rest"]`))
	assert.Contains(t, e.text("#preview-no-problems"), "None")

	e.do("launch", chromedp.Click(chromedp.CSS("#campaign-launch")))
	e.waitFor("canary released", `document.querySelector('#campaign-groups tr[data-group="canary"][data-status="released"]') !== null`)
	assert.Contains(t, e.text("#campaign-rollout-status"), "running")

	var c struct {
		Groups []struct {
			Name, UpdateRequest string
		}
	}
	e.call("GET", "/campaigns/"+id, e.token, nil, &c)
	canary, _, err := e.deps.Engine.RequestVehicles(c.Groups[0].UpdateRequest, engine.Pending, engine.Page{})
	require.NoError(t, err)
	require.Len(t, canary, 4)
	for _, v := range canary[:3] { // 3 of 4: the 75% success threshold
		d := e.device(v.VIN)
		d.start(c.Groups[0].UpdateRequest)
		d.install()
	}
	e.waitFor("early released", `document.querySelector('#campaign-groups tr[data-group="early"][data-status="released"]') !== null`)
	assert.Contains(t, e.text(`#campaign-groups tr[data-group="canary"]`), "75%")

	// Failures in the early group: 3 of the 14 released vehicles (21%) pass the 20% threshold.
	e.call("GET", "/campaigns/"+id, e.token, nil, &c)
	early, _, err := e.deps.Engine.RequestVehicles(c.Groups[1].UpdateRequest, engine.Pending, engine.Page{})
	require.NoError(t, err)
	for _, v := range early[:3] {
		d := e.device(v.VIN)
		d.start(c.Groups[1].UpdateRequest)
		e.call("POST", "/vehicle_updates/"+d.vin+"/"+d.updateID, d.tok, map[string]any{"operation_results": []map[string]any{
			{"id": d.updateID, "result_code": wire.ResultInstallFailed, "result_text": "flash write error"}}}, nil)
	}
	e.waitFor("paused", `document.querySelector("#campaign-pause-reason") !== null`)
	assert.Equal(t, `Paused: groups "canary", "early": 3 of 14 failed (21.4%), error threshold 20%`, e.text("#campaign-pause-reason"))
	assert.Contains(t, e.text("#campaign-rollout-status"), "paused")
	e.shot("campaign-rollout")

	e.do("resume", chromedp.Click(chromedp.CSS("#campaign-resume")))
	e.waitFor("running again", `document.querySelector("#campaign-pause-reason") === null && document.querySelector("#campaign-rollout-status").textContent.includes("running")`)
	e.call("GET", "/campaigns/"+id, e.token, nil, &c)
}
