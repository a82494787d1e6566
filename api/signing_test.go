package api

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/signing"
)

// withSigning turns signing on for deps (data directory dir): a fresh offline repository from
// `sota tuf init` in a temporary KEYS directory.
func withSigning(tb testing.TB, d Deps) Deps {
	tb.Helper()
	keys := tb.TempDir()
	require.NoError(tb, signing.Init(keys, time.Now()))
	sig, err := signing.New(d.DB, d.Engine, signing.Options{RootFile: filepath.Join(keys, "root.json")})
	require.NoError(tb, err)
	d.Signing = sig
	return d
}
