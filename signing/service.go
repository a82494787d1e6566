// Package signing is signed update metadata (API.md "Signed update metadata"): the TUF image
// repository whose targets are signed offline by release engineers, with snapshot and timestamp signed
// online by the server, and the director, the server's per-vehicle signed statement of what the vehicle
// installs now (as Uptane does). Metadata is TUF 1.0 made and checked with go-tuf.
//
// Store keys (one transaction per change):
//
//	tuf/keys/{snapshot,timestamp,director}   the server's online keys (KeyFile JSON)
//	tuf/image/root/<%010d version>           every image root version (signed JSON as received)
//	tuf/image/targets/<%010d version>        every image targets version
//	tuf/image/snapshot/<%010d version>       every snapshot version
//	tuf/image/timestamp                      the current timestamp
//	tuf/director/root/<%010d version>        the director's root versions
//	tuf/director/vin/<VIN>                   the vehicle's current director metadata (dirRec)
package signing

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"sota/engine"
	"sota/errs"
	"sota/resolver"
	"sota/store"
)

// Lifetimes of the online metadata; each is re-signed when less than half of it is left.
const (
	TimestampExpiry    = 24 * time.Hour
	SnapshotExpiry     = 7 * 24 * time.Hour
	DirectorExpiry     = 24 * time.Hour
	DirectorRootExpiry = 5 * 365 * 24 * time.Hour
)

