package web

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var assetRef = regexp.MustCompile(`(?:src|href)="/assets/([^"]+)"`)

// Every script and stylesheet the pages link is an approved asset (else the browser would get 409),
// and every approved asset is linked by some page and embedded.
func TestPagesLinkOnlyApprovedAssets(t *testing.T) {
	linked := map[string]bool{}
	for name, page := range map[string]string{"index.html": string(Index()), "login.html": LoginTemplate()} {
		refs := assetRef.FindAllStringSubmatch(page, -1)
		require.NotEmpty(t, refs, name)
		for _, m := range refs {
			_, _, ok := Asset(m[1])
			assert.True(t, ok, "%s links /assets/%s, which is not approved", name, m[1])
			linked[m[1]] = true
		}
	}
	for name := range Assets {
		assert.True(t, linked[name], "approved asset %s is linked by no page", name)
		body, _, ok := Asset(name)
		require.True(t, ok)
		assert.NotEmpty(t, body, name)
	}
	_, _, ok := Asset("login.html")
	assert.False(t, ok, "pages are not assets")
}

// The UI builds its DOM from text nodes only: server data never goes through the HTML parser, and the
// Content-Security-Policy (default-src 'self') forbids inline scripts and handlers.
func TestUIBuildsNoHTMLFromStrings(t *testing.T) {
	js, _, ok := Asset("app.js")
	require.True(t, ok)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		assert.NotContains(t, string(js), sink)
	}
	for name, page := range map[string]string{"index.html": string(Index()), "login.html": LoginTemplate()} {
		assert.NotRegexp(t, `(?i)<script>|<script [^>]*>[^<]|\son[a-z]+=|style=`, page, name)
		assert.False(t, strings.Contains(page, "javascript:"), name)
	}
}
