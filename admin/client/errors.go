package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Error codes the API answers with (the "code" of its JSON errors).
const (
	CodeInvalid      = "invalid_request"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeUnavailable  = "unavailable"
	CodeUnsupported  = "unprocessable"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeTooLarge     = "too_large"
	CodeInternal     = "internal"
)

// Error is an answer of the API that is not a success: {"error":{"code","message"}} with
// its HTTP status and the request id sandboxd logged it under. A failure reported inside
// a stream that had begun (a streamed command's error event) has Status 0.
type Error struct {
	Status    int    // HTTP status; 0 for an error event of a stream
	Code      string // not_found, invalid_request, conflict, ...
	Message   string // the API's sentence, meant for people
	RequestID string // X-Request-Id, to find the request in sandboxd's log
	// NoRoute is set when the server has no such route (or not with this method): an
	// older sandboxd than the client, or a feature turned off.
	NoRoute bool
}

// Error is one line: the message, then the status, code and request id.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if b.Len() == 0 {
		b.WriteString(http.StatusText(e.Status))
	}
	b.WriteString(" (")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	b.WriteString(e.Code)
	if e.RequestID != "" {
		b.WriteString(", request " + e.RequestID)
	}
	b.WriteString(")")
	return b.String()
}

// Is makes errors.Is(err, &Error{Code: CodeNotFound}) match any error of that code, and
// errors.Is(err, ErrNoRoute) any answer from a server that lacks the route.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t == ErrNoRoute {
		return e.NoRoute
	}
	return t.Code != "" && t.Code == e.Code && (t.Status == 0 || t.Status == e.Status)
}

// ErrNoRoute matches (errors.Is) an *Error from a server without the route asked for.
var ErrNoRoute = &Error{Code: "no_route"}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// errorFrom reads an error answer. A body that is not the API's JSON (a proxy's page)
// still makes an *Error, with the status text and the start of the body as its message.
func errorFrom(req *http.Request, resp *http.Response) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		e.Code = strings.ReplaceAll(strings.ToLower(http.StatusText(resp.StatusCode)), " ", "_")
		e.Message = req.Method + " " + req.URL.Path + ": " + http.StatusText(resp.StatusCode)
		if s := strings.TrimSpace(string(raw)); s != "" && len(s) < 200 {
			e.Message += ": " + s
		}
	}
	// The API's router answers these for a path or method it does not route.
	e.NoRoute = resp.StatusCode == http.StatusMethodNotAllowed ||
		resp.StatusCode == http.StatusNotFound && strings.HasPrefix(e.Message, "no such route")
	return e
}