// Options configure a Service.
type Options struct {
	// RootFile is --tuf-root: the image root; its directory holds targets.json, snapshot_key.json and
	// timestamp_key.json. Read only at the first start (when the store has no image root).
	RootFile string
	// Now is the clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service is the image repository and the director over the store. Safe for concurrent use.
type Service struct {
	*state
	db *store.DB // a handle from With writes through store.DB.With
}

// With returns a handle on the same service whose first committing write also runs h in its
// transaction (the audit-log entry of the API call that makes the change); nil h returns s.
func (s *Service) With(h *store.Hook) *Service {
	if h == nil {
		return s
	}
	return &Service{state: s.state, db: s.db.With(h)}
}

// state is what every handle of one Service shares.
type state struct {
	eng *engine.Service
	now func() time.Time
	log *slog.Logger

	writeMu sync.Mutex // serialises changes of the image repository
	mu      sync.RWMutex
	img     image // current image repository, replaced whole under mu

	snapSigner, tsSigner, dirSigner signature.Signer
	snapID, tsID                    string
	dirRoot                         []byte // current director root
	dirRootVersion                  int64

	dirMu     sync.Mutex // serialises director signing
	dirCache  sync.Map   // vin -> *dirRec (cacheDirector)
	dirCacheN atomic.Int64
	binCache  sync.Map // packageKey -> signedBinary
}

// image is one state of the image repository.
type image struct {
	root         *metadata.Metadata[metadata.RootType]
	rootBytes    []byte
	targets      *metadata.Metadata[metadata.TargetsType]
	targetsBytes []byte
	snapshot     []byte
	snapVersion  int64
	snapExpires  time.Time
	timestamp    []byte
	tsVersion    int64
	tsExpires    time.Time
	signed       map[string]signedTarget // packageKey -> target
}

type signedTarget struct {
	name string
	file *metadata.TargetFiles
}

const (
	kKeys      = "tuf/keys/"
	pImgRoot   = "tuf/image/root/"
	pImgTarget = "tuf/image/targets/"
	pImgSnap   = "tuf/image/snapshot/"
	kImgTS     = "tuf/image/timestamp"
	pDirRoot   = "tuf/director/root/"
	pDirVIN    = "tuf/director/vin/"
)

func versionKey(prefix string, v int64) []byte { return fmt.Appendf(nil, "%s%010d", prefix, v) }

func packageKey(name, version string) string { return strings.ToLower(name) + "/" + version }

func errInvalid(format string, args ...any) error {
	return errs.New(errs.Invalid, "invalid_metadata", format, args...)
}

// New opens the signing service: it loads the repository from the store or, at the first start,
// from the directory of Options.RootFile, and makes the director's key and root.
func New(db *store.DB, eng *engine.Service, o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Service{db: db, state: &state{eng: eng, now: func() time.Time { return o.Now().UTC() }, log: o.Logger}}
	var have bool
	if err := db.View(func(t store.Txn) error {
		var err error
		have, err = t.Has([]byte(kKeys + metadata.TIMESTAMP))
		return err
	}); err != nil {
		return nil, err
	}
	if !have {
		if o.RootFile == "" {
			return nil, errors.New("signing is on but the store holds no image repository yet: give --tuf-root (the root.json made by `sota tuf init`) at the first start")
		}
		if err := s.bootstrap(o.RootFile); err != nil {
			return nil, fmt.Errorf("--tuf-root %s: %w", o.RootFile, err)
		}
	} else if o.RootFile != "" {
		s.log.Info("signing: the store already holds the image repository; --tuf-root is not read again", "file", o.RootFile)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if eng != nil {
		eng.SetSigning(s)
	}
	return s, nil
}

// bootstrap reads root.json, targets.json and the online keys next to rootFile, makes the director's
// key and root, signs the first snapshot and timestamp, and stores all of it in one transaction.
func (s *Service) bootstrap(rootFile string) error {
	dir := filepath.Dir(rootFile)
	for _, r := range []string{metadata.ROOT, metadata.TARGETS} {
		if k, err := ReadKeyFile(filepath.Join(dir, KeyFileName(r))); err == nil && k.HasPrivate() {
			s.log.Warn("signing: an OFFLINE private key lies next to --tuf-root; the server does not need it, keep it offline", "file", filepath.Join(dir, KeyFileName(r)))
		}
	}
	rootBytes, err := os.ReadFile(rootFile)
	if err != nil {
		return err
	}
	var root metadata.Metadata[metadata.RootType]
	if _, err := root.FromBytes(rootBytes); err != nil {
		return fmt.Errorf("not a root metadata file: %w", err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, &root); err != nil {
		return fmt.Errorf("root is not signed by a threshold of its own root keys: %w", err)
	}
	now := s.now()
	if root.Signed.IsExpired(now) {
		return fmt.Errorf("root expired at %s", root.Signed.Expires)
	}
	targetsBytes, err := os.ReadFile(filepath.Join(dir, "targets.json"))
	if err != nil {
		return err
	}
	if _, err := checkTargets(&root, targetsBytes, now); err != nil {
		return err
	}
	keys := map[string]KeyFile{}
	for _, r := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP} {
		k, err := ReadKeyFile(filepath.Join(dir, KeyFileName(r)))
		if err != nil {
			return err
		}
		if !k.HasPrivate() {
			return fmt.Errorf("%s holds no private key", KeyFileName(r))
		}
		if err := roleHasKey(&root, r, k.ID()); err != nil {
			return err
		}
		keys[r] = k
	}
	dk, err := NewKey()
	if err != nil {
		return err
	}
	keys["director"] = dk
	dirRoot := metadata.Root(now.Add(DirectorRootExpiry).Truncate(time.Second))
	dirRoot.Signed.ConsistentSnapshot = false
	for _, r := range Roles {
		if err := dirRoot.Signed.AddKey(dk.TUF(), r); err != nil {
			return err
		}
	}
	if err := sign(dirRoot, dk); err != nil {
		return err
	}
	dirRootBytes, err := dirRoot.ToBytes(false)
	if err != nil {
		return err
	}
	tv, _ := Version(targetsBytes)
	snapSigner, err := keys[metadata.SNAPSHOT].Signer()
	if err != nil {
		return err
	}
	tsSigner, err := keys[metadata.TIMESTAMP].Signer()
	if err != nil {
		return err
	}
	snap, err := signSnapshot(1, tv, targetsBytes, now, snapSigner)
	if err != nil {
		return err
	}
	ts, err := signTimestamp(1, 1, snap, now, tsSigner)
	if err != nil {
		return err
	}
	return s.db.Update(func(t store.Txn) error {
		for name, k := range keys {
			b, _ := json.Marshal(k)
			if err := t.Set([]byte(kKeys+name), b); err != nil {
				return err
			}
		}
		sets := []struct {
			k []byte
			v []byte
		}{
			{versionKey(pImgRoot, root.Signed.Version), rootBytes},
			{versionKey(pImgTarget, tv), targetsBytes},
			{versionKey(pImgSnap, 1), snap},
			{[]byte(kImgTS), ts},
			{versionKey(pDirRoot, 1), dirRootBytes},
		}
		for _, kv := range sets {
			if err := t.Set(kv.k, kv.v); err != nil {
				return err
			}
		}
		return nil
	})
}

func roleHasKey(root *metadata.Metadata[metadata.RootType], role, id string) error {
	r := root.Signed.Roles[role]
	if r == nil {
		return fmt.Errorf("root has no %s role", role)
	}
	for _, k := range r.KeyIDs {
		if k == id {
			if r.Threshold > 1 {
				return fmt.Errorf("the %s role of the root needs %d signatures; the server holds one key", role, r.Threshold)
			}
			return nil
		}
	}
	return fmt.Errorf("the server's %s key %s is not a key of the %s role in the root", role, id, role)
}

// checkTargets verifies signed targets bytes under root: type, a threshold of the targets keys, not
// expired, no delegations.
func checkTargets(root *metadata.Metadata[metadata.RootType], b []byte, now time.Time) (*metadata.Metadata[metadata.TargetsType], error) {
	var t metadata.Metadata[metadata.TargetsType]
	if _, err := t.FromBytes(b); err != nil {
		return nil, errInvalid("not a targets metadata file: %v", err)
	}
	if err := root.VerifyDelegate(metadata.TARGETS, &t); err != nil {
		return nil, errInvalid("targets are not signed by a threshold of the targets keys of root version %d: %v", root.Signed.Version, err)
	}
	if t.Signed.IsExpired(now) {
		return nil, errInvalid("targets version %d expired at %s", t.Signed.Version, t.Signed.Expires.Format(time.RFC3339))
	}
	if t.Signed.Delegations != nil {
		return nil, errInvalid("delegated targets roles are not supported")
	}
	return &t, nil
}

func signSnapshot(version, targetsVersion int64, targets []byte, now time.Time, k signature.Signer) ([]byte, error) {
	m := metadata.Snapshot(now.Add(SnapshotExpiry).Truncate(time.Second))
	m.Signed.Version = version
	m.Signed.Meta["targets.json"] = &metadata.MetaFiles{Version: targetsVersion, Length: int64(len(targets)), Hashes: sha256Of(targets)}
	if _, err := m.Sign(k); err != nil {
		return nil, err
	}
	return m.ToBytes(false)
}

func signTimestamp(version, snapVersion int64, snap []byte, now time.Time, k signature.Signer) ([]byte, error) {
	m := metadata.Timestamp(now.Add(TimestampExpiry).Truncate(time.Second))
	m.Signed.Version = version
	m.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: snapVersion, Length: int64(len(snap)), Hashes: sha256Of(snap)}
	if _, err := m.Sign(k); err != nil {
		return nil, err
	}
	return m.ToBytes(false)
}

func sha256Of(b []byte) metadata.Hashes {
	h := sha256.Sum256(b)
	return metadata.Hashes{"sha256": h[:]}
}

func hexBytes(s string) (metadata.HexBytes, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("sha256 %q is not 64 hex digits", s)
	}
	return b, nil
}

