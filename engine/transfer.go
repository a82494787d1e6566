package engine

// Transfer sessions of the device API (TRANSFER_START, TRANSFER_CHUNK, TRANSFER_COMPLETE). The payload
// of an update is its install list's binaries concatenated in install order; it is cut into chunks of
// the session's chunk size, numbered from 1. The session is persisted, so a restarted server and a
// reconnecting device continue where they were: the next chunk served is the lowest unacknowledged one.
//
// Key layout (next to engine/store.go's):
//
//	core/xfer/<vin>/<updateID>   xferRec (JSON): the parts with their sha256, chunk size, the bitmap of
//	                             acknowledged chunks, chunks served and bytes sent, finalized
//	core/await/<vin>/<updateID>  the chunk whose ack a transport such as RVI waits for (resend.go)

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"sota/errs"
	"sota/store"
	"sota/wire"
)

const pXfer = "core/xfer/"

func xferKey(vin, id string) []byte { return []byte(pXfer + vin + "/" + id) }

// TransferPart and Transfer describe an update's payload as TRANSFER_START announces it (package wire).
type (
	TransferPart = wire.TransferPart
	Transfer     = wire.Transfer
)

// TransferState is a session's progress: what was acknowledged and what was sent.
type TransferState struct {
	Transfer
	Acked     int   `json:"acked"`     // acknowledged chunks
	Served    int   `json:"served"`    // chunks served, retransmissions included
	BytesSent int64 `json:"bytesSent"` // payload bytes sent (chunks and Range downloads)
	Finalized bool  `json:"finalized"`
}

// Chunk is one chunk of a payload (package wire).
type Chunk = wire.Chunk

type xferRec struct {
	TransferState
	Bits []byte `json:"bits"` // bit i-1 set: chunk i acknowledged
}

func (r *xferRec) acked(i int) bool { return r.Bits[(i-1)/8]&(1<<((i-1)%8)) != 0 }

// firstGap is the lowest unacknowledged chunk, 0 when every chunk is acknowledged.
func (r *xferRec) firstGap() int {
	for b, v := range r.Bits {
		if v == 0xff {
			continue
		}
		for k := 0; k < 8; k++ {
			i := b*8 + k + 1
			if i > r.ChunksCount {
				return 0
			}
			if v&(1<<k) == 0 {
				return i
			}
		}
	}
	return 0
}

// missing lists the unacknowledged chunks, at most max of them.
func (r *xferRec) missing(max int) []int {
	out := []int{}
	for i := 1; i <= r.ChunksCount && len(out) < max; i++ {
		if !r.acked(i) {
			out = append(out, i)
		}
	}
	return out
}

func errNoTransfer() error {
	return errs.New(errs.Conflict, "transfer_not_started", "The transfer of this update has not been started")
}

