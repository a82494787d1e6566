package client_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"sota/api"
	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
	"sota/resolver"
	"sota/store"
)

// server is the real sotad stack (Badger store, resolver, engine, HTTP on loopback), restartable on
// the same data directory.
type server struct {
	t     testing.TB
	dir   string
	chunk int
	mu    sync.Mutex
	db    *store.DB
	eng   *engine.Service
	srv   *httptest.Server
}

func newServer(t testing.TB, chunk int) *server {
	s := &server{t: t, dir: t.TempDir(), chunk: chunk}
	s.open()
	t.Cleanup(s.close)
	return s
}

func (s *server) open() {
	db, err := storetest.OpenDir(s.t, s.dir+"/db")
	require.NoError(s.t, err)
	res, err := resolver.New(db)
	require.NoError(s.t, err)
	eng, err := engine.New(db, res, engine.Options{DataDir: s.dir})
	require.NoError(s.t, err)
	h, _, err := api.New(api.Config{AuthNone: true, ChunkSize: s.chunk}, api.Deps{Auth: auth.New(db), Resolver: res, Filters: res, Engine: eng})
	require.NoError(s.t, err)
	s.mu.Lock()
	s.db, s.eng, s.srv = db, eng, httptest.NewServer(h)
	s.mu.Unlock()
}

func (s *server) close() {
	s.mu.Lock()
	srv, db := s.srv, s.db
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close() // waits for the requests in progress
		require.NoError(s.t, db.Close())
	}
}

func (s *server) restart() { s.close(); s.open() }

// addr is the current listener address ("" while restarting).
func (s *server) addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.Listener.Addr().String()
}

func (s *server) url() string { return "http://" + s.addr() }

func (s *server) engine() *engine.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eng
}

// admin sends an admin call (auth is off) and decodes a 2xx answer into out.
func (s *server) admin(method, path string, body, out any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url()+"/api/v1"+path, rd)
	require.NoError(s.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Truef(s.t, resp.StatusCode/100 == 2, "%s %s: %d %s", method, path, resp.StatusCode, b)
	if out != nil {
		require.NoError(s.t, json.Unmarshal(b, out))
	}
}

func (s *server) upload(id resolver.PackageID, content []byte) {
	s.t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	f, err := w.CreateFormFile("file", "pkg.bin")
	require.NoError(s.t, err)
	f.Write(content)
	require.NoError(s.t, w.Close())
	req, err := http.NewRequest("PUT", s.url()+"/api/v1/packages/"+id.Name+"/"+id.Version, &b)
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	resp.Body.Close()
	require.Equal(s.t, 204, resp.StatusCode)
}

func (s *server) token(vin string) string {
	var out struct{ Token string }
	s.admin("POST", "/vehicles/"+vin+"/token", nil, &out)
	return out.Token
}

func vinOf(i int) string { return fmt.Sprintf("WDD%014d", i) }

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func shaHex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// proxy is a TCP proxy in front of the server (the network between vehicle and server). A fraction of
// the connections that fetch a chunk are cut in the middle of the answer.
type proxy struct {
	ln         net.Listener
	target     func() string
	dropRate   float64
	mu         sync.Mutex
	rnd        *rand.Rand
	drops      atomic.Int64 // chunk answers cut after the server sent them
	chunkReq   atomic.Int64
	restartCut atomic.Int64 // chunk answers cut off by a server restart, not by the proxy
	wg         sync.WaitGroup
}

func newProxy(t testing.TB, target func() string, dropRate float64, seed uint64) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, dropRate: dropRate, rnd: rand.New(rand.NewPCG(seed, 7))}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.handle(c) }()
	}
}

func (p *proxy) handle(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	first := string(buf[:n])
	isChunk, drop, cut := false, false, 0
	if strings.HasPrefix(first, "GET ") && strings.Contains(strings.SplitN(first, "\r\n", 2)[0], "/chunk ") {
		isChunk = true
		p.chunkReq.Add(1)
		p.mu.Lock()
		drop = p.rnd.Float64() < p.dropRate
		cut = 200 + p.rnd.IntN(1500)
		p.mu.Unlock()
	}
	addr := p.target()
	if addr == "" {
		return
	}
	s, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer s.Close()
	if _, err := s.Write(buf[:n]); err != nil {
		return
	}
	go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
	if !drop {
		if !isChunk {
			io.Copy(c, s)
			return
		}
		// a chunk answer that does not arrive whole although the proxy did not cut it was cut off by
		// the server's restart: the device asks for that chunk again too
		var got bytes.Buffer
		io.Copy(io.MultiWriter(c, &got), s)
		resp, err := http.ReadResponse(bufio.NewReader(&got), nil)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
		}
		if err != nil {
			p.restartCut.Add(1)
		}
		return
	}
	// forward the first cut bytes of the answer, then cut the connection; it counts as a drop when
	// the answer had more bytes (the client misses some)
	k, _ := io.CopyN(c, s, int64(cut))
	if k == int64(cut) {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, _ := s.Read(make([]byte, 1)); n == 1 {
			p.drops.Add(1)
		}
	}
}

func seeded() *rand.Rand { return rand.New(rand.NewPCG(3, 4)) }
