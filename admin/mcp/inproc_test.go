package mcp

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// The body streams what the handler writes as it writes it, and closing the body ends
// the handler (its context is cancelled) and waits for it.
func TestHandlerTransportStreamsAndJoins(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var returned atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer returned.Store(true)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
			io.WriteString(w, "second\n")
		case <-r.Context().Done():
		}
	})
	c := &http.Client{Transport: handlerTransport{h: h}}
	resp, err := c.Get("http://localhost/stream")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v: the body must stream before the handler returns", line, err)
	}
	if returned.Load() {
		t.Fatal("the handler returned before it was released")
	}
	resp.Body.Close()
	if !returned.Load() {
		t.Fatal("Close returned before the handler did")
	}
}

// A handler that writes nothing answers 200; a status and headers written before the
// body arrive as they were.
func TestHandlerTransportStatus(t *testing.T) {
	t.Parallel()
	c := &http.Client{Transport: handlerTransport{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/empty" {
			return
		}
		if r.Host != "localhost" || r.Header.Get("Authorization") != "Bearer sekret" || r.RequestURI != "/missing?x=1" {
			t.Errorf("the handler saw host %q, auth %q, uri %q", r.Host, r.Header.Get("Authorization"), r.RequestURI)
		}
		w.Header().Set("X-Request-Id", "abc")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":"not_found","message":"no"}}`)
	})}}
	resp, err := c.Get("http://localhost/empty")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()

	s := &Server{api: c.Transport.(handlerTransport).h}
	api := s.apiFor(http.Header{"Authorization": {"Bearer sekret"}})
	req, _ := http.NewRequest(http.MethodGet, "http://localhost/missing?x=1", nil)
	req.Header.Set("Authorization", "Bearer sekret")
	resp, err = api.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Request-Id") != "abc" || len(b) == 0 {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, b)
	}
}

// A request whose context ends before the handler answers returns the context's error,
// and the handler has ended.
func TestHandlerTransportCancel(t *testing.T) {
	t.Parallel()
	var returned atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer returned.Store(true)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost/", nil)
	if _, err := (handlerTransport{h: h}).RoundTrip(req); err == nil {
		t.Fatal("no error after the context ended")
	}
	if !returned.Load() {
		t.Fatal("RoundTrip returned before the handler did")
	}
}
