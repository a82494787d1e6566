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
	"slices"
	"strings"
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
	defer os.Remove(spool.Name())
	defer spool.Close()

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
	res.ElapsedMs = float64(time.Since(start).Microseconds()) / 1000
	return res, err
}

// readImport validates every line and spools the vehicles, length-prefixed in the vehicle codec.
// It returns the part numbers seen (lower-cased -> as first written) and the number of vehicles.
func readImport(ctx context.Context, r io.Reader, spool io.Writer, progress ImportProgress) (map[string]string, int, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	bw := bufio.NewWriterSize(spool, 1<<20)
	seen := map[string]int{} // VIN -> line
	parts := map[string]string{}
	var problems []string
	fail := func(line int, format string, args ...any) {
		if len(problems) < maxImportErrors {
			problems = append(problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
		}
	}
	var lenBuf []byte
	n, line := 0, 0
	for {
		b, err := readLine(br)
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				fail(line, "longer than %d bytes", maxImportLine)
				if err := skipLine(br); err != nil && err != io.EOF {
					return nil, 0, err
				}
				continue
			}
			return nil, 0, err
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
		var v ImportVehicle
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			if e, ok := errs.As(err); ok {
				fail(line, "%s", e.Description)
			} else {
				fail(line, "%v", err)
			}
			continue
		}
		if dec.More() {
			fail(line, "one JSON object per line")
			continue
		}
		rec, err := importRecord(&v)
		if err != nil {
			e, _ := errs.As(err)
			fail(line, "%s", e.Description)
			continue
		}
		if first, dup := seen[v.VIN]; dup {
			fail(line, "VIN %s is already on line %d", v.VIN, first)
			continue
		}
		seen[v.VIN] = line
		for _, c := range rec.Components {
			if _, ok := parts[lower(c)]; !ok {
				parts[lower(c)] = c
			}
		}
		if len(problems) > 0 {
			continue // keep validating, stop spooling
		}
		enc := encodeVehicle(rec)
		lenBuf = binary.AppendUvarint(lenBuf[:0], uint64(len(enc)))
		bw.Write(lenBuf)
		if _, err := bw.Write(enc); err != nil {
			return nil, 0, err
		}
		n++
		if n%loadChunk == 0 {
			progress("reading", n)
		}
	}
	if len(problems) > 0 {
		return nil, 0, errs.InvalidEntity("Import refused, nothing was written: %s", strings.Join(problems, "; ")).With("errors", problems)
	}
	progress("reading", n)
	return parts, n, bw.Flush()
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
	// Existing vehicles keep their last-seen time and data plan; their old foreign markers go.
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
			r.LastSeen, r.DataPlan = old.LastSeen, old.DataPlan
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
