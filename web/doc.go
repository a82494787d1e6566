// Package web holds the admin UI assets, embedded into the binary: the single-page app (index.html,
// app.css, and plain ES modules: app.js, the entry that routes to one module per screen, plus the shared
// api.js, ui.js, nav.js and dryrun.js) and the login page template (with login.js). The files are served
// as they are; the one exception is editor.js, the filter editor (CodeMirror 6), which `make web` bundles
// from web/editor/ (npm, esbuild) and which is committed, so that building the server needs only Go.
// Only the files named in Assets are served; the api package answers 409 for any other script,
// stylesheet or page.
package web

import "embed"

//go:embed static
var files embed.FS

// Assets maps each approved asset name (as requested under /assets/) to its content type.
var Assets = map[string]string{
	"app.css": "text/css; charset=utf-8",
	// The admin UI's modules: the entry (app.js), the shared ones, then one per screen.
	"app.js":        js,
	"api.js":        js,
	"ui.js":         js,
	"nav.js":        js,
	"dryrun.js":     js,
	"dashboard.js":  js,
	"vehicles.js":   js,
	"packages.js":   js,
	"components.js": js,
	"filters.js":    js,
	"editor.js":     js, // the bundled filter editor (web/editor, make web)
	"campaigns.js":  js,
	"rollout.js":    js,
	"requests.js":   js,
	"dataplans.js":  js,
	"settings.js":   js,
	"audit.js":      js,
	"webhooks.js":   js,
	// login.js keeps the screen asked for (the URL fragment, which the server never sees) across login.
	"login.js": js,
}

const js = "text/javascript; charset=utf-8"

// Index is the admin UI page.
func Index() []byte { return mustRead("static/index.html") }

// LoginTemplate is the login page, an html/template with fields Next and Error.
func LoginTemplate() string { return string(mustRead("static/login.html")) }

// Asset returns an approved asset's content and content type, or false for anything not in Assets.
func Asset(name string) ([]byte, string, bool) {
	ct, ok := Assets[name]
	if !ok {
		return nil, "", false
	}
	return mustRead("static/" + name), ct, true
}

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("web: embedded asset missing: " + name) // a build mistake, caught by the tests
	}
	return b
}