func lastVersion(t store.Txn, prefix string) ([]byte, int64, error) {
	var val []byte
	var ver int64
	err := t.Iterate([]byte(prefix), func(k, v []byte) error {
		n, err := strconv.ParseInt(string(k[len(prefix):]), 10, 64)
		if err != nil {
			return fmt.Errorf("signing: bad key %q", k)
		}
		ver, val = n, append(val[:0], v...)
		return nil
	})
	return val, ver, err
}

// load reads the online keys and the current repository state from the store.
func (s *Service) load() error {
	var img image
	keys := map[string]KeyFile{}
	err := s.db.View(func(t store.Txn) error {
		for _, n := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP, "director"} {
			v, err := t.Get([]byte(kKeys + n))
			if err != nil {
				return fmt.Errorf("signing: %s key: %w", n, err)
			}
			k, err := ParseKey(v)
			if err != nil {
				return fmt.Errorf("signing: %s key: %w", n, err)
			}
			keys[n] = k
		}
		var err error
		if img.rootBytes, _, err = lastVersion(t, pImgRoot); err != nil {
			return err
		}
		if img.targetsBytes, _, err = lastVersion(t, pImgTarget); err != nil {
			return err
		}
		if img.snapshot, _, err = lastVersion(t, pImgSnap); err != nil {
			return err
		}
		if img.timestamp, err = t.Get([]byte(kImgTS)); err != nil {
			return err
		}
		s.dirRoot, s.dirRootVersion, err = lastVersion(t, pDirRoot)
		return err
	})
	if err != nil {
		return err
	}
	if s.snapSigner, err = keys[metadata.SNAPSHOT].Signer(); err != nil {
		return err
	}
	if s.tsSigner, err = keys[metadata.TIMESTAMP].Signer(); err != nil {
		return err
	}
	if s.dirSigner, err = keys["director"].Signer(); err != nil {
		return err
	}
	s.snapID, s.tsID = keys[metadata.SNAPSHOT].ID(), keys[metadata.TIMESTAMP].ID()
	if err := img.parse(); err != nil {
		return err
	}
	s.mu.Lock()
	s.img = img
	s.mu.Unlock()
	return nil
}

