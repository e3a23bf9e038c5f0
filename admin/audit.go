package admin

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// The audit log (issue 13): one line for every call that may change something, whoever
// made it and however it ended, written by one middleware over every matched route, so a
// route added later is audited by construction. A line names the actor (token name) and
// its tenant, the action (the route), the target sandbox, the status and result, the
// request id of the request log line, and the time. Calls refused before routing (no
// valid token, a cross-site page) are in the request log only: they have no actor.

// Auditor records who changed what.
type Auditor interface {
	AppendAudit(ctx context.Context, a store.Audit) error
}

// AuditLog reads the audit log.
type AuditLog interface {
	ListAudit(ctx context.Context, q store.AuditQuery) ([]store.Audit, error)
}

// mutating methods are audited; a GET only when its handler records (the terminal).
func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func (s *Server) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := s.now()
		next.ServeHTTP(w, r)
		info := infoOf(r)
		if s.audit == nil || !mutating(r.Method) && !info.noted {
			return
		}
		vars := mux.Vars(r)
		target := vars["id"]
		switch {
		case target != "":
		case vars["name"] != "":
			target = clip("token:"+vars["name"], maxAuditTarget)
		default:
			target = info.target
		}
		status := 0
		if info.w != nil {
			status = info.w.Status(r)
		}
		result := "ok"
		if status >= 400 || status == 0 {
			result = info.resultCode
			if result == "" {
				result = strconv.Itoa(status)
			}
		}
		tmpl, _ := mux.CurrentRoute(r).GetPathTemplate()
		err := s.audit.AppendAudit(context.WithoutCancel(r.Context()), store.Audit{
			At: at, Actor: info.actor(), Tenant: info.tenant(), Action: r.Method + " " + canonicalRoute(tmpl),
			Target: target, Detail: info.detail, Status: status, Result: result, RequestID: info.id,
		})
		if err != nil {
			s.log.Error("audit", "request_id", info.id, "err", err)
		}
	})
}

// canonicalRoute is the /v1 route a path template serves: the prior system's paths are
// audited under the route they share a handler with, so one query finds both.
func canonicalRoute(tmpl string) string {
	switch {
	case tmpl == "/sandbox" || tmpl == "/sandboxes":
		return "/v1/sandboxes"
	case strings.HasPrefix(tmpl, "/sandbox/"):
		return "/v1/sandboxes/" + strings.TrimPrefix(tmpl, "/sandbox/")
	case tmpl == "/wake/{id}":
		return "/v1/sandboxes/{id}/start"
	}
	return tmpl
}

// record adds what the handler knows to the request's audit line: what it did (name, like
// "file.put") and details, and the target when the route names none (create). A GET
// whose handler records is audited too.
func (s *Server) record(r *http.Request, name, target, detail string) {
	info := infoOf(r)
	info.noted = true
	if target != "" {
		info.target = clip(target, maxAuditTarget)
	}
	info.detail = clip(strings.TrimSpace(name+" "+detail), maxAuditDetail)
}

// Bounds of what a caller's input puts in an audit line (a command's first word, a file's
// path, a token's name): a tenant must not fill the disk through the log, whose row count
// is bounded too (store.DefaultAuditMaxRows).
const (
	maxAuditDetail = 256
	maxAuditTarget = 80
)

// clip cuts s to at most n bytes, at a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

type auditView struct {
	Seq       int64     `json:"seq"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Tenant    string    `json:"tenant"`
	Action    string    `json:"action"`
	Target    string    `json:"target"`
	Detail    string    `json:"detail"`
	Status    int       `json:"status"`
	Result    string    `json:"result"`
	RequestID string    `json:"request_id"`
}

// auditList answers GET /v1/audit?sandbox=&tenant=&since=&limit=&cursor=, oldest first;
// next_cursor, when set, is the cursor of the next page. since is a time (RFC 3339) or a
// duration back from now ("1h").
func (s *Server) auditList(w http.ResponseWriter, r *http.Request) error {
	if s.auditLog == nil {
		return &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "the audit log is not available on this server"}
	}
	v := r.URL.Query()
	q := store.AuditQuery{Target: v.Get("sandbox"), Tenant: v.Get("tenant"), Limit: 100}
	if q.Target != "" && !lifecycle.ValidID(q.Target) {
		return badRequest("sandbox %q is not a sandbox id", q.Target)
	}
	if q.Tenant != "" && !lifecycle.ValidTenant(q.Tenant) {
		return badRequest("tenant %q is not a tenant name", q.Tenant)
	}
	if since := v.Get("since"); since != "" {
		if t, err := time.Parse(time.RFC3339, since); err == nil {
			q.Since = t
		} else if d, err := time.ParseDuration(since); err == nil && d > 0 {
			q.Since = s.now().Add(-d)
		} else {
			return badRequest("since must be a time like 2030-01-02T15:04:05Z or a duration back from now like 1h; got %q", since)
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit must be 1-1000")
		}
		q.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			return badRequest("cursor must be a next_cursor this route answered")
		}
		q.After = n
	}
	q.Limit++ // one more tells whether there is a next page
	list, err := s.auditLog.ListAudit(r.Context(), q)
	if err != nil {
		return &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "read the audit log", Err: err}
	}
	next := ""
	if len(list) == q.Limit {
		list = list[:q.Limit-1]
		next = strconv.FormatInt(list[len(list)-1].Seq, 10)
	}
	views := make([]auditView, len(list))
	for i, a := range list {
		views[i] = auditView{Seq: a.Seq, At: a.At, Actor: a.Actor, Tenant: a.Tenant, Action: a.Action, Target: a.Target,
			Detail: a.Detail, Status: a.Status, Result: a.Result, RequestID: a.RequestID}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": views, "next_cursor": next})
	return nil
}
