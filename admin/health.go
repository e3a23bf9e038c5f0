package admin

import (
	"context"
	"net/http"
	"time"
)

// Pinger checks what readiness depends on (the database and the engine).
type Pinger interface {
	Ping(ctx context.Context) error
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz checks the database and the engine; the answer is cached for a couple of seconds
// so a probe storm costs one check.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	s.readyMu.Lock()
	if s.now().Sub(s.readyAt) > s.readyTTL {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		s.readyErr = s.health.Ping(ctx)
		cancel()
		s.readyAt = s.now()
	}
	err := s.readyErr
	s.readyMu.Unlock()
	if err != nil {
		s.log.Warn("not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]string{"code": "not_ready", "message": err.Error()}})
		return nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
	return nil
}

// metrics serves Prometheus metrics; it needs a token like every route when tokens are set.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		s.writeError(w, r, &apiError{http.StatusNotFound, "not_found", "metrics are not enabled"})
		return
	}
	s.Metrics.ServeHTTP(w, r)
}
