package main

// Webhooks and login limits with three sotad processes on one PostgreSQL schema (replicas): webhook
// subscriptions made on one replica take effect on the others within 1 s; no webhook delivery is
// sent by two replicas at once, also when the dispatching replica stalls past its lease; a killed
// replica's claimed delivery is sent again by another once the claim expired; and the login limits
// hold for the cluster, not per replica. Skipped with a message without a PostgreSQL server
// (SOTA_REQUIRE_POSTGRES=1 makes that a failure).

import (
	"bufio"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"sota/auth"
	"sota/engine"
	"sota/internal/storetest"
)

// startReplicaProcs is startReplicas with extra flags, returning the processes.
func startReplicaProcs(t *testing.T, n int, extra ...string) []*sotadProc {
	t.Helper()
	spec := storetest.SpecKind(t, "postgres", t.TempDir()) // skips without a server
	bin := buildSotad(t)
	var out []*sotadProc
	for i := 0; i < n; i++ {
		p := startSotadOn(t, bin, t.TempDir(), spec, "postgres", extra...)
		t.Cleanup(p.kill)
		out = append(out, p)
	}
	return out
}

// receipt is one webhook POST as the receiver got it.
type receipt struct {
	id, event  string
	sender     int // index of the replica whose socket sent it (-1: not found)
	start, end time.Time
}

// hookReceiver counts webhook deliveries by id and checks their signatures. hold, when set, is
// called before answering (with the receipt so far and the request) and may block.
type hookReceiver struct {
	t      *testing.T
	secret string
	procs  []*sotadProc
	srv    *httptest.Server
	hold   func(r receipt, req *http.Request)

	mu  sync.Mutex
	got []receipt
}

func newHookReceiver(t *testing.T, secret string, procs []*sotadProc) *hookReceiver {
	h := &hookReceiver{t: t, secret: secret, procs: procs}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if !hmac.Equal([]byte(req.Header.Get("X-SOTA-Signature")), []byte(engine.Sign(secret, body))) {
			t.Errorf("a delivery with a bad signature")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r := receipt{id: req.Header.Get("X-SOTA-Delivery"), event: req.Header.Get("X-SOTA-Event"),
			sender: h.senderOf(req.RemoteAddr), start: time.Now()}
		if h.hold != nil {
			h.hold(r, req)
		}
		r.end = time.Now()
		h.mu.Lock()
		h.got = append(h.got, r)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) receipts() []receipt {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]receipt(nil), h.got...)
}

// byID counts the receipts of each delivery id.
func (h *hookReceiver) byID() map[string]int {
	n := map[string]int{}
	for _, r := range h.receipts() {
		n[r.id]++
	}
	return n
}

// senderOf finds which replica owns the client side of a connection to the receiver, through
// /proc (the socket's inode among each process's open files); -1 when it cannot tell.
func (h *hookReceiver) senderOf(remote string) int {
	host, port, err := net.SplitHostPort(remote)
	if err != nil || net.ParseIP(host).To4() == nil {
		return -1
	}
	_, rport, _ := net.SplitHostPort(h.srv.Listener.Addr().String())
	lp, _ := strconv.Atoi(port)
	rp, _ := strconv.Atoi(rport)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return -1
	}
	defer f.Close()
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 9 && strings.HasSuffix(fs[1], fmt.Sprintf(":%04X", lp)) && strings.HasSuffix(fs[2], fmt.Sprintf(":%04X", rp)) {
			inode = fs[9]
		}
	}
	if inode == "" {
		return -1
	}
	want := "socket:[" + inode + "]"
	for i, p := range h.procs {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", p.cmd.Process.Pid))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && l == want {
				return i
			}
		}
	}
	return -1
}

// subscribe creates a webhook through base for events and returns its id.
func (h *hookReceiver) subscribe(base string, events ...string) string {
	var wh struct{ ID string }
	require.NoError(h.t, json.Unmarshal(must(h.t, 200, "POST", base+"/webhooks",
		map[string]any{"url": h.srv.URL, "events": events, "secret": h.secret}), &wh))
	return wh.ID
}

// webhookIDs lists the subscriptions a replica knows.
func webhookIDs(t *testing.T, base string) []string {
	var ws []engine.Webhook
	require.NoError(t, json.Unmarshal(must(t, 200, "GET", base+"/webhooks", nil), &ws))
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	return ids
}

