package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/admin/httpstatus"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// apiError is an error the admin layer itself raises (bad JSON, auth, sizes).
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.message }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...)}
}

// retryAfter marks an error whose answer carries Retry-After.
type retryAfter interface{ RetryAfter() time.Duration }

// writeError answers err as JSON {"error":{"code","message"}}. Only internal errors are
// logged: the rest are the caller's business and already in the request log line.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := publicError(err)
	infoOf(r).resultCode = code // for the audit line
	var ra retryAfter
	after := wakeRetryAfter(err)
	if errors.As(err, &ra) {
		after = ra.RetryAfter()
	}
	if after > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(after.Round(time.Second)/time.Second))))
	}
	if status >= 500 && status != http.StatusServiceUnavailable && !wakeLogged(err) {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", string(lifecycle.ErrorCode(err)), "err", err)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// publicError is the status, code and public message of err: the one mapping that
// writeError and the streams' error events share.
func publicError(err error) (status int, code, msg string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.message
	}
	if ae := wakeError(err); ae != nil {
		return ae.status, ae.code, ae.message
	}
	c := lifecycle.ErrorCode(err)
	status, ok := httpstatus.Of(c)
	if !ok {
		// A code this table lacks (one added to lifecycle without its status) is our bug,
		// not the caller's: 500, and the message stays in the log, for nobody decided it
		// was meant for callers. Without this it reached WriteHeader(0), which panics
		// (issue 10, bug 4).
		return http.StatusInternalServerError, string(lifecycle.CodeInternal), "internal error"
	}
	return status, string(c), lifecycle.ErrorMessage(err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
