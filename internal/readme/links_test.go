package readme

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	mdLink    = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	htmlLink  = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	mdMention = regexp.MustCompile("`([A-Za-z0-9_./-]+\\.md)`")
)

// docFiles is README.md and every Markdown file under docs/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			files = append(files, p)
		}
		return err
	})
	require.NoError(t, err)
	return files
}

// Every relative link of README.md and docs/ points at a file of the repository, and every Markdown
// file the text names in backquotes exists: the documentation sends no reader to a file we do not ship.
func TestRelativeLinksResolve(t *testing.T) {
	checked := 0
	for _, file := range docFiles(t) {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		text := string(raw)
		rel, _ := filepath.Rel(root, file)
		var targets []string
		for _, re := range []*regexp.Regexp{mdLink, htmlLink} {
			for _, m := range re.FindAllStringSubmatch(text, -1) {
				targets = append(targets, m[1])
			}
		}
		for _, target := range targets {
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
				continue
			}
			path := strings.SplitN(target, "#", 2)[0]
			_, err := os.Stat(filepath.Join(filepath.Dir(file), filepath.FromSlash(path)))
			assert.NoError(t, err, "%s links %q, which is not a file of the repository", rel, target)
			checked++
		}
		for _, m := range mdMention.FindAllStringSubmatch(text, -1) {
			_, errRoot := os.Stat(filepath.Join(root, m[1]))
			_, errHere := os.Stat(filepath.Join(filepath.Dir(file), m[1]))
			assert.True(t, errRoot == nil || errHere == nil, "%s names `%s`, which is not a file of the repository", rel, m[1])
		}
	}
	assert.Greater(t, checked, 10, "links were found")
}

// The README links the documentation pages.
func TestREADMELinksTheDocs(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	for _, page := range []string{"docs/filters.md", "docs/api.md", "docs/architecture.md", "api/openapi.yaml"} {
		assert.Contains(t, string(raw), "]("+page+")", page)
	}
}
