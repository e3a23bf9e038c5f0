package e2b

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sandboxd/sandboxd/admin/httpstatus"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/wake"
)

// apiError is an error with E2B's answer: {"code":<status>,"message":...}.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string { return e.message }

func errorf(status int, format string, args ...any) error {
	return &apiError{status, fmt.Sprintf(format, args...)}
}

// handler is a route that returns its error for one funnel to answer.
type handler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) h(fn handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeErr(w, r, err)
		}
	})
}

// writeErr answers err; only internal errors are logged.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var ce *wake.CapacityError
	status, msg := http.StatusInternalServerError, "internal error"
	switch {
	case errors.As(err, &ae):
		status, msg = ae.status, ae.message
	case errors.As(err, &ce):
		status, msg = http.StatusTooManyRequests, explain(err)
	case errors.Is(err, wake.ErrTimeout):
		status, msg = http.StatusGatewayTimeout, explain(err)
	default:
		var ok bool
		// A code this table lacks is our bug, not the caller's: 500 with the message kept
		// for the log, as admin answers. Without this it reached WriteHeader(0), which panics.
		if status, ok = httpstatus.Of(lifecycle.ErrorCode(err)); ok {
			msg = lifecycle.ErrorMessage(err)
		} else {
			status = http.StatusInternalServerError
		}
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		s.log.Error("e2b request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, msg)
}

// explain is the waker's own words for err (wake.Explain).
func explain(err error) string {
	msg, _ := wake.Explain(err)
	return msg
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"code": status, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decode reads a JSON body of at most 1 MiB into v. An empty body leaves v as it is.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "the body is larger than 1 MiB")
		}
		return errorf(http.StatusBadRequest, "the body is not the JSON expected: %v", err)
	}
	return nil
}
