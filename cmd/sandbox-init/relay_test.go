package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// startTestRelay serves a relay on 127.0.0.1 for the test's duration and
// returns its address.
func startTestRelay(t *testing.T, r *relay) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return ln.Addr().String()
}

// startBackend listens on addr and answers each connection with "got:"
// followed by everything the client sent before it half-closed, then closes:
// it checks that the relay passes half-closes through in both directions.
func startBackend(t *testing.T, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				data, _ := io.ReadAll(c)
				io.WriteString(c, "got:"+string(data))
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// dialRelay connects to the relay with a deadline for the whole exchange.
func dialRelay(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

// exchange sends msg, half-closes and returns all the relay answered.
func exchange(t *testing.T, c *net.TCPConn, msg string) string {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v (after %q)", err, got)
	}
	return string(got)
}

func TestRelayIPv4(t *testing.T) {
	addr := startTestRelay(t, &relay{})
	port := startBackend(t, "127.0.0.1:0")
	c := dialRelay(t, addr)
	// The payload follows the header at once, before OK: it must reach the
	// backend, not be swallowed with the header.
	got := exchange(t, c, fmt.Sprintf("RELAY %d\nhello", port))
	if got != "OK\ngot:hello" {
		t.Fatalf("got %q", got)
	}
}

func TestRelayIPv6LoopbackOnly(t *testing.T) {
	addr := startTestRelay(t, &relay{})
	port := startBackend(t, "[::1]:0")
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
		c.Close()
		t.Skip("the port is taken on 127.0.0.1 too")
	}
	c := dialRelay(t, addr)
	if got := exchange(t, c, fmt.Sprintf("RELAY %d\r\nsix", port)); got != "OK\ngot:six" {
		t.Fatalf("got %q", got)
	}
}

func TestRelayLargeTransferBothWays(t *testing.T) {
	// An echo server: what goes in comes back, while the client still sends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c := dialRelay(t, startTestRelay(t, &relay{}))
	fmt.Fprintf(c, "RELAY %d\n", ln.Addr().(*net.TCPAddr).Port)
	payload := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	go func() {
		io.WriteString(c, payload)
		c.CloseWrite()
	}()
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "OK\n" {
		t.Fatalf("header answer %q, %v", line, err)
	}
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != payload {
		t.Fatalf("echoed %d bytes, want %d", len(got), len(payload))
	}
}

func TestRelayClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c := dialRelay(t, startTestRelay(t, &relay{}))
	got := exchange(t, c, fmt.Sprintf("RELAY %d\n", port))
	if want := fmt.Sprintf("ERR port %d: connection refused\n", port); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestRelayRejects(t *testing.T) {
	tests := []struct {
		name, send, want string
	}{
		{name: "not a relay line", send: "GET / HTTP/1.1\n", want: "ERR bad request\n"},
		{name: "lowercase", send: "relay 80\n", want: "ERR bad request\n"},
		{name: "port zero", send: "RELAY 0\n", want: "ERR bad port\n"},
		{name: "port too big", send: "RELAY 65536\n", want: "ERR bad port\n"},
		{name: "host given", send: "RELAY 10.0.0.1:80\n", want: "ERR bad port\n"},
		{name: "host name", send: "RELAY example.com 80\n", want: "ERR bad port\n"},
		{name: "too long", send: "RELAY " + strings.Repeat("1", 40) + "\n", want: ""},
		{name: "no newline then EOF", send: "RELAY 80", want: ""},
	}
	addr := startTestRelay(t, &relay{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRelay(t, addr)
			io.WriteString(c, tt.send)
			c.CloseWrite()
			// A close with unread bytes is a reset: what was read before
			// it counts, the error does not.
			got, _ := io.ReadAll(c)
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRelayOwnPort(t *testing.T) {
	addr := startTestRelay(t, &relay{})
	_, port, _ := net.SplitHostPort(addr)
	c := dialRelay(t, addr)
	if got := exchange(t, c, "RELAY "+port+"\n"); !strings.HasPrefix(got, "ERR ") {
		t.Fatalf("got %q, want ERR", got)
	}
}

func TestRelaySlowHeader(t *testing.T) {
	addr := startTestRelay(t, &relay{HeaderTimeout: 100 * time.Millisecond})
	c := dialRelay(t, addr)
	io.WriteString(c, "RELAY 8") // and nothing more, without closing
	start := time.Now()
	got, _ := io.ReadAll(c)
	if len(got) != 0 {
		t.Fatalf("got %q, want a silent close", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %s", d)
	}
}

func TestRelayServeStopsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // a failure before the cancel below must not leave Serve running
	done := make(chan error, 1)
	go func() { done <- (&relay{}).Serve(ctx, ln) }()

	// One connection joined to a backend that never closes, one still in
	// its header: both must end when Serve is stopped.
	port := startBackend(t, "127.0.0.1:0")
	joined := dialRelay(t, ln.Addr().String())
	fmt.Fprintf(joined, "RELAY %d\n", port)
	if line, err := bufio.NewReader(joined).ReadString('\n'); err != nil || line != "OK\n" {
		t.Fatalf("answer %q, %v", line, err)
	}
	waiting := dialRelay(t, ln.Addr().String())

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	for _, c := range []net.Conn{joined, waiting} {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("connection still open after Serve returned")
		}
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still open")
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:80": true, "127.1.2.3:80": true,
		"10.0.0.1:80": false, "[::]:80": false, "0.0.0.0:80": false, "[fe80::1]:80": false,
		"169.254.169.254:80": false, "localhost:80": false,
	} {
		if err := loopbackOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("%s: err = %v, want allowed %v", addr, err, ok)
		}
	}
}

func TestRelayInBinary(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	p := startInit(t, home, filepath.Join(home, "none.json"))
	re := regexp.MustCompile(`relay listening on (127\.0\.0\.1:\d+)`)
	var addr string
	testutil.Eventually(t, 5*time.Second, "the relay address", func() bool {
		m := re.FindStringSubmatch(p.stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	port := startBackend(t, "127.0.0.1:0")
	c := dialRelay(t, addr)
	fmt.Fprintf(c, "RELAY %d\n", port)
	io.WriteString(c, "ping")
	c.CloseWrite()
	br := bufio.NewReader(c)
	got, _ := io.ReadAll(br)
	if string(got) != "OK\ngot:ping" {
		t.Fatalf("got %q", got)
	}
}

func TestRelayBindFailureIsNotFatal(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	home := t.TempDir()
	config := filepath.Join(home, "services.json")
	writeConfig(t, config, Spec{Name: "a", Cmd: []string{"sleep", "1000"}})
	p := startInit(t, home, config, "--relay", ln.Addr().String()) // the later --relay wins
	p.waitRunning("a")
	// stderr reaches the buffer through os/exec's copying goroutine, so the line may
	// trail the state file that says "a" runs.
	testutil.Eventually(t, 5*time.Second, "the relay error in the log", func() bool {
		return strings.Contains(p.stderr.String(), "continuing without it")
	})
}
