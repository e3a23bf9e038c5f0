package admin

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/wake"
)

// The error funnel logs internal errors, except a start failure the waker already logged
// (issue 10, bug 5: an API start that failed was logged by lifecycle, wake and admin).
func TestWriteErrorLogsInternalErrorsOnce(t *testing.T) {
	internal := errors.New("engine exploded")
	tests := []struct {
		name  string
		err   error
		lines int
	}{
		{"internal error", internal, 1},
		{"start failure the waker logged", &wake.StartError{ID: "sb1", Err: internal}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := New(Deps{}, slog.New(slog.NewJSONHandler(&logs, nil)))
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest("POST", "/v1/sandboxes/sb1/start", nil), tc.err)
			if w.Code != http.StatusInternalServerError {
				t.Errorf("status %d, want 500", w.Code)
			}
			if got := strings.Count(logs.String(), "\n"); got != tc.lines {
				t.Errorf("logged %d lines, want %d:\n%s", got, tc.lines, logs.String())
			}
		})
	}
}
