package admin

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// Tenant scope (issue 13). A tenant token acts on its own tenant's sandboxes only. The
// check is one middleware over every matched route, not a line in each handler, so a
// route added later is scoped by construction:
//   - a route whose path names a sandbox ({id}) answers a tenant the same 404 for another
//     tenant's sandbox as for one that does not exist, before its handler runs: the
//     answer is made here, from the id alone, so no handler can tell them apart;
//   - any other route is for admins, unless tenantRoutes lists it: a new global route
//     (a listing, a setting) is closed to tenants until someone decides otherwise.

// tenantRoutes are the path templates without a sandbox id that tenant tokens may call,
// or "METHOD template" for one method of one; their handlers filter by the caller's tenant
// (create, list, images).
var tenantRoutes = map[string]bool{
	"/v1/sandboxes": true, "/v1/images": true,
	"/sandbox": true, "/sandboxes": true,
	"GET /v1/templates": true, // issue 18: every tenant reads templates; only admins publish
}

// tenantRoute reports whether a tenant token may call method on tmpl.
func tenantRoute(method, tmpl string) bool {
	return tenantRoutes[tmpl] || tenantRoutes[method+" "+tmpl]
}

func (s *Server) scoped(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principalOf(r)
		if !ok && openPaths[r.URL.Path] || ok && p.Admin() {
			next.ServeHTTP(w, r)
			return
		}
		if !ok { // authenticate names everyone it lets past an open path: fail closed
			s.writeError(w, r, &apiError{http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"})
			return
		}
		tmpl, _ := mux.CurrentRoute(r).GetPathTemplate()
		id, named := mux.Vars(r)["id"]
		switch {
		case named && strings.Contains(tmpl, "{id}"):
			// A malformed id gets the handler's 400, which depends on its shape alone.
			if lifecycle.ValidID(id) {
				sb, err := s.sandboxes.Get(r.Context(), id)
				if err != nil && lifecycle.ErrorCode(err) != lifecycle.CodeNotFound {
					s.writeError(w, r, err)
					return
				}
				if err != nil || sb.Tenant != p.Tenant {
					s.writeError(w, r, notFound(id))
					return
				}
			}
		case !tenantRoute(r.Method, tmpl):
			s.writeError(w, r, &apiError{http.StatusForbidden, "forbidden",
				"this route needs an admin token: a tenant token reaches its own sandboxes only"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notFound is the one answer for a sandbox a tenant may not know of, whether it exists
// or not: the words of lifecycle's own "not found".
func notFound(id string) error {
	return &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: "sandbox " + id + " not found"}
}