// parse fills the parsed fields of img from its bytes.
func (img *image) parse() error {
	img.root = &metadata.Metadata[metadata.RootType]{}
	if _, err := img.root.FromBytes(img.rootBytes); err != nil {
		return fmt.Errorf("signing: stored root: %w", err)
	}
	img.targets = &metadata.Metadata[metadata.TargetsType]{}
	if _, err := img.targets.FromBytes(img.targetsBytes); err != nil {
		return fmt.Errorf("signing: stored targets: %w", err)
	}
	var snap metadata.Metadata[metadata.SnapshotType]
	if _, err := snap.FromBytes(img.snapshot); err != nil {
		return fmt.Errorf("signing: stored snapshot: %w", err)
	}
	img.snapVersion, img.snapExpires = snap.Signed.Version, snap.Signed.Expires
	var ts metadata.Metadata[metadata.TimestampType]
	if _, err := ts.FromBytes(img.timestamp); err != nil {
		return fmt.Errorf("signing: stored timestamp: %w", err)
	}
	img.tsVersion, img.tsExpires = ts.Signed.Version, ts.Signed.Expires
	img.signed = map[string]signedTarget{}
	for name, f := range img.targets.Signed.Targets {
		parts := strings.Split(name, "/")
		if len(parts) == 3 {
			img.signed[packageKey(parts[0], parts[1])] = signedTarget{name: name, file: f}
		}
	}
	return nil
}

func (s *Service) current() image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.img
}

