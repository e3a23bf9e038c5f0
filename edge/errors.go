package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/wake"
)

// answer is one error response of the edge: the status, a stable code for
// programs, a message for people (never an internal cause).
type answer struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration // sent as Retry-After, in whole seconds, when positive
	// authenticate is sent as WWW-Authenticate, which a 401 must carry.
	authenticate string
	state        string // sent as X-Sandboxd-State, when set (issue 14)
}

// unknownHost answers a Host that names no sandbox; one on the preview domain in the
// wrong shape also hears what the right one is (issue 10: "s-demo.preview.localhost" got
// no hint that it lacks the port).
func unknownHost(host, domain string) answer {
	msg := "no sandbox is served at this host"
	if hint := hostHint(host, domain); hint != "" {
		msg += "; " + hint
	}
	return answer{status: http.StatusNotFound, code: "unknown_host", message: msg}
}

func notFound(id string) answer {
	return answer{status: http.StatusNotFound, code: "not_found", message: "sandbox " + id + " not found"}
}

func portClosed(port int) answer {
	return answer{status: http.StatusBadGateway, code: "port_closed", message: "port " + itoa(port) + " is closed"}
}

func broken(id, why string) answer {
	msg := "sandbox " + id + " is in error"
	if why != "" {
		msg += ": " + why
	}
	return answer{status: http.StatusServiceUnavailable, code: "sandbox_error", message: msg}
}

// codedError is an error that names its code, as lifecycle's errors do; the edge imports
// no lifecycle.
type codedError interface{ ErrorCode() string }

// limitExceeded reports a start refused by its tenant's running limit (issue 13).
func limitExceeded(err error) bool {
	var ce codedError
	return errors.As(err, &ce) && ce.ErrorCode() == "limit_exceeded"
}

// wakeAnswer maps a Wake error to its answer. Start failures were logged by
// wake, once per start; they are not logged again per request.
func wakeAnswer(id string, port int, err error) answer {
	var ce *wake.CapacityError
	var pe *wake.PortClosedError
	switch {
	case limitExceeded(err):
		// Issue 13: the visitor hears why, not that the sandbox broke; it stays asleep
		// until its owner stops another one.
		return answer{status: http.StatusTooManyRequests, code: "limit_exceeded",
			message: "sandbox " + id + " cannot start now: its owner already runs as many sandboxes as allowed"}
	case errors.As(err, &ce):
		return answer{status: http.StatusServiceUnavailable, code: "no_capacity",
			message: "the host is too busy to start sandbox " + id + " now; try again shortly", retryAfter: ce.RetryAfter}
	case errors.As(err, &pe):
		return portClosed(pe.Port)
	case errors.Is(err, wake.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return answer{status: http.StatusGatewayTimeout, code: "wake_timeout",
			message: "sandbox " + id + " did not start in time"}
	default:
		return answer{status: http.StatusServiceUnavailable, code: "sandbox_error",
			message: "sandbox " + id + " failed to start"}
	}
}

// answer writes a: HTML for browsers (Accept names text/html), JSON
// {"error":{"code","message"}} for everyone else.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, a answer) {
	if r.Context().Err() != nil {
		return // the client left
	}
	s.write(w, r, a)
}

// write is answer even to a request whose context ended.
func (s *Server) write(w http.ResponseWriter, r *http.Request, a answer) {
	if rb := bodyOf(r); rb != nil {
		rb.start() // the server is about to read the unread body: bound that read
	}
	if s.OnStatus != nil {
		s.OnStatus(a.status)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if a.authenticate != "" {
		h.Set("WWW-Authenticate", a.authenticate)
	}
	if a.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((a.retryAfter+time.Second-1)/time.Second)))
	}
	if a.state != "" {
		h.Set("X-Sandboxd-State", a.state)
	}
	if wantsHTML(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(a.status)
		fmt.Fprint(w, page(a, r.Method == http.MethodGet))
		return
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = a.code, a.message
	b, _ := json.Marshal(body)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	w.Write(append(b, '\n'))
}

// wantsHTML reports a browser: a navigation (whose Accept need not name
// HTML), or an Accept that names HTML.
func wantsHTML(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" || acceptsHTML(r)
}

// title heads the HTML page of an answer code.
func title(code string) string {
	switch code {
	case "unknown_host":
		return "Nothing here"
	case "not_found":
		return "Sandbox not found"
	case "port_not_declared":
		return "Port not declared"
	case "port_closed":
		return "Port closed"
	case "wake_timeout":
		return "Sandbox still starting"
	case "no_capacity", "edge_busy", "too_many_connections":
		return "Host busy"
	case "body_too_slow":
		return "Upload too slow"
	case "sandbox_error":
		return "Sandbox error"
	case "limit_exceeded":
		return "Too many sandboxes running"
	case "unauthorized":
		return "Preview link missing or expired"
	case "sandbox_sleeping":
		return "Sandbox asleep"
	}
	return "Bad gateway"
}

// page is a small self-contained HTML error page. It never refreshes in a
// loop: only a capacity refusal of a GET retries, once, after Retry-After,
// and sessionStorage remembers the retry for a minute so a host that stays
// busy shows the page instead of reloading forever.
func page(a answer, get bool) string {
	title := title(a.code)
	var retry string
	if a.code == "no_capacity" && a.retryAfter > 0 && get {
		retry = `<script>try{var k="sandboxd-retry:"+location.href,t=+sessionStorage.getItem(k)||0;` +
			`if(Date.now()-t>60000)setTimeout(function(){sessionStorage.setItem(k,Date.now());location.reload()},` +
			strconv.FormatInt(a.retryAfter.Milliseconds(), 10) + `)}catch(e){}</script>`
	}
	return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width,initial-scale=1"><title>` + html.EscapeString(title) + `</title>` +
		`<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;min-height:100vh;display:grid;place-items:center;background:#f6f7f9;color:#1f2328}` +
		`main{max-width:34rem;padding:2rem}h1{font-size:1.3rem;margin:0 0 .5rem}code{color:#57606a;font-size:.85rem}</style></head>` +
		`<body><main><h1>` + html.EscapeString(title) + `</h1><p>` + html.EscapeString(a.message) + `</p>` +
		`<p><code>` + strconv.Itoa(a.status) + ` ` + a.code + `</code></p></main>` + retry + `</body></html>` + "\n"
}

func itoa(n int) string { return strconv.Itoa(n) }
