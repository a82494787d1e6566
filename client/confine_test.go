package client

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/wire"
)

// Finding 4: a package named ".." made the device write outside its packages folder. The manager
// refuses every name, version or update id that is not one plain file name, and writes nothing.
func TestManagerConfinesEveryPathToItsFolder(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "device")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	payload := filepath.Join(root, "payload")
	require.NoError(t, os.WriteFile(payload, []byte("evil"), 0o600))
	m := &Manager{Dir: dir}
	for _, id := range []wire.PackageID{
		{Name: "..", Version: "1.0.0"}, {Name: ".", Version: "1.0.0"}, {Name: "nav", Version: ".."},
		{Name: "../../etc", Version: "1.0.0"}, {Name: `..\x`, Version: "1.0.0"}, {Name: "", Version: "1.0.0"},
	} {
		tr := wire.Transfer{UpdateID: "u1", Size: 4, Packages: []wire.TransferPart{{ID: id, Size: 4}}}
		err := m.install(payload, tr)
		require.Errorf(t, err, "%+v", id)
		assert.Contains(t, err.Error(), "refusing")
		assert.Equal(t, "", m.PackagePath(id))
	}
	var outside []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && p != payload {
			outside = append(outside, p)
		}
		return err
	}))
	assert.Empty(t, outside, "nothing was written")

	_, err := m.download(t.Context(), wire.Transfer{UpdateID: "../../escape", Size: 1})
	require.Error(t, err)
	_, statErr := os.Stat(filepath.Join(root, "escape.part"))
	assert.True(t, os.IsNotExist(statErr))

	ok, err := confined(dir, "packages", "nav", "1.0.0")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "packages", "nav", "1.0.0"), ok)
}