func TestReplicasFollowWebhookSubscriptions(t *testing.T) {
	procs := startReplicaProcs(t, 3)
	ps := []string{procs[0].url + "/api/v1", procs[1].url + "/api/v1", procs[2].url + "/api/v1"}
	rec := newHookReceiver(t, "follow-secret", procs)

	waitFor := func(want func(ids []string) bool, what string) {
		t.Helper()
		start := time.Now()
		for _, i := range []int{0, 2} {
			for !want(webhookIDs(t, ps[i])) && time.Since(start) < 2*time.Second {
				time.Sleep(5 * time.Millisecond)
			}
			took := time.Since(start)
			require.True(t, want(webhookIDs(t, ps[i])), "%s on %c", what, 'A'+i)
			assert.Less(t, took, time.Second, "%s on %c took %v", what, 'A'+i, took)
			t.Logf("%s on %c after %v", what, 'A'+i, took.Round(time.Millisecond))
		}
	}

	id := rec.subscribe(ps[1], "vehicle.created")
	waitFor(func(ids []string) bool { return len(ids) == 1 && ids[0] == id }, "the subscription made on B is listed")
	// events emitted on every replica reach the receiver: A and C emit for B's subscription
	for i, base := range ps {
		must(t, 200, "POST", base+"/vehicles", map[string]string{"vin": fmt.Sprintf("WDDHKA0000000000%d", i)})
	}
	require.Eventually(t, func() bool { return len(rec.byID()) == 3 }, 10*time.Second, 20*time.Millisecond,
		"the vehicles created on A, B and C are each delivered")

	must(t, 200, "DELETE", ps[1]+"/webhooks/"+id, nil)
	waitFor(func(ids []string) bool { return len(ids) == 0 }, "the subscription deleted on B is gone")
	for i, base := range []string{ps[0], ps[2]} {
		must(t, 200, "POST", base+"/vehicles", map[string]string{"vin": fmt.Sprintf("WDDHKB0000000000%d", i)})
	}
	time.Sleep(2500 * time.Millisecond) // a dispatcher round or two on every replica
	assert.Len(t, rec.byID(), 3, "nothing is delivered for a deleted subscription")
	for _, r := range rec.receipts() {
		assert.Equal(t, "vehicle.created", r.event)
	}
}

// The dispatching replica stalls on one delivery longer than its job/webhooks lease lives (3 s): the
// lease moves to another replica, which sends the rest; the stalled delivery is claimed, so it is not
// sent again meanwhile, and every delivery reaches the receiver exactly once.
func TestReplicasNeverSendAWebhookDeliveryTwiceAtOnce(t *testing.T) {
	procs := startReplicaProcs(t, 3, "--webhook-timeout", "8s")
	ps := []string{procs[0].url + "/api/v1", procs[1].url + "/api/v1", procs[2].url + "/api/v1"}
	rec := newHookReceiver(t, "stall-secret", procs)
	var stalled0 atomic.Bool
	rec.hold = func(r receipt, req *http.Request) {
		if stalled0.CompareAndSwap(false, true) {
			time.Sleep(5 * time.Second) // the first delivery stalls past the lease
		}
	}
	rec.subscribe(ps[0], "vehicle.created")
	time.Sleep(time.Second) // every replica knows the subscription (within 1 s)
	const n = 12
	for i := 0; i < n; i++ {
		must(t, 200, "POST", ps[i%3]+"/vehicles", map[string]string{"vin": fmt.Sprintf("WDDSTALL%09d", i)})
	}
	require.Eventually(t, func() bool { return len(rec.byID()) == n }, 30*time.Second, 50*time.Millisecond,
		"every delivery arrives")
	time.Sleep(3 * time.Second) // the stalled replica's round and the others' next rounds

	got := rec.receipts()
	for id, k := range rec.byID() {
		assert.Equal(t, 1, k, "delivery %s was sent %d times (every answer was 200 within the timeout)", id, k)
	}
	stalled := got[0]
	for _, r := range got {
		if r.end.Sub(r.start) > stalled.end.Sub(stalled.start) {
			stalled = r
		}
	}
	require.Greater(t, stalled.end.Sub(stalled.start), 4*time.Second)
	senders := map[int]int{}
	during := 0
	for _, r := range got {
		senders[r.sender]++
		if r.id != stalled.id && r.start.After(stalled.start) && r.start.Before(stalled.end) {
			during++
			assert.NotEqual(t, stalled.sender, r.sender, "while one replica stalled, another sent")
		}
	}
	assert.Greater(t, during, 0, "other deliveries were sent while the first stalled (the lease moved)")
	assert.NotContains(t, senders, -1, "every delivery's sender was found")
	t.Logf("%d deliveries by replica %v; %d sent during the %v stall of replica %d", len(got), senders, during,
		stalled.end.Sub(stalled.start).Round(time.Millisecond), stalled.sender)
}

