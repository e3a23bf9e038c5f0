package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The load generator of BenchmarkProxy. On a 2-core machine it competes for CPU with the
// proxy it measures and with the app behind it, so it is made as cheap as it can be and
// held to one core: it runs with GOMAXPROCS=1 (on 2 cores), writes one prepared request, and reads the
// answer with a parser that allocates nothing (every proxy measured answers the
// devserver's Content-Length, so no chunked decoding is needed). On a bigger machine it
// runs on as many cores as the proxy is not given (coreSplit). Every proxy gets the
// same generator, the same connections and the same machine, so what differs between
// them is the proxy.

// loadResult is one run of hammer.
type loadResult struct {
	n    int             // requests answered
	rate float64         // requests per second over the run
	lat  []time.Duration // each request's time to its last byte
}

// hammer sends GET path (Host: host) to addr on conns keep-alive connections, one request
// at a time on each, for d (at least one on each), and checks every answer is a 200 of
// size bytes. It runs on procs cores.
func hammer(b *testing.B, procs int, addr, host, path string, conns, size int, d time.Duration) loadResult {
	b.Helper()
	prev := runtime.GOMAXPROCS(procs)
	defer runtime.GOMAXPROCS(prev)

	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: sandboxd-bench\r\nAccept: */*\r\n\r\n")
	lat := make([][]time.Duration, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range conns {
		wg.Go(func() {
			var conn net.Conn
			br := bufio.NewReaderSize(nil, 64<<10)
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			l := make([]time.Duration, 0, 4096)
			for t0 := time.Now(); len(l) == 0 || t0.Before(deadline); t0 = time.Now() {
				if conn == nil {
					if conn, errs[c] = net.Dial("tcp", addr); errs[c] != nil {
						break
					}
					br.Reset(conn)
				}
				if _, errs[c] = conn.Write(req); errs[c] != nil {
					break
				}
				closing, err := readAnswer(br, size)
				if errs[c] = err; err != nil {
					break
				}
				l = append(l, time.Since(t0))
				if closing { // the proxy ends the connection: open another, as a browser would
					conn.Close()
					conn = nil
				}
			}
			lat[c] = l
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		b.Fatalf("load on %s: %v", addr, err)
	}
	var r loadResult
	for _, l := range lat {
		r.lat = append(r.lat, l...)
	}
	r.n = len(r.lat)
	r.rate = float64(r.n) / elapsed.Seconds()
	return r
}

// readAnswer reads one response from br and discards its body: a 200 with a
// Content-Length of size. closing reports a "Connection: close".
func readAnswer(br *bufio.Reader, size int) (closing bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return false, fmt.Errorf("answer %q, want a 200", bytes.TrimSpace(line))
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		if len(line) <= 2 { // the empty line ending the header
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		switch {
		case !ok:
		case bytes.EqualFold(name, []byte("Content-Length")):
			if n, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return false, fmt.Errorf("Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(bytes.TrimSpace(value), []byte("close"))
		}
	}
	if n != size {
		return false, fmt.Errorf("answer of %d bytes, want Content-Length %d", n, size)
	}
	_, err = br.Discard(n)
	return closing, err
}
