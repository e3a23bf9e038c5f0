package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxEchoBody bounds what /echo buffers. The body is read whole before the
// reply starts because an HTTP/1 server may not read a request body after
// writing the response has begun.
const maxEchoBody = 64 << 20

// newMux returns devserver's handler. It reads the hostname once, and the
// environment and working directory on each request.
func newMux() *http.ServeMux {
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "hello from "+hostname)
	})
	mux.HandleFunc("/echo", handleEcho)
	mux.HandleFunc("/ws", handleWS)
	mux.HandleFunc("/sse", handleSSE)
	mux.HandleFunc("/slow", handleSlow)
	mux.HandleFunc("/bytes", handleBytes)
	mux.HandleFunc("/env", handleEnv)
	mux.HandleFunc("/file", handleFile)
	// State that lives only in this process's memory, and the process's pid: a warm wake
	// (an unpause) keeps both, a cold start loses them (issue 14).
	var count atomic.Int64
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, strconv.FormatInt(count.Add(1), 10))
	})
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, strconv.Itoa(os.Getpid()))
	})
	return mux
}

func handleEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEchoBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	if ct := r.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	} else {
		// Without this the server would sniff one from the body.
		h["Content-Type"] = nil
	}
	h.Set("X-Echo-Method", r.Method)
	h.Set("X-Echo-Host", r.Host)
	h.Set("X-Echo-Path", r.URL.RequestURI())
	h.Set("X-Echo-Forwarded-Host", r.Header.Get("X-Forwarded-Host"))
	h.Set("X-Echo-Forwarded-For", r.Header.Get("X-Forwarded-For"))
	h.Set("X-Echo-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"))
	// What the app was sent of cookies and headers, so a test can tell that sandboxd's
	// preview credentials never reach it (issue 13).
	h.Set("X-Echo-Cookie", strings.Join(r.Header.Values("Cookie"), " | "))
	h.Set("X-Echo-Header-Names", headerNames(r.Header))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// headerNames lists a request's header names, sorted, comma-separated.
func headerNames(h http.Header) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func handleWS(w http.ResponseWriter, r *http.Request) {
	// Every origin is welcome: previews are opened from the app builder's
	// pages, whose origin is never the preview host.
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client.
	}
	defer conn.Close()
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			return // Close frames are answered by gorilla's default handler.
		}
		if err := conn.WriteMessage(typ, msg); err != nil {
			return
		}
	}
}

func handleSSE(w http.ResponseWriter, r *http.Request) {
	n, ok1 := intParam(w, r, "n", 5)
	ms, ok2 := intParam(w, r, "ms", 100)
	if !ok1 || !ok2 {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	for i := 1; i <= n; i++ {
		if i > 1 && !wait(r, time.Duration(ms)*time.Millisecond) {
			return
		}
		fmt.Fprintf(w, "id: %d\ndata: tick %d\n\n", i, i)
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func handleSlow(w http.ResponseWriter, r *http.Request) {
	ms, ok := intParam(w, r, "ms", 0)
	if !ok || !wait(r, time.Duration(ms)*time.Millisecond) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "slow %d", ms)
}

func handleBytes(w http.ResponseWriter, r *http.Request) {
	n, ok := intParam(w, r, "n", 0)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	chunk := bytes.Repeat([]byte{'x'}, min(n, 32<<10))
	for n > 0 {
		k, err := w.Write(chunk[:min(n, len(chunk))])
		if err != nil {
			return
		}
		n -= k
	}
}

func handleEnv(w http.ResponseWriter, r *http.Request) {
	k := r.URL.Query().Get("k")
	if k == "" {
		http.Error(w, "missing k", http.StatusBadRequest)
		return
	}
	v, ok := os.LookupEnv(k)
	if !ok {
		http.Error(w, k+" is not set", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, v)
}

// handleFile serves a regular file below the working directory. os.OpenInRoot
// refuses paths that climb out of it ("../x", absolute paths, symlinks out).
func handleFile(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query().Get("path")
	if p == "" {
		http.Error(w, "missing path", http.StatusBadRequest)
		return
	}
	f, err := os.OpenInRoot(".", p)
	if err != nil {
		status := http.StatusNotFound
		if !errors.Is(err, fs.ErrNotExist) {
			status = http.StatusForbidden
		}
		http.Error(w, err.Error(), status)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, p+" is not a regular file", http.StatusNotFound)
		return
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// intParam reads a non-negative integer query parameter, def when absent. On a
// bad value it answers 400 and returns false.
func intParam(w http.ResponseWriter, r *http.Request, name string, def int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		http.Error(w, fmt.Sprintf("%s must be a non-negative integer", name), http.StatusBadRequest)
		return 0, false
	}
	return v, true
}

// wait blocks for d or until the client goes away; it reports whether d passed.
func wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
