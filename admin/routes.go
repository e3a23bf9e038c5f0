package admin

import (
	"net/http"

	"github.com/gorilla/mux"
)

// routes lists every route of the API. /v1 is canonical; the prior system's paths answer
// unchanged so its README's curl examples run as written. {id} in a path is always a
// sandbox id: scope.go answers a tenant token 404 on every such route of a sandbox not its
// own, and 403 on any route without one that tenantRoutes does not list. audit.go records
// every call but GET and HEAD.
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

	// Issue 14: tiered sleep. Resume is start by another name: an unpause when paused.
	r.HandleFunc("/v1/sandboxes/{id}/pause", s.h(s.pause)).Methods(post)
	r.HandleFunc("/v1/sandboxes/{id}/resume", s.h(s.start)).Methods(post)

	r.HandleFunc("/v1/sandboxes/{id}/services", s.h(s.getServices)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/services", s.h(s.putServices)).Methods(put)

	// Issue 13: who may open the previews, and the tokens that open private ones.
	r.HandleFunc("/v1/sandboxes/{id}/previews", s.h(s.putPreviews)).Methods(put)
	r.HandleFunc("/v1/sandboxes/{id}/preview-tokens", s.h(s.mintPreviewToken)).Methods(post)
	r.HandleFunc("/v1/sandboxes/{id}/preview-tokens/revoke", s.h(s.revokePreviewTokens)).Methods(post)

	// Issue 15: the egress policy.
	r.HandleFunc("/v1/sandboxes/{id}/network", s.h(s.getNetwork)).Methods(get)
	r.HandleFunc("/v1/sandboxes/{id}/network", s.h(s.putNetwork)).Methods(put)

	// Files, relative to the sandbox home; they work while the sandbox sleeps.
	r.HandleFunc("/v1/sandboxes/{id}/files", s.h(s.getFiles)).Methods(get, head)
	r.HandleFunc("/v1/sandboxes/{id}/files", s.h(s.putFile)).Methods(put, post)
	r.HandleFunc("/v1/sandboxes/{id}/files", s.h(s.deleteFile)).Methods(del)
	r.HandleFunc("/v1/sandboxes/{id}/files/content", s.h(s.readFile)).Methods(get, head)
	r.HandleFunc("/v1/sandboxes/{id}/files/move", s.h(s.moveFile)).Methods(post)

	// Issue 13: stored API tokens and the audit log, for admin tokens.
	r.HandleFunc("/v1/tokens", s.h(s.createToken)).Methods(post)
	r.HandleFunc("/v1/tokens", s.h(s.listTokens)).Methods(get)
	r.HandleFunc("/v1/tokens/{name}", s.h(s.deleteToken)).Methods(del)
	r.HandleFunc("/v1/audit", s.h(s.auditList)).Methods(get)

	// Issue 17: the API's own description, and the MCP server (streamable HTTP, stateless:
	// POST only) behind the same auth as every route.
	r.HandleFunc("/v1/openapi.json", s.h(s.openapi)).Methods(get)
	if s.MCP != nil {
		r.Handle("/mcp", s.MCP).Methods(post)
	}

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
