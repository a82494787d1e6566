// Package loadgen is the HTTP load generator of the throughput benchmarks: concurrent keep-alive
// connections that each send raw HTTP/1.1 requests one after the other (a light generator, like
// wrk, so that the server under test gets the CPU), and the throughput and latency they saw.
package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what a run measured.
type Result struct {
	PerSecond float64       // completed requests per second
	P99       time.Duration // 99th-percentile latency
	Requests  int
}

// Run opens clients connections, connection i to addrs[i%len(addrs)], and sends on each, for d, the
// requests req(addr, n) (n counts the requests of the run) and reads their answers; an answer other
// than 200 or a broken connection ends the run with an error.
func Run(addrs []string, clients int, d time.Duration, req func(addr string, n int) []byte) (Result, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	var seq atomic.Int64
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := addrs[c%len(addrs)]
			mine := make([]time.Duration, 0, 1<<14)
			err := func() error {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					return err
				}
				defer conn.Close()
				br := bufio.NewReaderSize(conn, 16<<10)
				for time.Now().Before(deadline) {
					t0 := time.Now()
					if _, err := conn.Write(req(addr, int(seq.Add(1)))); err != nil {
						return err
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						return err
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						return fmt.Errorf("%s answered %s", addr, resp.Status)
					}
					mine = append(mine, time.Since(t0))
				}
				return nil
			}()
			mu.Lock()
			lat = append(lat, mine...)
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if first != nil {
		return Result{}, first
	}
	if len(lat) == 0 {
		return Result{}, fmt.Errorf("no request completed in %v", d)
	}
	slices.Sort(lat)
	return Result{PerSecond: float64(len(lat)) / el.Seconds(), P99: lat[len(lat)*99/100], Requests: len(lat)}, nil
}
