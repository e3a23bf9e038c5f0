package httplog

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStatusWriter(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	rec := httptest.NewRecorder()
	w := NewStatusWriter(rec)
	if w.Status(r) != 0 {
		t.Errorf("nothing written: %d, want 0", w.Status(r))
	}
	w.WriteHeader(http.StatusTeapot)
	w.WriteHeader(http.StatusOK)
	if w.Status(r) != http.StatusTeapot {
		t.Errorf("status %d, want the first, 418", w.Status(r))
	}

	w = NewStatusWriter(httptest.NewRecorder())
	w.Write([]byte("x"))
	if w.Status(r) != http.StatusOK {
		t.Errorf("a write: %d, want 200", w.Status(r))
	}

	up := httptest.NewRequest("GET", "/", nil)
	up.Header.Set("Upgrade", "websocket")
	if s := NewStatusWriter(httptest.NewRecorder()).Status(up); s != http.StatusSwitchingProtocols {
		t.Errorf("a hijacked upgrade: %d, want 101", s)
	}

	// connect-go asserts http.Flusher; http.ResponseController reaches the rest.
	rec = httptest.NewRecorder()
	var hw http.ResponseWriter = NewStatusWriter(rec)
	f, ok := hw.(http.Flusher)
	if !ok {
		t.Fatal("not an http.Flusher")
	}
	f.Flush()
	if !rec.Flushed {
		t.Error("Flush did not reach the writer")
	}
	if err := http.NewResponseController(NewStatusWriter(struct{ http.ResponseWriter }{rec})).Flush(); !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("flushing a writer that cannot: %v, want ErrNotSupported", err)
	}
	if _, _, err := http.NewResponseController(hw).Hijack(); !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("hijack through Unwrap: %v, want ErrNotSupported from the recorder", err)
	}
}
