package client

// The SOTA client: the device API over HTTP with the vehicle's device token, retrying with backoff
// when the network drops (DEV_CONNECT X1).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"sota/wire"
)

// Backoff is the retry schedule of a call whose connection failed: Base doubling up to Max, with
// jitter, at most Attempts tries in all.
type Backoff struct {
	Base     time.Duration // default 100ms
	Max      time.Duration // default 10s
	Attempts int           // default 10
}

func (b *Backoff) defaults() {
	if b.Base <= 0 {
		b.Base = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	if b.Attempts <= 0 {
		b.Attempts = 10
	}
}

func (b Backoff) delay(attempt int) time.Duration {
	d := b.Base << min(attempt, 20)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	return d/2 + rand.N(d/2+1)
}

// Client calls the device API of one vehicle.
type Client struct {
	Server  string // base URL, e.g. http://localhost:8080
	VIN     string
	Token   string
	HTTP    *http.Client // default: a client with a 30 s timeout
	Backoff Backoff
	// Retries counts the calls that were tried again after a network failure.
	Retries func()

	initOnce sync.Once
	hc       *http.Client
}

// APIError is an answer of the server with an error status.
type APIError struct {
	Status      int
	Code        string `json:"code"`
	Description string `json:"description"`
	Missing     []int  `json:"missing"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Description)
}

// IsCode tells whether err is an APIError with the code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

func (c *Client) http() *http.Client {
	c.initOnce.Do(func() {
		c.hc = c.HTTP
		if c.hc == nil {
			c.hc = &http.Client{Timeout: 30 * time.Second}
		}
	})
	return c.hc
}

// call sends one request and decodes a 2xx JSON answer into out (when not nil); it returns the status.
// Network failures and 5xx answers are retried with backoff; 4xx answers are an *APIError.
func (c *Client) call(ctx context.Context, method, path string, in, out any) (int, error) {
	bo := c.Backoff
	bo.defaults()
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, err
		}
	}
	u := strings.TrimRight(c.Server, "/") + "/api/v1/vehicle_updates/" + url.PathEscape(c.VIN) + path
	var last error
	for attempt := 0; attempt < bo.Attempts; attempt++ {
		if attempt > 0 {
			if c.Retries != nil {
				c.Retries()
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(bo.delay(attempt - 1)):
			}
		}
		st, err := c.once(ctx, method, u, body, out)
		if err == nil {
			return st, nil
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Status < 500 || ctx.Err() != nil {
			return st, err
		}
		last = err
	}
	return 0, fmt.Errorf("%s %s: giving up after %d attempts: %w", method, path, bo.Attempts, last)
}

func (c *Client) once(ctx context.Context, method, u string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.http().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err // the connection dropped mid-answer
	}
	if resp.StatusCode >= 400 {
		e := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(b, e)
		return resp.StatusCode, e
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("answer of %s: %w", u, err)
		}
	}
	return resp.StatusCode, nil
}

// Poll is the device's queue (GET /vehicle_updates/:vin).
func (c *Client) Poll(ctx context.Context) ([]wire.PollRow, error) {
	var rows []wire.PollRow
	_, err := c.call(ctx, "GET", "", nil, &rows)
	return rows, err
}

// Notification returns what to do next; ok is false when there is nothing.
func (c *Client) Notification(ctx context.Context) (n wire.Notification, ok bool, err error) {
	st, err := c.call(ctx, "GET", "/notification", nil, &n)
	return n, err == nil && st == http.StatusOK, err
}

// Start opens (or reopens) the transfer session of an update.
func (c *Client) Start(ctx context.Context, id string) (wire.Transfer, error) {
	var t wire.Transfer
	_, err := c.call(ctx, "POST", "/"+id+"/start", nil, &t)
	return t, err
}

// NextChunk returns the lowest unacknowledged chunk; ok is false when every chunk is acknowledged.
func (c *Client) NextChunk(ctx context.Context, id string) (ch wire.Chunk, ok bool, err error) {
	st, err := c.call(ctx, "GET", "/"+id+"/chunk", nil, &ch)
	return ch, err == nil && st == http.StatusOK, err
}

// Ack acknowledges chunks and returns the next unacknowledged one (0: none).
func (c *Client) Ack(ctx context.Context, id string, chunks ...int) (int, error) {
	var out wire.AckAnswer
	_, err := c.call(ctx, "POST", "/"+id+"/ack", wire.Ack{Chunks: chunks}, &out)
	if err != nil || out.Next == nil {
		return 0, err
	}
	return *out.Next, nil
}

// Finalize is TRANSFER_COMPLETE; an incomplete download is an *APIError with the missing chunks.
func (c *Client) Finalize(ctx context.Context, id string, chunks int, sha string) (string, error) {
	var msg string
	_, err := c.call(ctx, "POST", "/"+id+"/finalize", wire.Finalize{Chunks: &chunks, SHA256: sha}, &msg)
	return msg, err
}

// Cancel cancels an update (CANCEL_SOFTWARE_DOWNLOAD).
func (c *Client) Cancel(ctx context.Context, id string) error {
	_, err := c.call(ctx, "POST", "/"+id+"/cancel", nil, nil)
	return err
}

// Report sends the install report.
func (c *Client) Report(ctx context.Context, id string, results []wire.OperationResult) (string, error) {
	var msg string
	_, err := c.call(ctx, "POST", "/"+id, wire.InstallReport{OperationResults: results}, &msg)
	return msg, err
}

// Installed answers GET_ALL_PACKAGES with the installed packages.
func (c *Client) Installed(ctx context.Context, ids []wire.PackageID) error {
	if ids == nil {
		ids = []wire.PackageID{}
	}
	_, err := c.call(ctx, "PUT", "/installed", ids, nil)
	return err
}

// PublicKey fetches the server's wake-up verification key (GET /api/v1/wakeup/public_key).
func (c *Client) PublicKey(ctx context.Context) (ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(c.Server, "/")+"/api/v1/wakeup/public_key", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out wire.WakeupKey
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("wake-up key: server answered %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	k, err := base64.StdEncoding.DecodeString(out.PublicKey)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, errors.New("wake-up key: not an ed25519 public key")
	}
	return ed25519.PublicKey(k), nil
}
