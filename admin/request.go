package admin

import (
	"net/http"

	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/internal/httplog"
)

// requestInfo is what the layers of one request tell each other: logRequests makes it,
// authenticate names the principal, handlers and writeError add to the audit line, and the
// audit and the request log read it at the end. One goroutine serves a request, so it
// needs no lock.
type requestInfo struct {
	id        string                // X-Request-Id
	w         *httplog.StatusWriter // what was answered
	principal *apikey.Principal     // nil until authenticated

	// The audit line: record and writeError fill it in.
	noted      bool   // the handler called record: audit even a GET (the terminal)
	target     string // what the handler says it acted on, when the route names nothing
	detail     string
	resultCode string // the error code answered, if any
}

type ctxKey int

const infoKey ctxKey = 0

// infoOf is r's request info; a request that did not come through logRequests (none
// does, outside tests of single handlers) gets a blank one.
func infoOf(r *http.Request) *requestInfo {
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// operator is the principal of every request when the API asks for no token.
var operator = apikey.Principal{Name: "operator"}

func (i *requestInfo) actor() string {
	if i.principal == nil {
		return "-" // refused before anyone was named
	}
	return i.principal.Name
}

func (i *requestInfo) tenant() string {
	if i.principal == nil {
		return ""
	}
	return i.principal.Tenant
}

// actor is the token name of the request, or "operator" when auth is off.
func actor(r *http.Request) string { return infoOf(r).actor() }

// principalOf is who r acts as; ok is false when nobody was authenticated (an open path).
func principalOf(r *http.Request) (p apikey.Principal, ok bool) {
	info := infoOf(r)
	if info.principal == nil {
		return apikey.Principal{}, false
	}
	return *info.principal, true
}
