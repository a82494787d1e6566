package signing_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"sota/engine"
	"sota/errs"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/signing"
	"sota/store"
)

// env is the real store, resolver and engine in a temporary directory, with a KEYS directory from
// signing.Init and a clock the test moves.
type env struct {
	t    *testing.T
	dir  string
	keys string
	db   *store.DB
	res  *resolver.Service
	eng  *engine.Service
	skew atomic.Int64
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, dir: t.TempDir(), keys: t.TempDir()}
	require.NoError(t, signing.Init(e.keys, time.Now()))
	e.open()
	t.Cleanup(func() { e.db.Close() })
	return e
}

func (e *env) open() {
	var err error
	e.db, err = storetest.OpenDir(e.t, e.dir+"/db")
	require.NoError(e.t, err)
	e.res, err = resolver.New(e.db)
	require.NoError(e.t, err)
	e.eng, err = engine.New(e.db, e.res, engine.Options{DataDir: e.dir})
	require.NoError(e.t, err)
}

func (e *env) restart() {
	require.NoError(e.t, e.db.Close())
	e.open()
}

func (e *env) now() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }

func (e *env) signing(rootFile string) (*signing.Service, error) {
	return signing.New(e.db, e.eng, signing.Options{RootFile: rootFile, Now: e.now})
}

func meta[T metadata.Roles](t *testing.T, b []byte) *metadata.Metadata[T] {
	var m metadata.Metadata[T]
	_, err := m.FromBytes(b)
	require.NoError(t, err)
	return &m
}

func get(t *testing.T, s *signing.Service, file string) []byte {
	b, err := s.ImageMetadata(file)
	require.NoError(t, err)
	return b
}

