package client

// The software loading manager: accepts (or declines) an update, downloads it chunk by chunk into a
// part file (each chunk stored before it is acknowledged, so a restarted device loses nothing the
// server counts as received), verifies it, "installs" it into a local directory and reports.
//
// Directory layout under Manager.Dir:
//
//	installed.json                 the installed packages [PackageId]
//	packages/<name>/<version>      an installed package's bytes
//	downloads/<updateId>.part      the payload being received

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"sota/wire"
)

// Progress is told how far a download is: done of total payload bytes.
type Progress func(updateID string, done, total int64)

// Manager is the software loading manager of one vehicle.
type Manager struct {
	Client *Client
	Dir    string
	// Decline makes the manager decline every update (reported as USER_DECLINED).
	Decline bool
	// Confirm asks the user about an update that requests confirmation (UPDATE_NOTIFICATION E3);
	// false declines it. Nil accepts.
	Confirm func(wire.UpdateAvailable) bool
	// Progress, when set, is called after each stored chunk.
	Progress Progress
	// PublicKey verifies wake-ups; nil: fetched from the server at the first wake-up.
	PublicKey ed25519.PublicKey
	// ImageRoot, when set, is the image repository's root.json the vehicle trusts (--tuf-root): every
	// update must then verify against the signed metadata of the image repository and the director
	// (tuf.go) or it is refused with VALIDATION_FAILED.
	ImageRoot []byte
	// Logf, when set, receives one line per step.
	Logf func(format string, args ...any)

	mu     sync.Mutex
	wakeup chan struct{}
}

// Outcome is what one update ended as.
type Outcome struct {
	UpdateID string
	Packages []wire.PackageID
	Code     int    // the reported result code
	Message  string // the server's answer to the report
}

func (m *Manager) logf(format string, args ...any) {
	if m.Logf != nil {
		m.Logf(format, args...)
	}
}

// Installed returns the packages installed in the directory.
func (m *Manager) Installed() ([]wire.PackageID, error) {
	b, err := os.ReadFile(filepath.Join(m.Dir, "installed.json"))
	if errors.Is(err, os.ErrNotExist) {
		return []wire.PackageID{}, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []wire.PackageID
	if err := json.Unmarshal(b, &ids); err != nil {
		return nil, fmt.Errorf("installed.json: %w", err)
	}
	return ids, nil
}

// PackagePath is where an installed package's bytes are ("" for a name or version that is not one
// plain file name).
func (m *Manager) PackagePath(id wire.PackageID) string {
	p, err := confined(m.Dir, "packages", id.Name, id.Version)
	if err != nil {
		return ""
	}
	return p
}

// confined joins names under dir, refusing any name that is not one plain file name (empty, . or ..,
// or holding a path separator), so that nothing a server sends makes the device write outside dir.
func confined(dir string, names ...string) (string, error) {
	for _, n := range names {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) || strings.ContainsRune(n, 0) {
			return "", fmt.Errorf("refusing %q as a file name from the server: it would leave %s", n, dir)
		}
	}
	return filepath.Join(append([]string{dir}, names...)...), nil
}

// RunOnce is DEV_CONNECT to UPDATE_NOTIFICATION and onwards: it handles every notification until the
// server has nothing more to do now, and returns what each update ended as.
func (m *Manager) RunOnce(ctx context.Context) ([]Outcome, error) {
	var out []Outcome
	for {
		n, ok, err := m.Client.Notification(ctx)
		if err != nil || !ok {
			return out, err
		}
		switch {
		case n.GetAllPackages != nil:
			ids, err := m.Installed()
			if err != nil {
				return out, err
			}
			if err := m.Client.Installed(ctx, ids); err != nil {
				return out, err
			}
			m.logf("answered get-all-packages with %d packages", len(ids))
		case n.UpdateAvailable != nil:
			o, err := m.handle(ctx, *n.UpdateAvailable)
			if err != nil {
				return out, err
			}
			out = append(out, o)
		default:
			return out, errors.New("empty notification")
		}
	}
}

