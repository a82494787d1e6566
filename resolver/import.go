package resolver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"sota/dsl"
	"sota/errs"
	"sota/store"
)

// ImportVehicle is one line of a fleet import (JSON lines): a vehicle with its installed packages,
// components and attributes. Packages the server does not know are kept as foreign; part numbers
// it does not know are registered (without a description).
type ImportVehicle struct {
	VIN        string      `json:"vin"`
	Packages   []PackageID `json:"packages"`
	Components []string    `json:"components"`
	Attributes Attributes  `json:"attributes"`
}

// ImportResult counts what an import did.
type ImportResult struct {
	Vehicles          int     `json:"vehicles"`          // imported (created or replaced)
	Created           int     `json:"created"`           // of those, new VINs
	ComponentsCreated int     `json:"componentsCreated"` // part numbers registered by the import
	ForeignPackages   int     `json:"foreignPackages"`   // installed packages the server does not know
	ElapsedMs         float64 `json:"elapsedMs"`
}

// ImportProgress reports how far an import is: the phase ("reading" or "writing") and the number of
// vehicles done in it.
type ImportProgress func(phase string, vehicles int)

// Import limits.
const (
	maxImportLine       = 1 << 20 // bytes of one JSON line
	maxImportErrors     = 20      // errors listed when an import is refused
	maxImportPackages   = 10000   // per vehicle
	maxImportComponents = 1000    // per vehicle
)

// Import reads vehicles as JSON lines from r and stores them, replacing the packages, components and
// attributes of VINs that exist (their last-seen time and data plan are kept).
//
// The whole input is read and validated first; a bad line (malformed JSON, an invalid VIN, package
// id, part number or attribute, a VIN given twice) refuses the import with 400 invalid_entity naming
// the lines, and nothing is written. Then the vehicles are written in batches of 65,536 with
// store.Batch, each batch durable before its vehicles enter the fleet index. Writing holds the
// resolver's write lock (other resolver writes wait; reads go on). Should the process stop during
// the writing phase, a prefix of the file is imported; importing the same file again completes it.
func (s *Service) Import(ctx context.Context, r io.Reader, progress ImportProgress) (ImportResult, error) {
	start := time.Now()
	if progress == nil {
		progress = func(string, int) {}
	}
	spool, err := os.CreateTemp("", "sota-import-*.bin")
	if err != nil {
		return ImportResult{}, err
	}
	defer spool.Close()
	// Unlinked at once where the system allows it (the open file stays usable), so that not even a
	// killed process leaves it behind.
	if os.Remove(spool.Name()) != nil {
		defer os.Remove(spool.Name())
	}

	parts, n, err := readImport(ctx, r, spool, progress)
	if err != nil {
		return ImportResult{}, err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return ImportResult{}, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	res, err := s.writeImport(ctx, bufio.NewReaderSize(spool, 1<<20), parts, n, progress)
	s.index.Optimize()
	res.ElapsedMs = float64(time.Since(start).Microseconds()) / 1000
	return res, err
}

// importChunkLines is how many lines one decoding job takes.
const importChunkLines = 1024

// importLine is one decoded and validated line of an import, or its problem.
type importLine struct {
	line    int
	vin     string
	parts   []string
	enc     []byte // the encoded record
	problem string
}

// importChunk is a run of lines, decoded by a worker and consumed in order.
type importChunk struct {
	lines []importLine
	raw   [][]byte // the lines' text, owned by the chunk
	err   error    // a read error after the lines
	done  chan struct{}
}

// readImport validates every line of r and spools the encoded records to spool (length-prefixed),
// returning the part numbers seen (lower-cased -> as given) and the number of vehicles. Lines are
// read in order, decoded and validated by one worker per CPU, and consumed in order, so that problems
// are reported by line and a repeated VIN names its first line.
func readImport(ctx context.Context, r io.Reader, spool io.Writer, progress ImportProgress) (map[string]string, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(1, runtime.GOMAXPROCS(0))
	work := make(chan *importChunk, workers)
	ordered := make(chan *importChunk, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				decodeChunk(c)
				close(c.done)
			}
		}()
	}
	go func() {
		defer close(ordered)
		defer close(work)
		produceChunks(ctx, r, work, ordered)
	}()
	defer func() {
		cancel()
		for range ordered { // let the producer and the workers finish
		}
		wg.Wait()
	}()

	bw := bufio.NewWriterSize(spool, 1<<20)
	seen := map[string]int{} // VIN -> line
	parts := map[string]string{}
	var problems []string
	var lenBuf []byte
	n := 0
	for c := range ordered {
		<-c.done
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		for i := range c.lines {
			l := &c.lines[i]
			if l.problem == "" {
				if first, dup := seen[l.vin]; dup {
					l.problem = fmt.Sprintf("VIN %s is already on line %d", l.vin, first)
				}
			}
			if l.problem != "" {
				if len(problems) < maxImportErrors {
					problems = append(problems, fmt.Sprintf("line %d: %s", l.line, l.problem))
				}
				continue
			}
			seen[l.vin] = l.line
			for _, p := range l.parts {
				if _, ok := parts[lower(p)]; !ok {
					parts[lower(p)] = p
				}
			}
			if len(problems) > 0 {
				continue // keep validating, stop spooling
			}
			lenBuf = binary.AppendUvarint(lenBuf[:0], uint64(len(l.enc)))
			bw.Write(lenBuf)
			if _, err := bw.Write(l.enc); err != nil {
				return nil, 0, err
			}
			n++
			if n%loadChunk == 0 {
				progress("reading", n)
			}
		}
		if c.err != nil {
			return nil, 0, c.err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if len(problems) > 0 {
		return nil, 0, errs.InvalidEntity("Import refused, nothing was written: %s", strings.Join(problems, "; ")).With("errors", problems)
	}
	progress("reading", n)
	return parts, n, bw.Flush()
}

// produceChunks reads r line by line into chunks, each sent to the workers and, in order, to the
// consumer. A line too long is a problem of its own; a read error ends the input.
func produceChunks(ctx context.Context, r io.Reader, work, ordered chan<- *importChunk) {
	br := bufio.NewReaderSize(r, 1<<20)
	newChunk := func() *importChunk {
		return &importChunk{lines: make([]importLine, 0, importChunkLines), done: make(chan struct{})}
	}
	c := newChunk()
	send := func() bool {
		select {
		case ordered <- c:
		case <-ctx.Done():
			return false
		}
		select {
		case work <- c:
		case <-ctx.Done():
			close(c.done)
			return false
		}
		c = newChunk()
		return true
	}
	line := 0
	for {
		b, err := readLine(br)
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			if !errors.Is(err, bufio.ErrBufferFull) {
				c.err = err
				break
			}
			c.lines = append(c.lines, importLine{line: line, problem: fmt.Sprintf("longer than %d bytes", maxImportLine)})
			c.raw = append(c.raw, nil)
			if err := skipLine(br); err != nil && err != io.EOF {
				c.err = err
				break
			}
		} else if b = bytes.TrimSpace(b); len(b) > 0 {
			c.lines = append(c.lines, importLine{line: line})
			c.raw = append(c.raw, bytes.Clone(b))
		}
		if len(c.lines) == importChunkLines && !send() {
			return
		}
	}
	send()
}

