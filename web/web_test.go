package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	assetRef  = regexp.MustCompile(`(?:src|href)="/assets/([^"]+)"`)
	importRef = regexp.MustCompile(`(?m)^\s*import\s+(?:[^"';]*?\s+from\s+)?"\./([^"]+)"`)
)

// Every script and stylesheet the pages link, and every module those scripts import, is an approved
// asset (else the browser would get 409); every approved asset is reachable from a page and embedded.
func TestPagesLinkOnlyApprovedAssets(t *testing.T) {
	reached := map[string]bool{}
	var queue []string
	for name, page := range map[string]string{"index.html": string(Index()), "login.html": LoginTemplate()} {
		refs := assetRef.FindAllStringSubmatch(page, -1)
		require.NotEmpty(t, refs, name)
		for _, m := range refs {
			_, _, ok := Asset(m[1])
			assert.True(t, ok, "%s links /assets/%s, which is not approved", name, m[1])
			if !reached[m[1]] {
				reached[m[1]] = true
				queue = append(queue, m[1])
			}
		}
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		body, _, ok := Asset(name)
		if !ok {
			continue
		}
		for _, m := range importRef.FindAllStringSubmatch(string(body), -1) {
			_, _, ok := Asset(m[1])
			assert.True(t, ok, "%s imports ./%s, which is not approved", name, m[1])
			if !reached[m[1]] {
				reached[m[1]] = true
				queue = append(queue, m[1])
			}
		}
	}
	for name := range Assets {
		assert.True(t, reached[name], "approved asset %s is reached from no page", name)
		body, _, ok := Asset(name)
		require.True(t, ok)
		assert.NotEmpty(t, body, name)
	}
	_, _, ok := Asset("login.html")
	assert.False(t, ok, "pages are not assets")
}

// Every script and stylesheet shipped in static/ is approved: a new screen module left out of Assets
// would be refused by the server (409) and the UI would not start.
func TestEveryShippedScriptIsApproved(t *testing.T) {
	entries, err := fs.ReadDir(files, "static")
	require.NoError(t, err)
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".js") || strings.HasSuffix(e.Name(), ".css") {
			n++
			_, ok := Assets[e.Name()]
			assert.True(t, ok, "static/%s is not in web.Assets", e.Name())
		}
	}
	assert.Equal(t, len(Assets), n, "every approved asset is a file of static/")
}

// The UI builds its DOM from text nodes only: server data never goes through the HTML parser, and the
// Content-Security-Policy (default-src 'self') forbids inline scripts and handlers.
func TestUIBuildsNoHTMLFromStrings(t *testing.T) {
	for name := range Assets {
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		js, _, ok := Asset(name)
		require.True(t, ok)
		for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			assert.NotContains(t, string(js), sink, name)
		}
	}
	for name, page := range map[string]string{"index.html": string(Index()), "login.html": LoginTemplate()} {
		assert.NotRegexp(t, `(?i)<script>|<script [^>]*>[^<]|\son[a-z]+=|style=`, page, name)
		assert.False(t, strings.Contains(page, "javascript:"), name)
	}
}
