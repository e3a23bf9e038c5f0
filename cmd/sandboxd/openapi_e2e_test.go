package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/sandboxd/sandboxd/admin"
)

// The end-to-end tests check the API's answers against admin/openapi.json with
// kin-openapi's validator: call (harness_test.go) checks every answer it reads, and the
// CLI's tests send every request through validatingClient.

// apiSchema is the document and its router, loaded once per test process.
var apiSchema = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(admin.OpenAPI())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = nil // match the test servers' :0 ports, not the document's default
	return gorillamux.NewRouter(doc)
})

// streamed reports content types whose bodies are streams the schema says nothing of.
func streamed(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "text/event-stream" || mt == "application/x-ndjson"
}

// opaque reports bodies the document gives no structure: bytes (a file's, a log's) and
// plain text. Only JSON bodies have schemas to check.
func opaque(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt != "application/json"
}

// checkAPIResponse fails t when the answer to req does not match the document: a status
// it does not list for the operation, or a body off its schema. Requests to paths the
// document does not describe (the edge, a route it does not know) are not checked here:
// admin's TestOpenAPIMatchesRoutes holds routes and document together.
func checkAPIResponse(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := validateAPIResponse(req, status, header, body); err != nil {
		t.Errorf("the answer to %s %s (%d) does not match admin/openapi.json: %v\nbody: %.600s", req.Method, req.URL.Path, status, err, body)
	}
}

func validateAPIResponse(req *http.Request, status int, header http.Header, body []byte) error {
	router, err := apiSchema()
	if err != nil {
		return fmt.Errorf("load the document: %w", err)
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return nil // not a path of the document
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			// Only JSON bodies have schemas; HEAD has no body. The status and
			// Content-Type are checked whatever the body.
			ExcludeResponseBody: req.Method == http.MethodHead || opaque(header.Get("Content-Type")) || status == http.StatusSwitchingProtocols,
		},
	}
	return openapi3filter.ValidateResponse(req.Context(), in)
}

// validatingTransport checks every answer that passes through it. A streamed answer is
// checked at its start (status, Content-Type); others are read whole, checked, and handed
// on unchanged.
type validatingTransport struct {
	t    testing.TB
	base http.RoundTripper
	mu   sync.Mutex
	n    int // answers checked
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	v.mu.Lock()
	v.n++
	v.mu.Unlock()
	if streamed(resp.Header.Get("Content-Type")) || resp.StatusCode == http.StatusSwitchingProtocols {
		checkAPIResponse(v.t, req, resp.StatusCode, resp.Header, nil)
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	checkAPIResponse(v.t, req, resp.StatusCode, resp.Header, body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (v *validatingTransport) checked() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n
}

// validatingClient is an HTTP client whose answers from the API are checked against the
// document.
func validatingClient(t testing.TB) (*http.Client, *validatingTransport) {
	vt := &validatingTransport{t: t, base: http.DefaultTransport}
	return &http.Client{Transport: vt}, vt
}

// The validator is no rubber stamp: an answer off the schema fails it.
func TestAPIValidatorRejects(t *testing.T) {
	t.Parallel()
	get := func(path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1"+path, nil)
		return r
	}
	json := http.Header{"Content-Type": {"application/json"}}
	for _, c := range []struct {
		name   string
		req    *http.Request
		status int
		body   string
		ok     bool
	}{
		{"a sandbox", get("/v1/sandboxes/a"), 200, `{"status":"running","image":"x","ports":[],"preview_urls":{},"env_keys":[],"labels":{},"services":[],"memory":1,"cpus":1,"idle_policy":"sleep","host_header":"preview","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_active_at":"2026-01-01T00:00:00Z","id":"a"}`, true},
		{"a sandbox without its id", get("/v1/sandboxes/a"), 200, `{"status":"running","image":"x","ports":[],"preview_urls":{},"env_keys":[],"labels":{},"services":[],"memory":1,"cpus":1,"idle_policy":"sleep","host_header":"preview","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_active_at":"2026-01-01T00:00:00Z"}`, false},
		{"ports as a string", get("/v1/sandboxes/a"), 200, `{"status":"running","image":"x","ports":"3000","preview_urls":{},"env_keys":[],"labels":{},"services":[],"memory":1,"cpus":1,"idle_policy":"sleep","host_header":"preview","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_active_at":"2026-01-01T00:00:00Z","id":"a"}`, false},
		{"an error", get("/v1/sandboxes/a"), 404, `{"error":{"code":"not_found","message":"no"}}`, true},
		{"an error without its message", get("/v1/sandboxes/a"), 404, `{"error":{"code":"not_found"}}`, false},
		{"a status the operation does not list", get("/v1/sandboxes"), 201, `{"sandboxes":[],"next_cursor":""}`, false},
		{"a task with a null exit code", get("/v1/sandboxes/a/tasks/t"), 200, `{"sandbox_id":"a","agent":"claude","prompt":"p","status":"running","created_at":"2026-01-01T00:00:00Z","events_url":"/x","final_message":"","files_changed":[],"duration_ms":1,"usage":{"input_tokens":0,"output_tokens":0,"cache_read_tokens":0,"cache_write_tokens":0,"cost_usd":0},"exit_code":null,"id":"t"}`, true},
	} {
		err := validateAPIResponse(c.req, c.status, json, []byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%s: valid=%v, want %v (%v)", c.name, err == nil, c.ok, err)
		}
	}
	if err := validateAPIResponse(get("/nothing/here"), 200, json, []byte("{}")); err != nil {
		t.Errorf("a path the document does not have is not checked here: %v", err)
	}
	if !strings.Contains(fmt.Sprint(validateAPIResponse(get("/v1/sandboxes/a"), 200, json, []byte(`{}`))), "id") {
		t.Error("the error does not name the missing property")
	}
}