func (m *Manager) handle(ctx context.Context, ua wire.UpdateAvailable) (Outcome, error) {
	o := Outcome{UpdateID: ua.UpdateID, Packages: ua.Packages}
	if m.Decline || (ua.RequestConfirmation && m.Confirm != nil && !m.Confirm(ua)) {
		m.logf("declining update %s", ua.UpdateID)
		return m.report(ctx, o, wire.ResultUserDeclined, "declined by the user")
	}
	tr, err := m.Client.Start(ctx, ua.UpdateID)
	if err != nil {
		return o, err
	}
	var signed []SignedTarget
	if m.ImageRoot != nil {
		refs := make([]PackageRef, len(tr.Packages))
		for i, p := range tr.Packages {
			refs[i] = PackageRef{Name: p.ID.Name, Version: p.ID.Version, Size: p.Size}
		}
		signed, err = m.VerifyMetadata(ctx, ua.UpdateID, refs)
		if errors.Is(err, ErrUnverified) {
			m.logf("update %s refused: %v", tr.UpdateID, err)
			return m.report(ctx, o, wire.ResultValidationFailed, err.Error())
		}
		if err != nil {
			return o, err
		}
	}
	path, err := m.download(ctx, tr)
	if err != nil {
		return o, err
	}
	if signed != nil {
		if err := VerifyPayload(path, signed); err != nil {
			m.logf("update %s refused: %v", tr.UpdateID, err)
			os.Remove(path)
			return m.report(ctx, o, wire.ResultValidationFailed, err.Error())
		}
	}
	if err := verify(path, tr); err != nil {
		m.logf("update %s: %v", tr.UpdateID, err)
		os.Remove(path)
		return m.report(ctx, o, wire.ResultValidationFailed, err.Error())
	}
	if err := m.install(path, tr); err != nil {
		return m.report(ctx, o, wire.ResultInstallFailed, err.Error())
	}
	os.Remove(path)
	return m.report(ctx, o, wire.ResultOK, "installed")
}

func (m *Manager) report(ctx context.Context, o Outcome, code int, text string) (Outcome, error) {
	o.Code = code
	res := []wire.OperationResult{{ID: o.UpdateID, ResultCode: code, ResultText: text}}
	msg, err := m.Client.Report(ctx, o.UpdateID, res)
	if IsCode(err, "already_reported") {
		// our report arrived but its answer was lost; the server keeps the first report
		return o, nil
	}
	o.Message = msg
	return o, err
}

// download fetches every unacknowledged chunk into the part file and finalizes.
func (m *Manager) download(ctx context.Context, tr wire.Transfer) (string, error) {
	dir := filepath.Join(m.Dir, "downloads")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path, err := confined(dir, tr.UpdateID+".part")
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := f.Truncate(tr.Size); err != nil {
		return "", err
	}
	for {
		ch, ok, err := m.Client.NextChunk(ctx, tr.UpdateID)
		if err != nil {
			return "", err
		}
		if ok {
			if err := m.store(ctx, f, tr, ch); err != nil {
				return "", err
			}
			continue
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return "", err
		}
		_, err = m.Client.Finalize(ctx, tr.UpdateID, tr.ChunksCount, sum)
		if IsCode(err, "incomplete_download") {
			continue // the server misses acks: fetch again
		}
		if IsCode(err, "checksum_mismatch") {
			return path, nil // verify reports VALIDATION_FAILED
		}
		return path, err
	}
}