func (s *Service) loadXfer(t store.Txn, vin, id string) (*xferRec, error) {
	v, err := t.Get(xferKey(vin, id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoTransfer()
	}
	if err != nil {
		return nil, err
	}
	var r xferRec
	if err := decode(v, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// deviceUpdate reads one vehicle's update for the device API: 404 missing_update for a malformed id
// or another vehicle's update.
func (s *Service) deviceUpdate(t store.Txn, vin, id string) (*updRec, Update, error) {
	if !validUUID(id) {
		return nil, Update{}, errMissingUpdate()
	}
	rec, err := s.loadUpdate(t, vin, id)
	if err != nil {
		return nil, Update{}, err
	}
	return rec, s.view(t, vin, id, rec), nil
}

// errNotActive refuses a call about a final update: 409 update_canceled for a canceled one (an
// operator may cancel an update in flight; the device learns it this way), else update_not_active.
func errNotActive(u Update) error {
	if u.Status == Canceled {
		return errUpdateCanceled(u)
	}
	return errInactive(u)
}

func errInactive(u Update) error {
	return errs.New(errs.Conflict, "update_not_active", "%s failed: the update is %s", updateName(u), u.Status)
}

// updateName is "<name>-<version>" of the update's package, as the device messages say it.
func updateName(u Update) string {
	if u.PackageID == nil {
		return "packages"
	}
	return u.PackageID.Name + "-" + u.PackageID.Version
}

// bundleSums caches the sha256 of concatenated payloads by the sha256 of their parts (content
// addressed, so valid for any store).
var bundleSums sync.Map

func (s *Service) bundleSum(parts []TransferPart) (string, error) {
	var key strings.Builder
	for _, p := range parts {
		key.WriteString(p.SHA256)
	}
	if v, ok := bundleSums.Load(key.String()); ok {
		return v.(string), nil
	}
	h := sha256.New()
	var size int64
	for _, p := range parts {
		size += p.Size
	}
	if _, err := io.Copy(h, io.NewSectionReader(s.bundleReader(parts), 0, size)); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	bundleSums.Store(key.String(), sum)
	return sum, nil
}

// StartTransfer is TRANSFER_START: it opens (or, for an update in flight, reopens) the persisted
// transfer session of the vehicle's update with chunks of chunkSize bytes (a reopened session keeps
// its own), and moves a pending update to in flight. 404 missing_update; 409 update_not_active for an
// update that is finished, failed or canceled; 409 not_an_install for a get-all-packages request; 409
// missing_binary when a package of the install list has no uploaded binary.
func (s *Service) StartTransfer(vin, id string, chunkSize int) (Transfer, error) {
	if chunkSize <= 0 {
		return Transfer{}, fmt.Errorf("engine: chunk size %d", chunkSize)
	}
	var parts []TransferPart
	var existing *Transfer
	err := s.db.View(func(t store.Txn) error {
		parts, existing = nil, nil
		_, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if u.Kind != KindInstall {
			return errs.New(errs.Conflict, "not_an_install", "This update asks for the installed packages; answer with PUT /installed")
		}
		if !u.Status.Active() {
			return errNotActive(u)
		}
		if x, err := s.loadXfer(t, vin, id); err == nil {
			existing = &x.Transfer
			return nil
		} else if !errs.Is(err, "transfer_not_started") {
			return err
		}
		for _, p := range u.Install {
			b, ok, err := s.binary(t, p)
			if err != nil {
				return err
			}
			if !ok {
				return errs.New(errs.Conflict, "missing_binary", "No binary uploaded for package %s", p)
			}
			parts = append(parts, TransferPart{ID: p, Size: b.Size, SHA256: b.SHA256})
		}
		return nil
	})
	if err != nil || existing != nil {
		if existing != nil {
			return *existing, nil
		}
		return Transfer{}, err
	}
	sum, err := s.bundleSum(parts)
	if err != nil {
		return Transfer{}, err
	}
	var size int64
	for _, p := range parts {
		size += p.Size
	}
	count := int((size + int64(chunkSize) - 1) / int64(chunkSize))
	rec := xferRec{TransferState: TransferState{Transfer: Transfer{UpdateID: id, ChunkSize: chunkSize, ChunksCount: count,
		Size: size, SHA256: sum, Packages: parts}}, Bits: make([]byte, (count+7)/8)}
	var out Transfer
	err = s.update(func(t store.Txn) error {
		if x, err := s.loadXfer(t, vin, id); err == nil { // a concurrent start won
			out = x.Transfer
			return nil
		}
		urec, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if !u.Status.Active() {
			return errNotActive(u)
		}
		if urec.Status == Pending {
			if err := s.transition(t, vin, id, urec, InFlight, nil, "", s.now()); err != nil {
				return err
			}
		}
		out = rec.Transfer
		return t.Set(xferKey(vin, id), encode(&rec))
	})
	return out, err
}

// TransferStatus returns a session's progress; 409 transfer_not_started without one.
func (s *Service) TransferStatus(vin, id string) (TransferState, error) {
	var st TransferState
	err := s.db.View(func(t store.Txn) error {
		if _, _, err := s.deviceUpdate(t, vin, id); err != nil {
			return err
		}
		x, err := s.loadXfer(t, vin, id)
		if err != nil {
			return err
		}
		st = x.TransferState
		return nil
	})
	return st, err
}

// NextChunk is TRANSFER_CHUNK E1-E2: the lowest-numbered unacknowledged chunk of the session; ok is
// false when every chunk is acknowledged. The bytes count against the vehicle's data plan. An update
// that is finished, failed or canceled is 409 update_not_active (also for ChunkAt and OpenPayload).
func (s *Service) NextChunk(vin, id string) (c Chunk, ok bool, err error) {
	return s.serveChunk(vin, id, 0, 0)
}

// ChunkAt serves chunk index (1-based) of the session whether acknowledged or not; an index outside
// the payload is 404 missing_chunk. The bytes count against the vehicle's data plan.
func (s *Service) ChunkAt(vin, id string, index int) (Chunk, error) {
	c, _, err := s.serveChunk(vin, id, index, 0)
	return c, err
}

// serveChunk serves chunk index, or with index 0 the lowest unacknowledged one; await > 0 also
// records, in the same transaction, that the chunk's ack is due within await (resend.go).
func (s *Service) serveChunk(vin, id string, index int, await time.Duration) (c Chunk, ok bool, err error) {
	err = s.update(func(t store.Txn) error {
		c, ok = Chunk{}, false
		_, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if !u.Status.Active() { // finished, failed or canceled: nothing more is sent
			return errNotActive(u)
		}
		x, err := s.loadXfer(t, vin, id)
		if err != nil {
			return err
		}
		i := index
		if i == 0 {
			if i = x.firstGap(); i == 0 {
				if await > 0 { // every chunk acknowledged: nothing is awaited any more
					return t.Delete(awaitKey(vin, id))
				}
				return nil
			}
		} else if i < 1 || i > x.ChunksCount {
			return errs.New(errs.NotFound, "missing_chunk", "Chunk %d does not exist: the payload has chunks 1 to %d", i, x.ChunksCount)
		}
		data, err := s.readChunk(&x.Transfer, i)
		if err != nil {
			return err
		}
		x.Served++
		x.BytesSent += int64(len(data))
		if _, err := s.addTraffic(t, vin, int64(len(data)), s.now(), false); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		c, ok = Chunk{Index: i, Data: data, SHA256: hex.EncodeToString(sum[:])}, true
		if await > 0 {
			if err := t.Set(awaitKey(vin, id), encodeAwait(awaitRec{Index: i, Due: s.now().Add(await).UnixNano()})); err != nil {
				return err
			}
		}
		return t.Set(xferKey(vin, id), encode(x))
	})
	return c, ok, err
}

func (s *Service) readChunk(tr *Transfer, i int) ([]byte, error) {
	off := int64(i-1) * int64(tr.ChunkSize)
	n := min(int64(tr.ChunkSize), tr.Size-off)
	buf := make([]byte, n)
	if _, err := s.bundleReader(tr.Packages).ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, fmt.Errorf("engine: reading chunk %d of %s: %w", i, tr.UpdateID, err)
	}
	return buf, nil
}

// AckChunks is TRANSFER_CHUNK E6: the chunks are marked acknowledged (again: harmless). It returns the
// lowest unacknowledged chunk, 0 when none is left. An index outside the payload is 400 and changes
// nothing.
func (s *Service) AckChunks(vin, id string, chunks []int) (next int, err error) {
	err = s.update(func(t store.Txn) error {
		_, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if u.Status == Canceled {
			return errUpdateCanceled(u)
		}
		x, err := s.loadXfer(t, vin, id)
		if err != nil {
			return err
		}
		changed := false
		for _, i := range chunks {
			if i < 1 || i > x.ChunksCount {
				return errs.InvalidEntity("chunk %d is out of range: the payload has chunks 1 to %d", i, x.ChunksCount)
			}
			if !x.acked(i) {
				x.Bits[(i-1)/8] |= 1 << ((i - 1) % 8)
				x.Acked++
				changed = true
			}
		}
		next = x.firstGap()
		if !changed {
			return nil
		}
		return t.Set(xferKey(vin, id), encode(x))
	})
	return next, err
}

// MaxMissingListed bounds the "missing" list of an incomplete download.
const MaxMissingListed = 1000

// FinalizeTransfer is TRANSFER_COMPLETE: the device says it holds count chunks whose whole has the
// given sha256. Unacknowledged chunks are 400 incomplete_download "Incomplete Download" with the
// missing chunk numbers; a different count or hash is 400. It returns "Download of <name>-<version>
// complete".
func (s *Service) FinalizeTransfer(vin, id string, count int, sum string) (string, error) {
	var msg string
	err := s.update(func(t store.Txn) error {
		_, u, err := s.deviceUpdate(t, vin, id)
		if err != nil {
			return err
		}
		if u.Status == Canceled {
			return errUpdateCanceled(u)
		}
		x, err := s.loadXfer(t, vin, id)
		if err != nil {
			return err
		}
		if miss := x.missing(MaxMissingListed); len(miss) > 0 {
			return errs.New(errs.Invalid, "incomplete_download", "Incomplete Download: %d of %d chunks are not acknowledged", x.ChunksCount-x.Acked, x.ChunksCount).With("missing", miss)
		}
		if count != x.ChunksCount {
			return errs.New(errs.Invalid, "incomplete_download", "Incomplete Download: the payload has %d chunks, not %d", x.ChunksCount, count).With("missing", []int{})
		}
		if !strings.EqualFold(sum, x.SHA256) {
			return errs.New(errs.Invalid, "checksum_mismatch", "Checksum mismatch: the payload has sha256 %s, not %q", x.SHA256, sum)
		}
		msg = "Download of " + updateName(u) + " complete"
		if x.Finalized {
			return nil
		}
		x.Finalized = true
		return t.Set(xferKey(vin, id), encode(x))
	})
	return msg, err
}

// Payload is an open transfer payload: read it with ReadAt or as an io.ReadSeeker; Close releases its
// files.
type Payload struct {
	*io.SectionReader
	files []store.BlobReader
}

// Close closes the payload's files.
func (p *Payload) Close() error {
	for _, f := range p.files {
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// OpenPayload opens the whole payload of a started transfer for a Range download, with its
// description. Call AddSent with the bytes actually sent, and Close.
func (s *Service) OpenPayload(vin, id string) (*Payload, Transfer, error) {
	var u Update
	err := s.db.View(func(t store.Txn) (err error) {
		_, u, err = s.deviceUpdate(t, vin, id)
		return err
	})
	if err != nil {
		return nil, Transfer{}, err
	}
	if !u.Status.Active() {
		return nil, Transfer{}, errNotActive(u)
	}
	st, err := s.TransferStatus(vin, id)
	if err != nil {
		return nil, Transfer{}, err
	}
	b := s.bundleReader(st.Packages)
	b.files = make([]store.BlobReader, len(st.Packages))
	for i, p := range st.Packages {
		if b.files[i], err = s.openBlob(p.SHA256); err != nil {
			(&Payload{files: b.files}).Close()
			return nil, Transfer{}, fmt.Errorf("engine: payload of %s: %w", id, err)
		}
	}
	return &Payload{SectionReader: io.NewSectionReader(b, 0, st.Size), files: b.files}, st.Transfer, nil
}

// AddSent counts bytes of a payload download against the session and the vehicle's data plan.
func (s *Service) AddSent(vin, id string, n int64) error {
	if n <= 0 {
		return nil
	}
	return s.update(func(t store.Txn) error {
		x, err := s.loadXfer(t, vin, id)
		if err != nil {
			return err
		}
		x.BytesSent += n
		if _, err := s.addTraffic(t, vin, n, s.now(), false); err != nil {
			return err
		}
		return t.Set(xferKey(vin, id), encode(x))
	})
}

// bundleReader reads the concatenation of the parts' blobs.
func (s *Service) bundleReader(parts []TransferPart) bundle {
	return bundle{s: s, parts: parts}
}

type bundle struct {
	s     *Service
	parts []TransferPart
	files []store.BlobReader // open blobs of the parts; nil: each read opens its blob
}

// ReadAt reads len(p) bytes at off across the parts' blobs.
func (b bundle) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	var start int64
	for i, part := range b.parts {
		end := start + part.Size
		if len(p) > n && off+int64(n) < end && part.Size > 0 {
			var f store.BlobReader
			if b.files != nil {
				f = b.files[i]
			} else {
				var err error
				if f, err = b.s.openBlob(part.SHA256); err != nil {
					return n, err
				}
				defer f.Close()
			}
			pos := off + int64(n) - start
			want := min(int64(len(p)-n), part.Size-pos)
			k, err := f.ReadAt(p[n:n+int(want)], pos)
			n += k
			if err != nil && !(errors.Is(err, io.EOF) && int64(k) == want) {
				return n, err
			}
		}
		start = end
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// transferBlobs marks the blobs of the sessions whose update is still pending or in flight: a package
// binary replaced during a transfer keeps its old bytes until the transfer ends.
func (s *Service) transferBlobs(t store.Txn, used map[string]bool) error {
	type ref struct {
		vin, id string
		parts   []TransferPart
	}
	var refs []ref
	err := t.Iterate([]byte(pXfer), func(k, v []byte) error {
		rest := strings.TrimPrefix(string(k), pXfer)
		vin, id, ok := strings.Cut(rest, "/")
		if !ok {
			return nil
		}
		var x xferRec
		if err := decode(v, &x); err != nil {
			return err
		}
		refs = append(refs, ref{vin, id, x.Packages})
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range refs {
		rec, err := s.loadUpdate(t, r.vin, r.id)
		if errs.Is(err, "missing_update") {
			continue
		}
		if err != nil {
			return err
		}
		if rec.Status.Active() {
			for _, p := range r.parts {
				used[p.SHA256] = true
			}
		}
	}
	return nil
}
