package admin

import (
	"net/http"

	"github.com/gorilla/mux"
)

// routes lists every route of the API. /v1 is canonical; the prior system's paths answer
// unchanged so its README's curl examples run as written.
func (s *Server) routes(r *mux.Router) {
	get, post, put, del, head := http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead

	r.HandleFunc("/healthz", s.healthz).Methods(get, http.MethodHead)
	r.HandleFunc("/readyz", s.h(s.readyz)).Methods(get, http.MethodHead)
	r.HandleFunc("/metrics", s.metrics).Methods(get)

	r.HandleFunc("/v1/sandboxes", s.h(s.create)).Methods(post)
	r.HandleFunc("/v1/sandboxes", s.h(s.list)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}", s.h(s.get)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}", s.h(s.delete)).Methods(del)
	r.HandleFunc("/v1/sandboxes/{id}/start", s.h(s.start)).Methods(post)
	r.HandleFunc("/v1/sandboxes/{id}/stop", s.h(s.stop)).Methods(post)
	r.HandleFunc("/v1/sandboxes/{id}/purge", s.h(s.purge)).Methods(post)
	r.HandleFunc("/v1/sandboxes/{id}/keepalive", s.h(s.keepalive)).Methods(post)
	r.HandleFunc("/v1/sandboxes/{id}/exec", s.h(s.exec)).Methods(post)
	r.HandleFunc("/v1/sandboxes/{id}/execs/{execId}", s.h(s.getExec)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/execs/{execId}/output", s.h(s.getExecOutput)).Methods(get, head)
	r.HandleFunc("/v1/sandboxes/{id}/terminal", s.h(s.terminal)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/tasks", s.h(s.createTask)).Methods(post)
	r.HandleFunc("/v1/sandboxes/{id}/tasks", s.h(s.listTasks)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/tasks/{taskId}", s.h(s.getTask)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/tasks/{taskId}/events", s.h(s.taskEvents)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/tasks/{taskId}/cancel", s.h(s.cancelTask)).Methods(post)
	r.HandleFunc("/v1/images", s.h(s.images)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/services", s.h(s.getServices)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/services", s.h(s.putServices)).Methods(put)

	// Issue 15: the egress policy.
	r.HandleFunc("/v1/sandboxes/{id}/network", s.h(s.getNetwork)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/network", s.h(s.putNetwork)).Methods(put)

	// Files, relative to the sandbox home; they work while the sandbox sleeps.
	r.HandleFunc("/v1/sandboxes/{id}/files", s.h(s.getFiles)).Methods(get, head)
	r.HandleFunc("/v1/sandboxes/{id}/files", s.h(s.putFile)).Methods(put, post)
	r.HandleFunc("/v1/sandboxes/{id}/files", s.h(s.deleteFile)).Methods(del)
	r.HandleFunc("/v1/sandboxes/{id}/files/content", s.h(s.readFile)).Methods(get, head)
	r.HandleFunc("/v1/sandboxes/{id}/files/move", s.h(s.moveFile)).Methods(post)

	// The prior system's paths.
	r.HandleFunc("/sandbox", s.h(s.create)).Methods(post)
	r.HandleFunc("/sandboxes", s.h(s.listLegacy)).Methods(get)
	r.HandleFunc("/sandbox/{id}", s.h(s.get)).Methods(get)
	r.HandleFunc("/sandbox/{id}", s.h(s.delete)).Methods(del)
	r.HandleFunc("/sandbox/{id}/exec", s.h(s.exec)).Methods(post)
	r.HandleFunc("/sandbox/{id}/keepalive", s.h(s.keepalive)).Methods(post)
	r.HandleFunc("/sandbox/{id}/purge", s.h(s.purge)).Methods(post)
	r.HandleFunc("/wake/{id}", s.h(s.start)).Methods(post)
}
