package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func newTest(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An error answer is an *Error with the API's code and message and the request id; a
// missing route is told apart from a missing sandbox.
func TestErrors(t *testing.T) {
	t.Parallel()
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-1")
		switch r.URL.Path {
		case "/v1/sandboxes/gone":
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"sandbox gone not found"}}`)
		case "/v1/sandboxes/a/preview-tokens":
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"code":"not_found","message":"no such route: POST /v1/sandboxes/a/preview-tokens"}}`)
		default:
			w.WriteHeader(502)
			fmt.Fprint(w, "<html>bad gateway</html>")
		}
	})
	_, err := c.Get(context.Background(), "gone")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != CodeNotFound || e.RequestID != "req-1" || e.NoRoute {
		t.Fatalf("%#v", err)
	}
	if err.Error() != "sandbox gone not found (404 not_found, request req-1)" {
		t.Errorf("one line: %q", err.Error())
	}
	if !errors.Is(err, &Error{Code: CodeNotFound}) || errors.Is(err, ErrNoRoute) || !IsCode(err, CodeNotFound) {
		t.Error("errors.Is does not match the code")
	}
	if _, err := c.PreviewToken(context.Background(), "a", 3000, 0); !errors.Is(err, ErrNoRoute) {
		t.Errorf("a missing route: %v", err)
	}
	_, err = c.List(context.Background(), ListOptions{})
	if !errors.As(err, &e) || e.Status != 502 || !strings.Contains(e.Message, "bad gateway") {
		t.Errorf("a proxy's page: %#v", err)
	}
}

// Ids are one escaped path segment: "../x" cannot climb.
func TestPathsEscapeIDs(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.EscapedPath())
		fmt.Fprint(w, `{}`)
	})
	for id, want := range map[string]string{"..": "/v1/sandboxes/%2E%2E", "a/b": "/v1/sandboxes/a%2Fb", "ok-1": "/v1/sandboxes/ok-1"} {
		c.Get(context.Background(), id)
		if p := got.Load(); p != want {
			t.Errorf("id %q requested %v, want %s", id, p, want)
		}
	}
}

// ExecStream writes each stream as it comes and answers the exit; an error event after
// output began is an *Error without a status.
func TestExecStream(t *testing.T) {
	t.Parallel()
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/x-ndjson" || r.Header.Get("Authorization") != "Bearer tok" {
			t.Errorf("headers %v", r.Header)
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"stream":"stdout","data":"out\n"}`)
		fmt.Fprintln(w, `{"stream":"stderr","data_base64":"/w=="}`)
		if strings.Contains(r.URL.Path, "/fail/") {
			fmt.Fprintln(w, `{"error":{"code":"internal","message":"the sandbox stopped"}}`)
			return
		}
		fmt.Fprintln(w, `{"exit_code":7,"timed_out":false,"duration_ms":5}`)
	})
	var out, errb bytes.Buffer
	st, err := c.ExecStream(context.Background(), "a", ExecRequest{Cmd: []string{"x"}}, &out, &errb)
	if err != nil || st.ExitCode != 7 || out.String() != "out\n" || errb.String() != "\xff" {
		t.Fatalf("%+v %v %q %q", st, err, out.String(), errb.String())
	}
	_, err = c.ExecStream(context.Background(), "fail", ExecRequest{Cmd: []string{"x"}}, &out, &errb)
	var e *Error
	if !errors.As(err, &e) || e.Status != 0 || e.Message != "the sandbox stopped" {
		t.Fatalf("%#v", err)
	}
}

// A stream cut before its exit is an error, never a silent success.
func TestExecStreamCut(t *testing.T) {
	t.Parallel()
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"stream":"stdout","data":"partial"}`)
	})
	if _, err := c.ExecStream(context.Background(), "a", ExecRequest{Cmd: []string{"x"}}, nil, nil); err == nil {
		t.Fatal("no error for a stream without its exit")
	}
}

// TaskEvents resumes a stream that breaks with Last-Event-ID, so each event is seen once,
// in order, until done.
func TestTaskEventsResume(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := newTest(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		switch calls.Add(1) {
		case 1:
			if r.Header.Get("Last-Event-ID") != "" {
				t.Errorf("first request resumes from %q", r.Header.Get("Last-Event-ID"))
			}
			fmt.Fprint(w, ": ping\n\nid: 1\nevent: status\ndata: {\"type\":\"status\",\"phase\":\"started\"}\n\nid: 2\nevent: message\ndata: {\"type\":\"message\",\"text\":\"hi\"}\n\n")
			// cut here
		default:
			if r.Header.Get("Last-Event-ID") != "2" {
				t.Errorf("resumed from %q, want 2", r.Header.Get("Last-Event-ID"))
			}
			fmt.Fprint(w, "id: 2\nevent: message\ndata: {\"type\":\"message\",\"text\":\"hi\"}\n\nid: 3\nevent: done\ndata: {\"status\":\"succeeded\"}\n\n")
		}
	})
	var seen []string
	err := c.TaskEvents(context.Background(), "a", "t", 0, func(ev TaskEvent) error {
		seen = append(seen, fmt.Sprintf("%d:%s", ev.Seq, ev.Type))
		return nil
	})
	if err != nil || strings.Join(seen, " ") != "1:status 2:message 3:done" {
		t.Fatalf("%v %v", seen, err)
	}
}
