package resolver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/errs"
	"sota/internal/storetest"
)

func openService(t *testing.T) *Service {
	db, err := storetest.OpenDir(t, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	s, err := New(db)
	require.NoError(t, err)
	return s
}

// importVIN is a valid VIN for line i.
func importVIN(i int) string { return fmt.Sprintf("SAJNX5745SC%06d", i) }

// Lines are decoded in parallel chunks but judged in order: problems are listed by line across
// chunks, and a repeated VIN names its first line even when the two are chunks apart.
func TestImportReportsProblemsInLineOrderAcrossChunks(t *testing.T) {
	s := openService(t)
	var b strings.Builder
	n := 3*importChunkLines + 17
	for i := 1; i <= n; i++ {
		switch i {
		case 5:
			b.WriteString(`{"vin":"BAD"}` + "\n")
		case 2*importChunkLines + 3:
			b.WriteString(`{"vin":"` + importVIN(7) + `"}` + "\n")
		case n:
			b.WriteString(`{"vin":` + "\n")
		default:
			b.WriteString(`{"vin":"` + importVIN(i) + `","components":["ECU1"]}` + "\n")
		}
	}
	_, err := s.Import(context.Background(), strings.NewReader(b.String()), nil)
	e, ok := errs.As(err)
	require.True(t, ok, "%v", err)
	problems := e.Details["errors"].([]string)
	require.Len(t, problems, 3)
	assert.True(t, strings.HasPrefix(problems[0], "line 5: Invalid VIN"), problems[0])
	assert.Equal(t, fmt.Sprintf("line %d: VIN %s is already on line 7", 2*importChunkLines+3, importVIN(7)), problems[1])
	assert.True(t, strings.HasPrefix(problems[2], fmt.Sprintf("line %d: ", n)), problems[2])
	assert.Zero(t, s.Index().Len(), "nothing was written")

}

func TestImportOfManyChunks(t *testing.T) {
	s := openService(t)
	var b bytes.Buffer
	n := 5*importChunkLines + 1
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"vin":"%s","packages":[{"name":"nav","version":"1.0.%d"}],"attributes":{"i":%d}}`+"\n\n", importVIN(i), i%3, i)
	}
	res, err := s.Import(context.Background(), &b, nil)
	require.NoError(t, err)
	assert.Equal(t, n, res.Vehicles)
	assert.Equal(t, n, s.Index().Len())
	attrs, err := s.VehicleAttributes(importVIN(n))
	require.NoError(t, err)
	assert.Equal(t, float64(n), attrs["i"].Num)
}

// failingReader fails after its data.
type failingReader struct{ r io.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset")
	}
	return n, err
}

func TestImportStopsOnReadErrorsAndCancellation(t *testing.T) {
	s := openService(t)
	var b strings.Builder
	for i := 1; i <= 3*importChunkLines; i++ {
		b.WriteString(`{"vin":"` + importVIN(i) + `"}` + "\n")
	}
	_, err := s.Import(context.Background(), failingReader{strings.NewReader(b.String())}, nil)
	assert.ErrorContains(t, err, "connection reset")
	assert.Zero(t, s.Index().Len())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Import(ctx, strings.NewReader(b.String()), nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, s.Index().Len())
}

// The spool file of an import is gone from the temporary directory while the import still runs (a
// killed process leaves nothing behind) and after it.
func TestImportLeavesNoSpoolFile(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	s := openService(t)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Import(context.Background(), pr, nil)
		done <- err
	}()
	_, err := io.WriteString(pw, `{"vin":"`+importVIN(1)+`"}`+"\n")
	require.NoError(t, err)
	entries, err := os.ReadDir(os.TempDir())
	require.NoError(t, err)
	assert.Empty(t, entries, "while the import reads")
	require.NoError(t, pw.Close())
	require.NoError(t, <-done)
	entries, err = os.ReadDir(os.TempDir())
	require.NoError(t, err)
	assert.Empty(t, entries, "after the import")
	assert.Equal(t, 1, s.Index().Len())
}
