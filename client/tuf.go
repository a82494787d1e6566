package client

// Verification of signed update metadata (API.md "Signed update metadata") with go-tuf's client
// workflow: the image repository from the image root the vehicle was given (root chain, timestamp,
// snapshot, targets, expiry, rollback), the director's metadata for this vehicle, the two compared, and
// the downloaded bytes checked against them. The metadata seen is kept under Dir/tuf/{image,director}, so
// that the highest versions survive restarts (rollback and freeze protection).

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"sota/wire"
)

// ErrUnverified wraps every reason signed metadata did not verify.
var ErrUnverified = errors.New("signed metadata does not verify")

// fetcher is go-tuf's download hook over the client's HTTP client, with the device token for the
// director's metadata.
type fetcher struct {
	ctx   context.Context
	hc    *http.Client
	token string
}

func (f fetcher) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: u}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s is longer than %d bytes", u, maxLength)}
	}
	return b, nil
}

// transient is a network failure while fetching metadata.
type transient struct{ error }

func (t transient) Unwrap() error { return t.error }

// SignedTarget is a file the director and the image repository both vouch for, in install order.
type SignedTarget struct {
	Name   string
	Length int64
	Hashes metadata.Hashes
}

// trustedRoot is the newest of the root stored in dir and the given one (nil: none given).
func trustedRoot(dir string, given []byte) ([]byte, error) {
	stored, err := os.ReadFile(filepath.Join(dir, "root.json"))
	if errors.Is(err, os.ErrNotExist) {
		return given, nil
	}
	if err != nil {
		return nil, err
	}
	if given == nil {
		return stored, nil
	}
	var a, b metadata.Metadata[metadata.RootType]
	if _, err := a.FromBytes(stored); err != nil {
		return given, nil
	}
	if _, err := b.FromBytes(given); err != nil {
		return nil, fmt.Errorf("the given root: %w", err)
	}
	if b.Signed.Version > a.Signed.Version {
		return given, nil
	}
	return stored, nil
}

func (m *Manager) refresh(ctx context.Context, dir, remote string, root []byte, token string) (*updater.Updater, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg, err := config.New(remote, root)
	if err != nil {
		return nil, err
	}
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = filepath.Join(dir, "targets")
	cfg.Fetcher = fetcher{ctx: ctx, hc: m.Client.http(), token: token}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := up.Refresh(); err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, transient{err} // the network, not the metadata: try again later
		}
		return nil, err
	}
	return up, nil
}

// VerifyMetadata checks the signed metadata of an update before it is downloaded: it refreshes the
// image repository and the director's metadata for this vehicle (TUF client workflow), requires the
// director's targets to be exactly the files of updateID, one for each package in install order, each
// in the image targets with the same length and hashes. It returns them in install order; every
// failure wraps ErrUnverified.
func (m *Manager) VerifyMetadata(ctx context.Context, updateID string, packages []PackageRef) ([]SignedTarget, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrUnverified, fmt.Sprintf(format, args...))
	}
	base := strings.TrimRight(m.Client.Server, "/") + "/api/v1"
	imgDir := filepath.Join(m.Dir, "tuf", "image")
	root, err := trustedRoot(imgDir, m.ImageRoot)
	if err != nil {
		return nil, err
	}
	img, err := m.refresh(ctx, imgDir, base+"/tuf/image", root, "")
	if errors.As(err, new(transient)) {
		return nil, err
	}
	if err != nil {
		return nil, fail("image repository: %v", err)
	}
	dirDir := filepath.Join(m.Dir, "tuf", "director")
	remote := base + "/vehicle_updates/" + url.PathEscape(m.Client.VIN) + "/tuf"
	droot, err := trustedRoot(dirDir, nil)
	if err != nil {
		return nil, err
	}
	if droot == nil { // first contact: the director's root is taken on first use, then pinned
		if droot, err = (fetcher{ctx: ctx, hc: m.Client.http(), token: m.Client.Token}).DownloadFile(remote+"/1.root.json", 512000, 0); err != nil {
			if errors.As(err, new(*url.Error)) {
				return nil, transient{err}
			}
			return nil, fail("director root: %v", err)
		}
	}
	dir, err := m.refresh(ctx, dirDir, remote, droot, m.Client.Token)
	if errors.As(err, new(transient)) {
		return nil, err
	}
	if err != nil {
		return nil, fail("director: %v", err)
	}
	type ordered struct {
		SignedTarget
		order int
	}
	var list []ordered
	for name, f := range dir.GetTopLevelTargets() {
		var c wire.DirectorCustom
		if f.Custom == nil || json.Unmarshal(*f.Custom, &c) != nil || c.InstallOrder == nil {
			return nil, fail("director target %s has no custom vin, updateId and installOrder", name)
		}
		if c.VIN != m.Client.VIN || c.UpdateID != updateID {
			return nil, fail("director target %s is for vehicle %s update %s, not %s update %s", name, c.VIN, c.UpdateID, m.Client.VIN, updateID)
		}
		it, err := img.GetTargetInfo(name)
		if err != nil {
			return nil, fail("director target %s is not in the image repository: %v", name, err)
		}
		if !it.Equal(*f) {
			return nil, fail("director target %s differs from the image repository's (length %d/%d or hashes)", name, f.Length, it.Length)
		}
		list = append(list, ordered{SignedTarget{Name: name, Length: it.Length, Hashes: it.Hashes}, *c.InstallOrder})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].order < list[j].order })
	if len(list) != len(packages) {
		return nil, fail("the director lists %d files for update %s, the update installs %d packages", len(list), updateID, len(packages))
	}
	out := make([]SignedTarget, len(list))
	for i, p := range packages {
		if !strings.HasPrefix(list[i].Name, p.Name+"/"+p.Version+"/") {
			return nil, fail("install step %d is %s %s, the director lists %s", i+1, p.Name, p.Version, list[i].Name)
		}
		if p.Size != list[i].Length {
			return nil, fail("package %s %s is %d bytes, the signed targets say %d", p.Name, p.Version, p.Size, list[i].Length)
		}
		out[i] = list[i].SignedTarget
	}
	return out, nil
}

// PackageRef is one package of an update's payload in install order.
type PackageRef struct {
	Name, Version string
	Size          int64
}

// VerifyPayload checks the downloaded payload (the packages concatenated in install order) against
// the signed targets: each part's length and every hash.
func VerifyPayload(path string, targets []SignedTarget) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	for _, t := range targets {
		for alg, want := range t.Hashes {
			var h hash.Hash
			switch alg {
			case "sha256":
				h = sha256.New()
			case "sha512":
				h = sha512.New()
			default:
				return fmt.Errorf("%w: target %s: unsupported hash %s", ErrUnverified, t.Name, alg)
			}
			n, err := io.Copy(h, io.NewSectionReader(f, off, t.Length))
			if err != nil {
				return err
			}
			if n != t.Length || string(h.Sum(nil)) != string(want) {
				return fmt.Errorf("%w: the downloaded bytes of %s do not match the signed targets (%s)", ErrUnverified, t.Name, alg)
			}
		}
		off += t.Length
	}
	if st, err := f.Stat(); err == nil && st.Size() != off {
		return fmt.Errorf("%w: the payload has %d bytes, the signed targets %d", ErrUnverified, st.Size(), off)
	}
	return nil
}