// ImageMetadata answers GET /api/v1/tuf/image/:file: root.json, timestamp.json, snapshot.json,
// targets.json and the versioned N.root.json, N.snapshot.json, N.targets.json.
func (s *Service) ImageMetadata(file string) ([]byte, error) {
	img := s.current()
	notFound := errs.New(errs.NotFound, "missing_metadata", "No metadata file %s in the image repository", file)
	switch file {
	case "root.json":
		return img.rootBytes, nil
	case "timestamp.json":
		return img.timestamp, nil
	case "snapshot.json":
		return img.snapshot, nil
	case "targets.json":
		return img.targetsBytes, nil
	}
	vs, role, ok := strings.Cut(strings.TrimSuffix(file, ".json"), ".")
	v, err := strconv.ParseInt(vs, 10, 64)
	if !ok || err != nil || v < 1 || !strings.HasSuffix(file, ".json") {
		return nil, notFound
	}
	var prefix string
	switch role {
	case metadata.ROOT:
		prefix = pImgRoot
	case metadata.SNAPSHOT:
		prefix = pImgSnap
	case metadata.TARGETS:
		prefix = pImgTarget
	default:
		return nil, notFound
	}
	var b []byte
	err = s.db.View(func(t store.Txn) error {
		b, err = t.Get(versionKey(prefix, v))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	return b, err
}

// TargetFile opens the binary of an image target for GET /api/v1/tuf/image/targets/:name/:version/:file,
// where file is the target's file name or "<sha256 hex>.<file name>" (consistent snapshots). The bytes
// are the blob store's: a client checks them against the signed targets.
func (s *Service) TargetFile(name, version, file string) (store.BlobReader, engine.Binary, error) {
	img := s.current()
	notFound := errs.New(errs.NotFound, "missing_target", "No target %s/%s/%s in the signed image targets", name, version, file)
	st, ok := img.signed[packageKey(name, version)]
	if !ok {
		return nil, engine.Binary{}, notFound
	}
	base := st.name[strings.LastIndexByte(st.name, '/')+1:]
	if file != base && file != hex.EncodeToString(st.file.Hashes["sha256"])+"."+base {
		return nil, engine.Binary{}, notFound
	}
	return s.eng.OpenBinary(resolver.PackageID{Name: name, Version: version})
}

// UploadTargets is POST /api/v1/tuf/image/targets: the new signed targets are accepted only when signed
// by a threshold of the targets keys of the current root, their version is the current one + 1, they
// have not expired and every target names an uploaded binary (name/version/file name) with the same
// length and hashes; else 400 invalid_metadata naming the reason and nothing changes. A new snapshot
// and timestamp are signed and stored with them in one transaction.
func (s *Service) UploadTargets(b []byte) (version int64, err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	img := s.current()
	now := s.now()
	t, err := checkTargets(img.root, b, now)
	if err != nil {
		return 0, err
	}
	if want := img.targets.Signed.Version + 1; t.Signed.Version != want {
		return 0, errInvalid("targets version %d: the next version must be %d", t.Signed.Version, want)
	}
	names := make([]string, 0, len(t.Signed.Targets))
	for n := range t.Signed.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := s.checkTarget(img, n, t.Signed.Targets[n]); err != nil {
			return 0, err
		}
	}
	next := img
	next.targets, next.targetsBytes = t, b
	if err := s.publish(&next, now, true); err != nil {
		return 0, err
	}
	s.log.Info("signing: image targets published", "version", t.Signed.Version, "targets", len(names))
	return t.Signed.Version, nil
}

// checkTarget checks one target of uploaded targets against the uploaded binary it names.
func (s *Service) checkTarget(img image, name string, f *metadata.TargetFiles) error {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return errInvalid("target %q: names must be <package name>/<version>/<file name>", name)
	}
	id := resolver.PackageID{Name: parts[0], Version: parts[1]}
	b, ok, err := s.eng.Binary(id)
	if err != nil {
		return err
	}
	if !ok {
		return errInvalid("target %q: no binary is uploaded for package %s", name, id)
	}
	if b.Name != id.Name {
		return errInvalid("target %q: the package is named %s", name, b.Name)
	}
	if parts[2] != b.FileName {
		return errInvalid("target %q: the binary of %s was uploaded as file %q", name, id, b.FileName)
	}
	if f.Length != b.Size {
		return errInvalid("target %q: length %d, the uploaded binary has %d bytes", name, f.Length, b.Size)
	}
	sum, ok := f.Hashes["sha256"]
	if !ok {
		return errInvalid("target %q: a sha256 hash is required", name)
	}
	if hex.EncodeToString(sum) != b.SHA256 {
		return errInvalid("target %q: sha256 %x, the uploaded binary has %s", name, []byte(sum), b.SHA256)
	}
	var others []string
	for alg := range f.Hashes {
		switch alg {
		case "sha256":
		case "sha512":
			others = append(others, alg)
		default:
			return errInvalid("target %q: unsupported hash algorithm %q (sha256, sha512)", name, alg)
		}
	}
	if prev, ok := img.targets.Signed.Targets[name]; ok && prev.Equal(*f) {
		return nil // unchanged since the current version, checked then
	}
	for _, alg := range others {
		fh, _, err := s.eng.OpenBinary(id)
		if err != nil {
			return err
		}
		var h hash.Hash = sha512.New()
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return err
		}
		if !bytes.Equal(h.Sum(nil), f.Hashes[alg]) {
			return errInvalid("target %q: %s does not match the uploaded binary", name, alg)
		}
	}
	return nil
}

