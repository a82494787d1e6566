package version

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStringNamesVersionAndCommit(t *testing.T) {
	i := Info{Version: "v1.2.3", Commit: "0123456789abcdef0123", Time: "2026-12-06T06:28:48Z", Go: "go1.24.1"}
	assert.Equal(t, "sotad v1.2.3 commit 0123456789ab (2026-12-06T06:28:48Z) go1.24.1", i.String("sotad"))
	i.Modified = true
	assert.Equal(t, "sota v1.2.3 commit 0123456789ab+modified (2026-12-06T06:28:48Z) go1.24.1", i.String("sota"))
	assert.Equal(t, "sota (devel) commit unknown", Info{Version: "(devel)"}.String("sota"))
}

func TestLinkTimeVersionWins(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "v9.9.9"
	assert.Equal(t, "v9.9.9", Read().Version)
}
