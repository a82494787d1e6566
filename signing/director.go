package signing

// The director: per vehicle, TUF metadata (timestamp, snapshot, targets) signed with the server's
// online director key under the director's own root, whose targets list exactly the files of the
// vehicle's current update. Signed once per update (and again when less than half of
// DirectorExpiry is left), cached in memory and stored so that versions only grow across restarts.

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"sota/engine"
	"sota/errs"
	"sota/resolver"
	"sota/store"
	"sota/wire"
)

// dirRec is a vehicle's current director metadata.
type dirRec struct {
	Version   int64     `json:"version"`
	Digest    string    `json:"digest"` // the key of the targets it lists (currentTargets)
	Expires   time.Time `json:"expires"`
	Targets   []byte    `json:"targets"`
	Snapshot  []byte    `json:"snapshot"`
	Timestamp []byte    `json:"timestamp"`
}

// dirTarget is one file of a vehicle's current update.
type dirTarget struct {
	name string
	file metadata.TargetFiles
}

// DirectorMetadata answers GET /api/v1/vehicle_updates/:vin/tuf/:file: root.json and N.root.json (the
// director's root), timestamp.json, snapshot.json and targets.json for the vehicle.
func (s *Service) DirectorMetadata(vin, file string) ([]byte, error) {
	switch file {
	case "root.json":
		return s.dirRoot, nil
	case "timestamp.json", "snapshot.json", "targets.json":
		r, err := s.director(vin)
		if err != nil {
			return nil, err
		}
		switch file {
		case "timestamp.json":
			return r.Timestamp, nil
		case "snapshot.json":
			return r.Snapshot, nil
		}
		return r.Targets, nil
	}
	if v, ok := strings.CutSuffix(file, ".root.json"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil && n >= 1 && n <= s.dirRootVersion {
			var b []byte
			err := s.db.View(func(t store.Txn) error {
				b, err = t.Get(versionKey(pDirRoot, n))
				return err
			})
			if err == nil {
				return b, nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
	}
	return nil, errs.New(errs.NotFound, "missing_metadata", "No director metadata file %s", file)
}

// currentTargets lists the files of the vehicle's current update (the one its notification offers or
// it has in flight) and a key that changes whenever they do. The list is built only when build is set
// (to sign); the key alone decides whether the cached signature still holds.
func (s *Service) currentTargets(vin string, build bool) ([]dirTarget, string, error) {
	u, ok, _, err := s.eng.NextUpdate(vin)
	if err != nil {
		return nil, "", err
	}
	if !ok || u.Kind != engine.KindInstall {
		return nil, "", nil
	}
	bins, have, err := s.binaries(u.Install)
	if err != nil {
		return nil, "", err
	}
	var key strings.Builder
	key.WriteString(u.ID)
	var out []dirTarget
	for i, b := range bins {
		if !have[i] {
			continue // nothing to vouch for; the vehicle finds the file missing and refuses
		}
		name := TargetName(b.Name, b.Version, b.FileName)
		key.WriteString("|" + name + "|" + b.SHA256 + "|" + strconv.FormatInt(b.Size, 10))
		if !build {
			continue
		}
		sum, err := hexBytes(b.SHA256)
		if err != nil {
			return nil, "", err
		}
		c, _ := json.Marshal(wire.DirectorCustom{VIN: vin, UpdateID: u.ID, InstallOrder: &i})
		raw := json.RawMessage(c)
		out = append(out, dirTarget{name: name, file: metadata.TargetFiles{Length: b.Size, Hashes: metadata.Hashes{"sha256": sum}, Custom: &raw, Path: name}})
	}
	return out, key.String(), nil
}

// director returns the vehicle's current director metadata, signing a new version when its update
// changed or the signed one has less than half of its lifetime left.
func (s *Service) director(vin string) (*dirRec, error) {
	_, digest, err := s.currentTargets(vin, false)
	if err != nil {
		return nil, err
	}
	now := s.now()
	fresh := func(r *dirRec) bool { return r != nil && r.Digest == digest && r.Expires.Sub(now) > DirectorExpiry/2 }
	if c, ok := s.dirCache.Load(vin); ok && fresh(c.(*dirRec)) {
		return c.(*dirRec), nil
	}
	// not in memory (or stale there): the stored signature serves when it is still the current one
	var stored *dirRec
	if err := s.db.View(func(t store.Txn) error {
		v, err := t.Get([]byte(pDirVIN + vin))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		stored = &dirRec{}
		return json.Unmarshal(v, stored)
	}); err != nil {
		return nil, err
	}
	if fresh(stored) {
		s.cacheDirector(vin, stored)
		return stored, nil
	}
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	// under the lock, what is current now (it may have changed since the check above)
	targets, digest, err := s.currentTargets(vin, true)
	if err != nil {
		return nil, err
	}
	var rec *dirRec
	err = s.db.Update(func(t store.Txn) error {
		rec = nil
		var old dirRec
		v, err := t.Get([]byte(pDirVIN + vin))
		if err == nil {
			if err := json.Unmarshal(v, &old); err != nil {
				return err
			}
			if fresh(&old) {
				rec = &old
				return nil
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		next, err := s.signDirector(old.Version+1, targets, now)
		if err != nil {
			return err
		}
		next.Digest = digest
		b, err := json.Marshal(next)
		if err != nil {
			return err
		}
		rec = next
		return t.Set([]byte(pDirVIN+vin), b)
	})
	if err != nil {
		return nil, err
	}
	s.cacheDirector(vin, rec)
	return rec, nil
}

// maxDirCache bounds the vehicles whose director metadata is kept in memory (a few KiB each); past
// it the cache starts over, and vehicles read their stored signature again.
const maxDirCache = 20000

func (s *Service) cacheDirector(vin string, r *dirRec) {
	if _, loaded := s.dirCache.Swap(vin, r); loaded {
		return
	}
	if s.dirCacheN.Add(1) > maxDirCache {
		s.dirCache.Clear()
		s.dirCacheN.Store(0)
	}
}

// signDirector signs targets, snapshot and timestamp of one version of a vehicle's director metadata.
func (s *Service) signDirector(version int64, targets []dirTarget, now time.Time) (*dirRec, error) {
	exp := now.Add(DirectorExpiry).Truncate(time.Second)
	t := metadata.Targets(exp)
	t.Signed.Version = version
	for _, d := range targets {
		f := d.file
		t.Signed.Targets[d.name] = &f
	}
	if _, err := t.Sign(s.dirSigner); err != nil {
		return nil, err
	}
	tb, err := t.ToBytes(false)
	if err != nil {
		return nil, err
	}
	sn := metadata.Snapshot(exp)
	sn.Signed.Version = version
	sn.Signed.Meta["targets.json"] = &metadata.MetaFiles{Version: version, Length: int64(len(tb)), Hashes: sha256Of(tb)}
	if _, err := sn.Sign(s.dirSigner); err != nil {
		return nil, err
	}
	sb, err := sn.ToBytes(false)
	if err != nil {
		return nil, err
	}
	ts := metadata.Timestamp(exp)
	ts.Signed.Version = version
	ts.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: version, Length: int64(len(sb)), Hashes: sha256Of(sb)}
	if _, err := ts.Sign(s.dirSigner); err != nil {
		return nil, err
	}
	tsb, err := ts.ToBytes(false)
	if err != nil {
		return nil, err
	}
	return &dirRec{Version: version, Expires: exp, Targets: tb, Snapshot: sb, Timestamp: tsb}, nil
}

// signedBinary is a binary record that matched the signed targets of one targets version: while that
// version is current the record cannot change (an upload over a signed binary is refused).
type signedBinary struct {
	b              engine.Binary
	targetsVersion int64
}

// binaries returns the binary records of the packages, from the cache for those in the current signed
// targets and from the store for the others.
func (s *Service) binaries(ids []resolver.PackageID) ([]engine.Binary, []bool, error) {
	img := s.current()
	tv := img.targets.Signed.Version
	bins, have := make([]engine.Binary, len(ids)), make([]bool, len(ids))
	var miss []resolver.PackageID
	var at []int
	for i, id := range ids {
		if c, ok := s.binCache.Load(packageKey(id.Name, id.Version)); ok && c.(signedBinary).targetsVersion == tv {
			bins[i], have[i] = c.(signedBinary).b, true
			continue
		}
		miss, at = append(miss, id), append(at, i)
	}
	if len(miss) == 0 {
		return bins, have, nil
	}
	got, ok, err := s.eng.Binaries(miss)
	if err != nil {
		return nil, nil, err
	}
	for j, i := range at {
		bins[i], have[i] = got[j], ok[j]
		if !ok[j] {
			continue
		}
		k := packageKey(got[j].Name, got[j].Version)
		if st, signed := img.signed[k]; signed && st.file.Length == got[j].Size && hex.EncodeToString(st.file.Hashes["sha256"]) == got[j].SHA256 {
			s.binCache.Store(k, signedBinary{b: got[j], targetsVersion: tv})
		}
	}
	return bins, have, nil
}