// publish signs the next snapshot (when the targets changed or it nears expiry) and timestamp of next,
// stores them (and new targets) in one transaction and makes next current.
func (s *Service) publish(next *image, now time.Time, newTargets bool) error {
	snapChanged := newTargets || next.snapExpires.Sub(now) < SnapshotExpiry/2
	if snapChanged {
		snap, err := signSnapshot(next.snapVersion+1, next.targets.Signed.Version, next.targetsBytes, now, s.snapSigner)
		if err != nil {
			return err
		}
		next.snapshot = snap
		next.snapVersion++
	}
	ts, err := signTimestamp(next.tsVersion+1, next.snapVersion, next.snapshot, now, s.tsSigner)
	if err != nil {
		return err
	}
	next.timestamp = ts
	next.tsVersion++
	if err := next.parse(); err != nil {
		return err
	}
	err = s.db.Update(func(t store.Txn) error {
		if newTargets {
			if err := t.Set(versionKey(pImgTarget, next.targets.Signed.Version), next.targetsBytes); err != nil {
				return err
			}
		}
		if snapChanged {
			if err := t.Set(versionKey(pImgSnap, next.snapVersion), next.snapshot); err != nil {
				return err
			}
		}
		return t.Set([]byte(kImgTS), next.timestamp)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.img = *next
	s.mu.Unlock()
	return nil
}

// UploadRoot is POST /api/v1/tuf/image/root (key rotation): the new root is accepted only as the current
// version + 1, signed by a threshold of the current root's root keys and of its own, not expired, and
// keeping the server's snapshot and timestamp keys; else 400 invalid_metadata.
func (s *Service) UploadRoot(b []byte) (int64, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	img := s.current()
	var root metadata.Metadata[metadata.RootType]
	if _, err := root.FromBytes(b); err != nil {
		return 0, errInvalid("not a root metadata file: %v", err)
	}
	if want := img.root.Signed.Version + 1; root.Signed.Version != want {
		return 0, errInvalid("root version %d: the next version must be %d", root.Signed.Version, want)
	}
	tm, err := trustedmetadata.New(img.rootBytes)
	if err != nil {
		return 0, err
	}
	if _, err := tm.UpdateRoot(b); err != nil {
		return 0, errInvalid("root version %d is not signed by a threshold of the root keys of version %d and of its own: %v", root.Signed.Version, img.root.Signed.Version, err)
	}
	now := s.now()
	if root.Signed.IsExpired(now) {
		return 0, errInvalid("root version %d expired at %s", root.Signed.Version, root.Signed.Expires.Format(time.RFC3339))
	}
	if !root.Signed.ConsistentSnapshot {
		return 0, errInvalid("the image repository serves consistent snapshots: consistent_snapshot must stay true")
	}
	if err := roleHasKey(&root, metadata.SNAPSHOT, s.snapID); err != nil {
		return 0, errInvalid("%v", err)
	}
	if err := roleHasKey(&root, metadata.TIMESTAMP, s.tsID); err != nil {
		return 0, errInvalid("%v", err)
	}
	if err := s.db.Update(func(t store.Txn) error { return t.Set(versionKey(pImgRoot, root.Signed.Version), b) }); err != nil {
		return 0, err
	}
	next := img
	next.root, next.rootBytes = &root, b
	s.mu.Lock()
	s.img = next
	s.mu.Unlock()
	if err := root.VerifyDelegate(metadata.TARGETS, img.targets); err != nil {
		s.log.Warn("signing: the current targets do not verify under the new root; upload targets signed with its targets keys", "root", root.Signed.Version)
	}
	s.log.Info("signing: image root rotated", "version", root.Signed.Version)
	return root.Signed.Version, nil
}

// Refresh re-signs the timestamp (and the snapshot) when less than half of its lifetime is left; the
// scheduler calls it. It reports whether it signed anything.
func (s *Service) Refresh() (bool, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	img := s.current()
	now := s.now()
	if img.tsExpires.Sub(now) >= TimestampExpiry/2 && img.snapExpires.Sub(now) >= SnapshotExpiry/2 {
		return false, nil
	}
	if err := s.publish(&img, now, false); err != nil {
		return false, err
	}
	return true, nil
}

// Start runs Refresh every interval until the returned stop is called.
func (s *Service) Start(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if ok, err := s.Refresh(); err != nil {
					s.log.Error("signing: re-signing the timestamp", "err", err)
				} else if ok {
					s.log.Debug("signing: timestamp re-signed")
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

// VerifyInstall is the engine's check on queue and launch (signing on): every package must have a
// binary listed in the signed image targets with identical length and hashes, else 409
// unsigned_target naming them.
func (s *Service) VerifyInstall(ids []resolver.PackageID) error {
	img := s.current()
	var bad []string
	for _, id := range ids {
		b, ok, err := s.eng.Binary(id)
		if err != nil {
			return err
		}
		st, signed := img.signed[packageKey(id.Name, id.Version)]
		if !ok || !signed || st.file.Length != b.Size || hex.EncodeToString(st.file.Hashes["sha256"]) != b.SHA256 {
			bad = append(bad, id.String())
		}
	}
	if len(bad) > 0 {
		return errs.New(errs.Conflict, "unsigned_target", "Not in the signed image targets with identical length and hashes: %s", strings.Join(bad, ", ")).With("targets", bad)
	}
	return nil
}

// CheckReplace is the engine's check before a binary upload: a binary in the signed targets cannot be
// replaced (409 signed_target); publish a new version instead.
func (s *Service) CheckReplace(id resolver.PackageID) error {
	img := s.current()
	if st, ok := img.signed[packageKey(id.Name, id.Version)]; ok {
		return errs.New(errs.Conflict, "signed_target", "The binary of %s is in the signed image targets (%s) and cannot be replaced: publish a new version", id, st.name)
	}
	return nil
}
