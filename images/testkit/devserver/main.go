// Command devserver is the test web server in the sandboxd/testkit image: the
// stand-in for a user's dev server behind a preview URL. It listens on
// $HOST:$PORT (default all addresses, port 3000) and answers:
//
//	/             200 "hello from <hostname>"
//	/echo         the request body and Content-Type, plus X-Echo-Method,
//	              X-Echo-Host (r.Host), X-Echo-Path (the request URI) and
//	              X-Echo-Forwarded-{Host,For,Proto}
//	/ws           WebSocket echo: every message back with its own type
//	/sse?n=N&ms=M text/event-stream of N events (default 5) "id: i" /
//	              "data: tick i", i from 1, M ms apart (default 100), each flushed
//	/slow?ms=N    200 "slow N" after N ms, or nothing if the client goes away
//	/bytes?n=N    N bytes of 'x' with Content-Length
//	/env?k=NAME   the value of the environment variable NAME, 404 when unset
//	/file?path=P  the file P under the working directory, 404 when missing
//	/count        how many /count requests this process has served, this one included
//	/pid          the process's pid
//
// With $TLS_CERT and $TLS_KEY (PEM files) it serves HTTPS instead, for the egress
// tests' stand-in of a registry behind HTTPS_PROXY (issue 15).
//
// It logs one line, "devserver listening on <addr>", and exits non-zero when it
// cannot listen. SIGTERM and SIGINT shut it down cleanly, which matters when
// it runs as PID 1, where the kernel ignores signals without a handler.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devserver:", err)
		os.Exit(1)
	}
}

// run listens on the address from $HOST and $PORT and serves newMux until ctx
// is done.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	ln, err := net.Listen("tcp", listenAddr(getenv))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "devserver listening on %s\n", ln.Addr())

	srv := &http.Server{Handler: newMux(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() {
		if cert, key := getenv("TLS_CERT"), getenv("TLS_KEY"); cert != "" || key != "" {
			serveErr <- srv.ServeTLS(ln, cert, key)
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Open WebSockets and SSE streams would hold Shutdown for its whole
	// timeout; a test server has nothing worth waiting for, so close them.
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenAddr joins $HOST and $PORT. An empty HOST means every address; an IPv6
// HOST may come with or without brackets ("::1" and "[::1]" both work).
func listenAddr(getenv func(string) string) string {
	port := getenv("PORT")
	if port == "" {
		port = "3000"
	}
	host := strings.TrimSuffix(strings.TrimPrefix(getenv("HOST"), "["), "]")
	return net.JoinHostPort(host, port)
}