// decodeChunk decodes, validates and encodes the lines of a chunk.
func decodeChunk(c *importChunk) {
	for i := range c.lines {
		l := &c.lines[i]
		if l.problem != "" {
			continue
		}
		var v ImportVehicle
		dec := json.NewDecoder(bytes.NewReader(c.raw[i]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			if e, ok := errs.As(err); ok {
				l.problem = e.Description
			} else {
				l.problem = err.Error()
			}
			continue
		}
		if dec.More() {
			l.problem = "one JSON object per line"
			continue
		}
		rec, err := importRecord(&v)
		if err != nil {
			e, _ := errs.As(err)
			l.problem = e.Description
			continue
		}
		l.vin, l.parts, l.enc = rec.VIN, rec.Components, encodeVehicle(rec)
	}
	c.raw = nil
}

// readLine returns the next line without its newline; a line longer than the buffer is
// bufio.ErrBufferFull.
func readLine(br *bufio.Reader) ([]byte, error) {
	b, err := br.ReadSlice('\n')
	if err == io.EOF && len(b) > 0 {
		return b, nil
	}
	return b, err
}

func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

// importRecord validates one vehicle and returns it as a record: duplicates dropped, sorted.
func importRecord(v *ImportVehicle) (*vehicleRec, error) {
	if err := ValidVIN(v.VIN); err != nil {
		return nil, err
	}
	if len(v.Packages) > maxImportPackages {
		return nil, errs.InvalidEntity("more than %d packages", maxImportPackages)
	}
	if len(v.Components) > maxImportComponents {
		return nil, errs.InvalidEntity("more than %d components", maxImportComponents)
	}
	rec := &vehicleRec{VIN: v.VIN, Attrs: v.Attributes}
	for _, id := range v.Packages {
		if err := ValidPackageID(id); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(rec.Packages, func(p PackageID) bool { return samePackage(p, id) }) {
			rec.Packages = append(rec.Packages, id)
		}
	}
	for _, c := range v.Components {
		if err := ValidPartNumber(c); err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(rec.Components, func(p string) bool { return strings.EqualFold(p, c) }) {
			rec.Components = append(rec.Components, c)
		}
	}
	if len(rec.Attrs) == 0 {
		rec.Attrs = nil
	}
	return rec, nil
}

// writeImport writes the spooled vehicles in batches (write lock held).
func (s *Service) writeImport(ctx context.Context, spool *bufio.Reader, parts map[string]string, n int, progress ImportProgress) (ImportResult, error) {
	var res ImportResult
	var cat catalog
	known := map[string]string{} // lower-cased part number -> registered part number
	err := s.db.View(func(t store.Txn) (err error) {
		if cat, err = loadCatalog(t); err != nil {
			return err
		}
		return iterateJSON(t, []byte(pComponent), func(c *Component) error {
			known[lower(c.PartNumber)] = c.PartNumber
			return nil
		})
	})
	if err != nil {
		return res, err
	}
	// Register the new part numbers first, so that no vehicle refers to an unknown one.
	var newParts []string
	for lp, p := range parts {
		if _, ok := known[lp]; !ok {
			newParts = append(newParts, p)
			known[lp] = p
		}
	}
	slices.Sort(newParts)
	if len(newParts) > 0 {
		b := s.db.NewBatch()
		for _, p := range newParts {
			cb, _ := json.Marshal(Component{PartNumber: p})
			if err := b.Set(componentKey(p), cb); err != nil {
				b.Cancel()
				return res, err
			}
		}
		if err := b.Flush(); err != nil {
			return res, err
		}
		res.ComponentsCreated = len(newParts)
	}

	recs := make([]*vehicleRec, 0, loadChunk)
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		created, foreign, err := s.writeImportChunk(recs, cat)
		if err != nil {
			return err
		}
		res.Created += created
		res.ForeignPackages += foreign
		res.Vehicles += len(recs)
		progress("writing", res.Vehicles)
		recs = recs[:0]
		return nil
	}
	for i := 0; i < n; i++ {
		size, err := binary.ReadUvarint(spool)
		if err != nil {
			return res, internal("import spool: %v", err)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(spool, b); err != nil {
			return res, internal("import spool: %v", err)
		}
		rec, err := decodeVehicle(b)
		if err != nil {
			return res, err
		}
		for j, c := range rec.Components {
			rec.Components[j] = known[lower(c)]
		}
		slices.SortFunc(rec.Components, func(a, b string) int { return strings.Compare(lower(a), lower(b)) })
		for j, p := range rec.Packages {
			if canon, ok := cat[pkgPart(p)]; ok {
				rec.Packages[j] = canon
			}
		}
		slices.SortFunc(rec.Packages, comparePackageIDs)
		recs = append(recs, rec)
		if len(recs) == loadChunk {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	return res, flush()
}

// writeImportChunk writes one batch of vehicles durably, then puts them in the index.
func (s *Service) writeImportChunk(recs []*vehicleRec, cat catalog) (created, foreign int, err error) {
	// Existing vehicles' old foreign markers go (their last contact and data plan are the engine's
	// records, which an import does not touch).
	var existing []*vehicleRec
	err = s.db.View(func(t store.Txn) error {
		for _, r := range recs {
			if _, ok := s.index.ID(r.VIN); !ok {
				created++
				continue
			}
			old, err := getVehicle(t, r.VIN)
			if errors.Is(err, store.ErrNotFound) {
				created++
				continue
			}
			if err != nil {
				return err
			}
			existing = append(existing, old)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	b := s.db.NewBatch()
	for _, old := range existing {
		for _, p := range old.Packages {
			if !cat.has(p) {
				if err := b.Delete(foreignKey(p, old.VIN)); err != nil {
					b.Cancel()
					return 0, 0, err
				}
			}
		}
	}
	dvs := make([]dsl.Vehicle, len(recs))
	for i, r := range recs {
		if err := b.Set(vehicleKey(r.VIN), encodeVehicle(r)); err != nil {
			b.Cancel()
			return 0, 0, err
		}
		for _, p := range r.Packages {
			if !cat.has(p) {
				foreign++
				if err := b.Set(foreignKey(p, r.VIN), nil); err != nil {
					b.Cancel()
					return 0, 0, err
				}
			}
		}
		dvs[i] = toDSL(r, cat.has)
	}
	if err := b.Flush(); err != nil {
		return 0, 0, err
	}
	s.index.PutMany(dvs)
	return created, foreign, nil
}
