// Package httplog is what the request logs of sandboxd's HTTP APIs share: a
// ResponseWriter that records the status the request was answered.
package httplog

import "net/http"

// StatusWriter records the status written through it for the request log. Flush (which
// connect-go asserts for its streams) and, through Unwrap, Hijack and the rest of
// http.ResponseController stay reachable: SSE, streaming exec, the terminal.
type StatusWriter struct {
	http.ResponseWriter
	status int
}

// NewStatusWriter wraps w.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{ResponseWriter: w}
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush makes StatusWriter an http.Flusher; it does nothing when w's writer cannot flush.
func (w *StatusWriter) Flush() { _ = w.FlushError() }

// FlushError flushes, or says why it cannot: http.ResponseController calls it before Flush.
func (w *StatusWriter) FlushError() error {
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is what r was answered: the status written, 101 for an upgrade whose connection
// was hijacked (nothing is written through w then), or 0 when nothing was answered.
func (w *StatusWriter) Status(r *http.Request) int {
	if w.status == 0 && r.Header.Get("Upgrade") != "" {
		return http.StatusSwitchingProtocols
	}
	return w.status
}