// The replica sending a delivery is killed with SIGKILL while the receiver holds the request: the
// delivery is sent again by another replica once its claim (twice --webhook-timeout) expired, not
// before, and recorded as delivered after two attempts.
func TestReplicasSendAKilledReplicasDeliveryAfterItsClaim(t *testing.T) {
	const timeout = 2 * time.Second
	procs := startReplicaProcs(t, 3, "--webhook-timeout", timeout.String())
	ps := []string{procs[0].url + "/api/v1", procs[1].url + "/api/v1", procs[2].url + "/api/v1"}
	rec := newHookReceiver(t, "kill-secret", procs)
	held := make(chan receipt, 1)
	var held0 atomic.Bool
	rec.hold = func(r receipt, req *http.Request) {
		if held0.CompareAndSwap(false, true) {
			held <- r
			<-req.Context().Done() // until the sender dies
		}
	}
	id := rec.subscribe(ps[0], "vehicle.created")
	time.Sleep(time.Second)
	must(t, 200, "POST", ps[1]+"/vehicles", map[string]string{"vin": "WDDKLL00000000001"})
	var first receipt
	select {
	case first = <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the delivery never arrived")
	}
	require.NotEqual(t, -1, first.sender, "the sending replica is found")
	killed := time.Now()
	procs[first.sender].kill()
	t.Logf("replica %c sent %s and was killed", 'A'+first.sender, first.id)

	require.Eventually(t, func() bool { return rec.byID()[first.id] == 2 }, 20*time.Second, 20*time.Millisecond,
		"the delivery is sent again")
	var again receipt
	for _, r := range rec.receipts() {
		if r.id == first.id && r.start.After(first.start) {
			again = r
		}
	}
	assert.NotEqual(t, first.sender, again.sender)
	gap := again.start.Sub(first.start)
	t.Logf("sent again by %c %v after the first attempt (%v after the kill)", 'A'+again.sender, gap.Round(time.Millisecond), again.start.Sub(killed).Round(time.Millisecond))
	assert.GreaterOrEqual(t, gap, 2*timeout-200*time.Millisecond, "not before the claim expired")
	assert.Less(t, gap, 2*timeout+8*time.Second, "soon after the claim expired")

	alive := ps[(first.sender+1)%3]
	require.Eventually(t, func() bool {
		var ds []engine.Delivery
		return json.Unmarshal(must(t, 200, "GET", alive+"/webhooks/"+id+"/deliveries", nil), &ds) == nil &&
			len(ds) == 1 && ds[0].State == "delivered" && ds[0].Attempts == 2
	}, 10*time.Second, 20*time.Millisecond, "recorded as delivered after two attempts")
	time.Sleep(2 * time.Second)
	assert.Equal(t, 2, rec.byID()[first.id], "and not sent a third time")
}

// The login limits (10 failures a minute per account and per client address) hold across replicas:
// failures spread over A, B and C count together, also when they come at once.
func TestReplicasShareLoginLimits(t *testing.T) {
	procs := startReplicaProcs(t, 3, "--trusted-proxy", "127.0.0.1")
	ps := []string{procs[0].url, procs[1].url, procs[2].url}
	login := func(base, user, password, from string) (int, string) {
		b, _ := json.Marshal(map[string]string{"username": user, "password": password})
		req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", from)
		c := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		res, err := c.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After")
	}
	const password = "crash-test-password" // startSotadOn's admin password
	// per account: ten failures from ten addresses, round-robin over the replicas
	for i := 0; i < auth.LoginFailuresPerMinute; i++ {
		st, _ := login(ps[i%3], "admin", "wrong", fmt.Sprintf("198.51.100.%d", i+1))
		require.Equal(t, http.StatusUnauthorized, st, "failure %d", i+1)
	}
	for i, base := range ps {
		st, retry := login(base, "admin", password, "198.51.100.200")
		assert.Equal(t, http.StatusTooManyRequests, st, "the account is limited on %c", 'A'+i)
		secs, _ := strconv.Atoi(retry)
		assert.True(t, secs > 0 && secs <= 60, "Retry-After %q", retry)
	}

	// per client address: ten failures for ten accounts from one address; then every replica refuses
	// it, and another address is not affected
	for i := 0; i < auth.LoginFailuresPerMinute; i++ {
		st, _ := login(ps[(i+1)%3], fmt.Sprintf("nobody%d", i), "wrong", "203.0.113.7")
		require.Equal(t, http.StatusUnauthorized, st, "failure %d", i+1)
	}
	for i, base := range ps {
		st, _ := login(base, "someone", "wrong", "203.0.113.7")
		assert.Equal(t, http.StatusTooManyRequests, st, "the address is limited on %c", 'A'+i)
	}
	st, _ := login(ps[2], "someone", "wrong", "203.0.113.8")
	assert.Equal(t, http.StatusUnauthorized, st, "another address is not")

	// at once: 30 wrong passwords for one account, 10 on each replica concurrently, from 30
	// addresses: exactly 10 are checked, the others refused
	var mu sync.Mutex
	count := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st, _ := login(ps[i%3], "concurrent", "wrong", fmt.Sprintf("192.0.2.%d", i+1))
			mu.Lock()
			count[st]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	assert.Equal(t, map[int]int{http.StatusUnauthorized: auth.LoginFailuresPerMinute, http.StatusTooManyRequests: 30 - auth.LoginFailuresPerMinute}, count,
		"30 concurrent failures over three replicas")
}