// The first start refuses a repository it cannot serve and keeps nothing of it.
func TestBootstrapRefusals(t *testing.T) {
	e := newEnv(t)
	_, err := e.signing("")
	require.ErrorContains(t, err, "--tuf-root")

	cp := func(skip string, files ...string) string {
		d := t.TempDir()
		for _, f := range files {
			if f == skip {
				continue
			}
			b, err := os.ReadFile(filepath.Join(e.keys, f))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(d, f), b, 0o600))
		}
		return d
	}
	all := []string{"root.json", "targets.json", "snapshot_key.json", "timestamp_key.json"}
	_, err = e.signing(filepath.Join(cp("targets.json", all...), "root.json"))
	require.ErrorContains(t, err, "targets.json")

	// a snapshot key that is not the root's
	d := cp("snapshot_key.json", all...)
	k, err := signing.NewKey()
	require.NoError(t, err)
	require.NoError(t, signing.WriteKeyFile(filepath.Join(d, "snapshot_key.json"), k))
	_, err = e.signing(filepath.Join(d, "root.json"))
	require.ErrorContains(t, err, "not a key of the snapshot role")

	// a root signed by someone else
	other := t.TempDir()
	require.NoError(t, signing.Init(other, time.Now()))
	d = cp("root.json", all...)
	b, err := os.ReadFile(filepath.Join(other, "root.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(d, "root.json"), b, 0o644))
	_, err = e.signing(filepath.Join(d, "root.json"))
	require.Error(t, err)

	// nothing was kept: the right files still make the first start
	s, err := e.signing(filepath.Join(cp("", all...), "root.json"))
	require.NoError(t, err)
	require.EqualValues(t, 1, meta[metadata.RootType](t, get(t, s, "root.json")).Signed.Version)
}

// The timestamp is re-signed once less than half of its day is left, the snapshot once less than half
// of its week; each new timestamp names the current snapshot by version, length and hash. Versions
// and metadata survive a restart.
func TestRefreshAndRestart(t *testing.T) {
	e := newEnv(t)
	s, err := e.signing(filepath.Join(e.keys, "root.json"))
	require.NoError(t, err)
	signed, err := s.Refresh()
	require.NoError(t, err)
	require.False(t, signed, "nothing is due right after the first start")

	e.skew.Store(int64(13 * time.Hour))
	signed, err = s.Refresh()
	require.NoError(t, err)
	require.True(t, signed)
	ts := meta[metadata.TimestampType](t, get(t, s, "timestamp.json"))
	require.EqualValues(t, 2, ts.Signed.Version)
	require.EqualValues(t, 1, ts.Signed.Meta["snapshot.json"].Version, "the snapshot was not due")
	require.WithinDuration(t, e.now().Add(signing.TimestampExpiry), ts.Signed.Expires, 2*time.Second)

	e.skew.Store(int64(4 * 24 * time.Hour))
	signed, err = s.Refresh()
	require.NoError(t, err)
	require.True(t, signed)
	ts = meta[metadata.TimestampType](t, get(t, s, "timestamp.json"))
	require.EqualValues(t, 3, ts.Signed.Version)
	require.EqualValues(t, 2, ts.Signed.Meta["snapshot.json"].Version)
	snap := get(t, s, "2.snapshot.json")
	require.NoError(t, ts.Signed.Meta["snapshot.json"].VerifyLengthHashes(snap))
	require.Equal(t, snap, get(t, s, "snapshot.json"))
	get(t, s, "1.snapshot.json") // older versions stay served

	before := get(t, s, "timestamp.json")
	e.restart()
	s, err = e.signing("")
	require.NoError(t, err)
	require.Equal(t, before, get(t, s, "timestamp.json"))
	for _, f := range []string{"0.root.json", "2.root.json", "9.snapshot.json", "x.json", "1.timestamp.json", "targets"} {
		_, err := s.ImageMetadata(f)
		require.Truef(t, errs.Is(err, "missing_metadata"), "%s: %v", f, err)
	}
}

// The director signs a vehicle's metadata once per update; its version grows with every change, also
// across restarts, and it is re-signed when half of its lifetime is gone.
func TestDirectorVersions(t *testing.T) {
	e := newEnv(t)
	s, err := e.signing(filepath.Join(e.keys, "root.json"))
	require.NoError(t, err)
	const vin = "WDD00000000000001"
	require.NoError(t, e.res.PutVehicle(vin))
	_, err = e.res.CreateFilter("all", "TRUE")
	require.NoError(t, err)
	content := []byte("firmware bytes")
	id := resolver.PackageID{Name: "fw", Version: "1.0.0"}
	_, err = e.eng.UploadBinary(id, bytes.NewReader(content), engine.Upload{FileName: "fw.bin"})
	require.NoError(t, err)
	_, err = e.res.Associate(id, "all")
	require.NoError(t, err)

	targets := func() *metadata.Metadata[metadata.TargetsType] {
		b, err := s.DirectorMetadata(vin, "targets.json")
		require.NoError(t, err)
		return meta[metadata.TargetsType](t, b)
	}
	require.EqualValues(t, 1, targets().Signed.Version)
	require.Empty(t, targets().Signed.Targets, "no update yet")

	// queuing needs the binary in the signed targets
	_, err = e.eng.QueueUpdate(context.Background(), engine.NewRequest{PackageID: id})
	require.True(t, errs.Is(err, "unsigned_target"), "%v", err)
	k, err := signing.ReadKeyFile(filepath.Join(e.keys, "targets_key.json"))
	require.NoError(t, err)
	sum := sha256.Sum256(content)
	next, err := signing.SignTargets(get(t, s, "targets.json"), []signing.Target{{Name: "fw", Version: "1.0.0", FileName: "fw.bin", Length: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}}, time.Now().Add(time.Hour), k)
	require.NoError(t, err)
	_, err = s.UploadTargets(next)
	require.NoError(t, err)
	req, err := e.eng.QueueUpdate(context.Background(), engine.NewRequest{PackageID: id})
	require.NoError(t, err)

	tg := targets()
	require.EqualValues(t, 2, tg.Signed.Version)
	f := tg.Signed.Targets["fw/1.0.0/fw.bin"]
	require.NotNil(t, f, "%v", tg.Signed.Targets)
	require.NoError(t, f.VerifyLengthHashes(content))
	require.Contains(t, string(*f.Custom), `"vin":"`+vin+`"`)
	require.Contains(t, string(*f.Custom), `"installOrder":0`)
	require.EqualValues(t, 2, targets().Signed.Version, "signed once per update")

	// the update canceled: nothing to install, a new version; a restart continues the versions
	_, err = e.eng.Cancel(req.ID)
	require.NoError(t, err)
	require.EqualValues(t, 3, targets().Signed.Version)
	require.Empty(t, targets().Signed.Targets)
	e.restart()
	s, err = e.signing("")
	require.NoError(t, err)
	require.EqualValues(t, 3, targets().Signed.Version, "the stored signature is still fresh")
	e.skew.Store(int64(13 * time.Hour))
	require.EqualValues(t, 4, targets().Signed.Version, "re-signed past half of its lifetime")

	// the director's root signs its own metadata
	rb, err := s.DirectorMetadata(vin, "1.root.json")
	require.NoError(t, err)
	root := meta[metadata.RootType](t, rb)
	require.NoError(t, root.VerifyDelegate(metadata.TARGETS, targets()))
	_, err = s.DirectorMetadata(vin, "2.root.json")
	require.True(t, errs.Is(err, "missing_metadata"))
}

// A new root is refused unless it is the next version, signed by the current and its own root keys,
// keeps consistent snapshots and the server's online keys; nothing changes on a refusal.
func TestRootRotationRefusals(t *testing.T) {
	e := newEnv(t)
	s, err := e.signing(filepath.Join(e.keys, "root.json"))
	require.NoError(t, err)
	rootKey, err := signing.ReadKeyFile(filepath.Join(e.keys, "root_key.json"))
	require.NoError(t, err)
	cur := get(t, s, "root.json")
	mutate := func(f func(r *metadata.Metadata[metadata.RootType])) []byte {
		r := meta[metadata.RootType](t, cur)
		r.Signed.Version++
		f(r)
		r.ClearSignatures()
		signer, err := rootKey.Signer()
		require.NoError(t, err)
		_, err = r.Sign(signer)
		require.NoError(t, err)
		b, err := r.ToBytes(false)
		require.NoError(t, err)
		return b
	}
	for name, b := range map[string][]byte{
		"skips a version":         mutate(func(r *metadata.Metadata[metadata.RootType]) { r.Signed.Version++ }),
		"no consistent snapshots": mutate(func(r *metadata.Metadata[metadata.RootType]) { r.Signed.ConsistentSnapshot = false }),
		"drops the timestamp key": mutate(func(r *metadata.Metadata[metadata.RootType]) {
			k, _ := signing.NewKey()
			for _, id := range append([]string(nil), r.Signed.Roles[metadata.TIMESTAMP].KeyIDs...) {
				require.NoError(t, r.Signed.RevokeKey(id, metadata.TIMESTAMP))
			}
			require.NoError(t, r.Signed.AddKey(k.TUF(), metadata.TIMESTAMP))
		}),
		"expired": mutate(func(r *metadata.Metadata[metadata.RootType]) { r.Signed.Expires = time.Now().Add(-time.Hour) }),
		"garbage": []byte(`{"signed":{}}`),
	} {
		_, err := s.UploadRoot(b)
		require.Truef(t, errs.Is(err, "invalid_metadata"), "%s: %v", name, err)
	}
	require.Equal(t, cur, get(t, s, "root.json"))
	v, err := s.UploadRoot(mutate(func(*metadata.Metadata[metadata.RootType]) {}))
	require.NoError(t, err)
	require.EqualValues(t, 2, v)
	require.Equal(t, cur, get(t, s, "1.root.json"))
}

// Start runs the re-signing on its own: a timestamp past half of its lifetime is replaced within a few
// intervals, and stop waits for the loop to end.
func TestStartResignsTimestamp(t *testing.T) {
	e := newEnv(t)
	s, err := e.signing(filepath.Join(e.keys, "root.json"))
	require.NoError(t, err)
	stop := s.Start(10 * time.Millisecond)
	e.skew.Store(int64(20 * time.Hour))
	require.Eventually(t, func() bool {
		return meta[metadata.TimestampType](t, get(t, s, "timestamp.json")).Signed.Version >= 2
	}, 5*time.Second, 10*time.Millisecond)
	stop()
	v := meta[metadata.TimestampType](t, get(t, s, "timestamp.json")).Signed.Version
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, v, meta[metadata.TimestampType](t, get(t, s, "timestamp.json")).Signed.Version, "stopped")
	require.True(t, meta[metadata.TimestampType](t, get(t, s, "timestamp.json")).Signed.Expires.After(e.now().Add(signing.TimestampExpiry/2)))
}
