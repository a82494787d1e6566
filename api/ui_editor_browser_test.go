package api

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
)

// TestBrowserFilterEditor writes a filter the way an operator does in the editor: types has_pak and
// accepts the completion, picks a package from the list the server completes, sees how many vehicles
// the expression matches, and fixes a misspelt saved filter with the quick fix lint offers. Create is
// disabled while the filter is invalid. With SOTA_SCREENSHOTS=1 it saves the editor's screenshots.
func TestBrowserFilterEditor(t *testing.T) {
	e := newBrowserEnv(t)
	e.seed()
	e.api("POST", "/filters", map[string]any{"name": "hondas", "expression": `vin_matches "^1HG"`})

	e.do("open the UI", chromedp.Navigate(e.base+"/index.html"))
	e.do("log in", chromedp.SendKeys(chromedp.CSS("#username"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	e.waitFor("dashboard", `document.querySelector("#dash-fleet") !== null`)
	e.do("new filter", chromedp.Navigate(e.base+"/#/filters/new"), chromedp.WaitVisible(chromedp.CSS("#filter-expr")))
	value := `document.querySelector("#filter-expr").value`
	options := `Array.from(document.querySelectorAll(".cm-tooltip-autocomplete li")).map((li) => li.textContent)`

	// has_pak: the completion offers has_package first; Enter accepts it and the package names follow.
	e.do("type has_pak", typeFilter("has_pak"))
	e.waitFor("predicate completion", options+`[0]?.startsWith("has_package")`)
	e.shot("filter-editor-completion")
	assert.True(t, evalBool(e, `document.querySelector("#filter-save").disabled`), "Create is disabled while the filter is invalid")
	// (CodeMirror ignores Enter for a moment after the list opens, so that typing on is not taken as a choice.)
	e.do("accept", chromedp.Sleep(300*time.Millisecond), pressEnter())
	e.waitFor("predicate inserted", value+` === "has_package "`)
	e.waitFor("package completion", options+`.length === 1 && `+options+`[0].startsWith("nav")`)
	assert.Contains(t, e.text(".cm-tooltip-autocomplete"), "5 vehicles", "a package shows how many vehicles have it")

	// Pick nav from the list, finish the predicate: the live count of the expression alone.
	e.do("pick nav", chromedp.Sleep(300*time.Millisecond), chromedp.Click(chromedp.CSS(".cm-tooltip-autocomplete li")))
	e.waitFor("package inserted", value+` === 'has_package "nav"'`)
	e.do("version regex", typeFilter(` ""`))
	e.waitText("#match-total", "5")
	assert.Contains(t, e.text("#filter-count"), "5 vehicles match")
	assert.Contains(t, e.text("#filter-status"), "✓ valid")
	assert.False(t, evalBool(e, `document.querySelector("#filter-save").disabled`), "Create is enabled once the filter is valid")
	e.shot("filter-editor-count")

	// A misspelt saved filter: an error underlined in the editor, with a quick fix.
	e.do("misspelt filter", typeFilter(` AND filter "hondaz"`))
	e.waitFor("quick fix", `document.querySelector("#filter-error .quick-fix") !== null`)
	assert.Equal(t, `Use "hondas"`, e.text("#filter-error .quick-fix"))
	assert.Contains(t, e.text("#filter-error .caret-msg"), `unknown filter "hondaz", expected the name of a saved filter; did you mean "hondas"?`)
	e.waitFor("squiggle", `document.querySelector(".cm-lintRange-error") !== null`)
	assert.True(t, evalBool(e, `document.querySelector("#filter-save").disabled`))
	e.shot("filter-editor-quick-fix")
	e.do("apply the fix", chromedp.Click(chromedp.CSS("#filter-error .quick-fix")))
	e.waitFor("fixed", value+` === 'has_package "nav" "" AND filter "hondas"'`)
	e.waitText("#match-total", "3")
	assert.Empty(t, e.text("#filter-error"))
	// The grammar's words are highlighted as such (the editor has them from web/editor/src/language.js,
	// generated from dsl's grammar): predicates in blue, keywords in purple, not as invalid words.
	assert.True(t, evalBool(e, `(() => {
		const color = (w) => { const s = Array.from(document.querySelectorAll("#filter-expr span")).find((x) => x.textContent === w); return s && getComputedStyle(s).color; };
		return color("has_package") === "rgb(31, 95, 168)" && color("filter") === "rgb(31, 95, 168)" && color("AND") === "rgb(122, 62, 157)";
	})()`), "the editor highlights the grammar's predicates and keywords")
	assert.False(t, evalBool(e, `document.querySelector("#filter-save").disabled`))

	// The vehicle search takes a filter expression, in the same editor.
	e.do("vehicles", chromedp.Navigate(e.base+"/#/vehicles"), chromedp.WaitVisible(chromedp.CSS("#vehicle-search")))
	e.choose("#vehicle-mode", "expression")
	e.do("search by expression", chromedp.WaitVisible(chromedp.CSS("#vehicle-expr")), typeVehicleExpr(`filter "hondas" AND attr "year" >= 2019`),
		chromedp.Click(chromedp.CSS("#vehicle-search")))
	e.waitText("#vehicle-total", "3 vehicles")
}

// typeVehicleExpr types into the vehicle search's filter editor.
func typeVehicleExpr(text string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.Focus(chromedp.CSS("#vehicle-expr"))(ctx, t); err != nil {
			return chromedp.Void{}, err
		}
		_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
		return chromedp.Void{}, err
	}
}

func evalBool(e *browserEnv, js string) bool {
	e.t.Helper()
	v, err := chromedp.Run(e.ctx, chromedp.Evaluate[bool](js))
	if err != nil {
		e.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// pressEnter presses and releases Enter as a keyboard does: the key, with no character of its own
// that would type a line break after the editor has handled it.
func pressEnter() chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, input.DispatchKeyEventParams{Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13}); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
}
