package e2b

import "net/http"

// routes lists every route of the control plane. envd's are in package envd.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /sandboxes", s.h(s.create))
	mux.Handle("GET /sandboxes", s.h(s.listV1))
	mux.Handle("GET /v2/sandboxes", s.h(s.listV2))
	mux.Handle("GET /sandboxes/{id}", s.h(s.get))
	mux.Handle("DELETE /sandboxes/{id}", s.h(s.kill))
	mux.Handle("POST /sandboxes/{id}/connect", s.h(s.connect))
	mux.Handle("POST /sandboxes/{id}/resume", s.h(s.resume))
	mux.Handle("POST /sandboxes/{id}/timeout", s.h(s.setTimeout))
	mux.Handle("POST /sandboxes/{id}/pause", s.h(s.pause))
	mux.Handle("GET /sandboxes/{id}/metrics", s.h(s.metrics))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
	open := http.NewServeMux()
	open.Handle("GET /health", mux)
	open.Handle("/", s.authenticate(mux))
	return open
}
