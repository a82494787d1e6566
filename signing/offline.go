package signing

// The release engineers' side, run offline by `sota tuf init|sign|rotate`: key generation, the first
// root, signing targets and rotating a key through a new root. The offline keys never reach the server.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Roles of the image repository and their key files in a KEYS directory.
var Roles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP}

// KeyFileName is the file of a role's key in a KEYS directory (root_key.json, …).
func KeyFileName(role string) string { return role + "_key.json" }

// OfflineExpiry is how long the first root and signed targets stay valid.
const OfflineExpiry = 365 * 24 * time.Hour

// Init makes the keys, the first root (version 1, consistent snapshots, every threshold 1, expiring in
// a year) and an empty targets version 1 signed with the targets key in dir, which must not hold any of
// those files yet. Key files are 0600.
func Init(dir string, now time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	names := []string{"root.json", "targets.json"}
	for _, r := range Roles {
		names = append(names, KeyFileName(r))
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return fmt.Errorf("%s already exists: refusing to overwrite keys", filepath.Join(dir, n))
		}
	}
	keys := map[string]KeyFile{}
	root := metadata.Root(now.UTC().Add(OfflineExpiry).Truncate(time.Second))
	for _, r := range Roles {
		k, err := NewKey()
		if err != nil {
			return err
		}
		keys[r] = k
		if err := root.Signed.AddKey(k.TUF(), r); err != nil {
			return err
		}
	}
	if err := sign(root, keys[metadata.ROOT]); err != nil {
		return err
	}
	targets := metadata.Targets(now.UTC().Add(OfflineExpiry).Truncate(time.Second))
	if err := sign(targets, keys[metadata.TARGETS]); err != nil {
		return err
	}
	for _, r := range Roles {
		if err := WriteKeyFile(filepath.Join(dir, KeyFileName(r)), keys[r]); err != nil {
			return err
		}
	}
	if err := writeMeta(filepath.Join(dir, "root.json"), root); err != nil {
		return err
	}
	return writeMeta(filepath.Join(dir, "targets.json"), targets)
}

func sign[T metadata.Roles](m *metadata.Metadata[T], keys ...KeyFile) error {
	for _, k := range keys {
		s, err := k.Signer()
		if err != nil {
			return err
		}
		if _, err := m.Sign(s); err != nil {
			return err
		}
	}
	return nil
}

func writeMeta[T metadata.Roles](path string, m *metadata.Metadata[T]) error {
	b, err := m.ToBytes(true)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Target is one file to list in the image targets: its target name is name/version/filename.
type Target struct {
	Name, Version, FileName string
	Length                  int64
	SHA256                  string // hex
}

// TargetName is the image repository's name of a package version's file.
func TargetName(name, version, fileName string) string { return name + "/" + version + "/" + fileName }

// SignTargets makes the next version of the current targets (signed JSON bytes) with the given files
// added (replacing a listed file of the same name), expiring at expires, signed with keys.
func SignTargets(current []byte, add []Target, expires time.Time, keys ...KeyFile) ([]byte, error) {
	var t metadata.Metadata[metadata.TargetsType]
	if _, err := t.FromBytes(current); err != nil {
		return nil, fmt.Errorf("current targets: %w", err)
	}
	if t.Signed.Targets == nil {
		t.Signed.Targets = map[string]*metadata.TargetFiles{}
	}
	for _, a := range add {
		h, err := hexBytes(a.SHA256)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Name, err)
		}
		n := TargetName(a.Name, a.Version, a.FileName)
		t.Signed.Targets[n] = &metadata.TargetFiles{Length: a.Length, Hashes: metadata.Hashes{"sha256": h}, Path: n}
	}
	t.Signed.Version++
	t.Signed.Expires = expires.UTC().Truncate(time.Second)
	t.ClearSignatures()
	if err := sign(&t, keys...); err != nil {
		return nil, err
	}
	return t.ToBytes(true)
}

// Rotation is the result of Rotate: the new root and the current targets re-signed under it.
type Rotation struct {
	Root, Targets []byte
	NewKey        KeyFile
}

// Rotate replaces the key of role (root or targets) by newKey in the next root version (signed by the
// old root keys and, for a root rotation, the new one as well), and re-signs the current targets with
// the targets keys of the new root (targetsKeys) so that the repository verifies under it at once.
func Rotate(currentRoot, currentTargets []byte, role string, oldRootKeys []KeyFile, newKey KeyFile, targetsKeys []KeyFile, now time.Time) (Rotation, error) {
	if role != metadata.ROOT && role != metadata.TARGETS {
		return Rotation{}, fmt.Errorf("only the offline roles root and targets rotate here, not %q", role)
	}
	var r metadata.Metadata[metadata.RootType]
	if _, err := r.FromBytes(currentRoot); err != nil {
		return Rotation{}, fmt.Errorf("current root: %w", err)
	}
	for _, id := range append([]string(nil), r.Signed.Roles[role].KeyIDs...) {
		if err := r.Signed.RevokeKey(id, role); err != nil {
			return Rotation{}, err
		}
	}
	if err := r.Signed.AddKey(newKey.TUF(), role); err != nil {
		return Rotation{}, err
	}
	r.Signed.Version++
	r.Signed.Expires = now.UTC().Add(OfflineExpiry).Truncate(time.Second)
	r.ClearSignatures()
	signers := oldRootKeys
	if role == metadata.ROOT {
		signers = append(append([]KeyFile(nil), oldRootKeys...), newKey)
	}
	if err := sign(&r, signers...); err != nil {
		return Rotation{}, err
	}
	root, err := r.ToBytes(true)
	if err != nil {
		return Rotation{}, err
	}
	out := Rotation{Root: root, NewKey: newKey}
	if role == metadata.TARGETS {
		targetsKeys = []KeyFile{newKey}
	}
	if out.Targets, err = SignTargets(currentTargets, nil, now.Add(OfflineExpiry), targetsKeys...); err != nil {
		return Rotation{}, err
	}
	return out, nil
}

// ListTargets returns the files of signed targets bytes, sorted by name.
func ListTargets(b []byte) ([]string, error) {
	var t metadata.Metadata[metadata.TargetsType]
	if _, err := t.FromBytes(b); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(t.Signed.Targets))
	for n := range t.Signed.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Version is the version of a signed metadata file of any role.
func Version(b []byte) (int64, error) {
	var m struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, err
	}
	if m.Signed.Version < 1 {
		return 0, errors.New("metadata has no version")
	}
	return m.Signed.Version, nil
}

// CheckTargets verifies signed targets bytes under a root (a threshold of its targets keys, not
// expired): what `sota tuf sign` requires of the targets a server gives it before building on them.
func CheckTargets(root, targets []byte, now time.Time) error {
	var r metadata.Metadata[metadata.RootType]
	if _, err := r.FromBytes(root); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	_, err := checkTargets(&r, targets, now)
	return err
}

// TargetsHave tells whether signed targets bytes list the file with this length and sha256 (hex).
func TargetsHave(targets []byte, name string, length int64, sha256Hex string) (listed, same bool, err error) {
	var t metadata.Metadata[metadata.TargetsType]
	if _, err := t.FromBytes(targets); err != nil {
		return false, false, err
	}
	f, ok := t.Signed.Targets[name]
	if !ok {
		return false, false, nil
	}
	h, err := hexBytes(sha256Hex)
	if err != nil {
		return true, false, err
	}
	return true, f.Length == length && string(f.Hashes["sha256"]) == string(h), nil
}
