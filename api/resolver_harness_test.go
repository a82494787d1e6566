package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/errs"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

type storeTxn = store.Txn

func errsConflict(code, format string, args ...any) error {
	return errs.New(errs.Conflict, code, format, args...)
}

// fleetServer is the real server (api.New over the resolver over Badger in a temporary directory) on
// loopback. restart closes everything and opens it again on the same directory.
type fleetServer struct {
	t   *testing.T
	dir string
	db  *store.DB
	rs  *resolver.Service
	srv *httptest.Server
	// restarts counts the restarts so far (calls after one count as reads of data that survived).
	restarts int
}

func newFleetServer(t *testing.T) *fleetServer {
	fs := &fleetServer{t: t, dir: t.TempDir()}
	fs.open()
	t.Cleanup(fs.close)
	return fs
}

func (fs *fleetServer) open() {
	db, err := storetest.OpenDir(fs.t, fs.dir)
	require.NoError(fs.t, err)
	rs, err := resolver.New(db)
	require.NoError(fs.t, err)
	h, _ := newServer(fs.t, Config{AuthNone: true}, Deps{Auth: auth.New(db), Resolver: rs, Filters: rs})
	fs.db, fs.rs, fs.srv = db, rs, httptest.NewServer(recordContract(h, func() bool { return fs.restarts > 0 }))
}

func (fs *fleetServer) close() {
	if fs.srv != nil {
		fs.srv.Close()
		require.NoError(fs.t, fs.db.Close())
		fs.srv, fs.db, fs.rs = nil, nil, nil
	}
}

// restart closes the server and the store and opens both again: what was answered 2xx must survive.
func (fs *fleetServer) restart() {
	fs.t.Helper()
	fs.close()
	fs.restarts++
	fs.open()
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// code is the error code of an error body.
func (r response) code() string {
	var e struct{ Code string }
	json.Unmarshal(r.body, &e)
	return e.Code
}

func (r response) description() string {
	var e struct{ Description string }
	json.Unmarshal(r.body, &e)
	return e.Description
}

// decode decodes the body into v, which it zeroes first (json.Unmarshal would reuse slice elements).
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	require.NoErrorf(t, json.Unmarshal(r.body, v), "body %s", r.body)
}

// do sends a request; body is JSON-encoded unless it is a string (sent as is) or nil.
func (fs *fleetServer) do(method, path string, body any) response {
	fs.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(fs.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, fs.srv.URL+"/api/v1"+path, rd)
	require.NoError(fs.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := fs.srv.Client().Do(req)
	require.NoError(fs.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(fs.t, err)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request and requires the status (and, for errors, the code).
func (fs *fleetServer) must(status int, code, method, path string, body any) response {
	fs.t.Helper()
	r := fs.do(method, path, body)
	require.Equalf(fs.t, status, r.status, "%s %s: body %s", method, path, r.body)
	if code != "" {
		require.Equalf(fs.t, code, r.code(), "%s %s: body %s", method, path, r.body)
	}
	return r
}

// ok is must with 200 and no error code.
func (fs *fleetServer) ok(method, path string, body any) response {
	fs.t.Helper()
	return fs.must(http.StatusOK, "", method, path, body)
}

func (fs *fleetServer) getJSON(path string, v any) response {
	fs.t.Helper()
	r := fs.ok("GET", path, nil)
	r.decode(fs.t, v)
	return r
}

// Test VINs (valid: no I, O, Q).
const (
	vinA = "SAJNX5745SC000001"
	vinB = "SAJNX5745SC000002"
	vinC = "WDD12345678900003"
)