// store writes a chunk at its place (TRANSFER_CHUNK E4) and acknowledges it (E5); a chunk whose
// sha256 does not match is not acknowledged, so the server sends it again.
func (m *Manager) store(ctx context.Context, f *os.File, tr wire.Transfer, ch wire.Chunk) error {
	if ch.Index < 1 || ch.Index > tr.ChunksCount {
		return fmt.Errorf("chunk %d outside 1..%d", ch.Index, tr.ChunksCount)
	}
	sum := sha256.Sum256(ch.Data)
	if hex.EncodeToString(sum[:]) != ch.SHA256 {
		m.logf("chunk %d of %s damaged; asking again", ch.Index, tr.UpdateID)
		return nil
	}
	off := int64(ch.Index-1) * int64(tr.ChunkSize)
	if _, err := f.WriteAt(ch.Data, off); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	next, err := m.Client.Ack(ctx, tr.UpdateID, ch.Index)
	if err != nil {
		return err
	}
	if m.Progress != nil {
		done := int64(tr.ChunksCount) * int64(tr.ChunkSize)
		if next > 0 {
			done = int64(next-1) * int64(tr.ChunkSize)
		}
		m.Progress(tr.UpdateID, min(done, tr.Size), tr.Size)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verify is INSTALL_SOFTWARE_UPDATE E1: the payload and each package match their sha256.
func verify(path string, tr wire.Transfer) error {
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	if sum != tr.SHA256 {
		return fmt.Errorf("payload sha256 %s, expected %s", sum, tr.SHA256)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	for _, p := range tr.Packages {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, off, p.Size)); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
			return fmt.Errorf("package %s: sha256 %s, expected %s", p.ID, got, p.SHA256)
		}
		off += p.Size
	}
	return nil
}

// install copies each package out of the payload into packages/<name>/<version> (written to a
// temporary file and renamed) and records it in installed.json, replacing other versions of the name.
func (m *Manager) install(path string, tr wire.Transfer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	for _, p := range tr.Packages {
		dst, err := confined(m.Dir, "packages", p.ID.Name, p.ID.Version)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		tmp := dst + ".tmp"
		out, err := os.Create(tmp)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, io.NewSectionReader(f, off, p.Size))
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
		off += p.Size
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids, err := m.Installed()
	if err != nil {
		return err
	}
	for _, p := range tr.Packages {
		kept := ids[:0]
		for _, id := range ids {
			if id.Name != p.ID.Name {
				kept = append(kept, id)
			}
		}
		ids = append(kept, p.ID)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].Name != ids[j].Name {
			return ids[i].Name < ids[j].Name
		}
		return ids[i].Version < ids[j].Version
	})
	b, _ := json.Marshal(ids)
	tmp := filepath.Join(m.Dir, "installed.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(m.Dir, "installed.json"))
}

// Wakeup is DEV_WAKEUP: a wake-up for this vehicle with a valid signature of the server's key asks Run
// to connect now; anything else is ignored (X1). It reports whether the wake-up was accepted.
func (m *Manager) Wakeup(ctx context.Context, w wire.Wakeup) bool {
	if w.VIN != m.Client.VIN {
		return false
	}
	m.mu.Lock()
	key := m.PublicKey
	m.mu.Unlock()
	if key == nil {
		k, err := m.Client.PublicKey(ctx)
		if err != nil {
			m.logf("wake-up ignored: %v", err)
			return false
		}
		m.mu.Lock()
		m.PublicKey, key = k, k
		m.mu.Unlock()
	}
	if !wire.VerifyWakeup(key, w) {
		m.logf("wake-up ignored: bad signature")
		return false
	}
	select {
	case m.wakeups() <- struct{}{}:
	default: // a wake-up is already waiting
	}
	return true
}

func (m *Manager) wakeups() chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wakeup == nil {
		m.wakeup = make(chan struct{}, 1)
	}
	return m.wakeup
}

// Run connects every interval and whenever a valid wake-up arrives, until ctx ends. A failed round
// (the network stayed down through the client's retries) is tried again at the next occasion.
func (m *Manager) Run(ctx context.Context, interval time.Duration) error {
	for {
		if _, err := m.RunOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.logf("connection failed: %v", err)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		case <-m.wakeups():
			t.Stop()
		}
	}
}
