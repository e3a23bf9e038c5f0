package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/sandboxd/sandboxd/admin/httpstatus"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// Every error answers a status and a JSON body; an error code the table does not know
// (a lifecycle code added without its status) answers 500 internal and is logged, where it
// used to reach WriteHeader(0) and panic (issue 10, bug 4).
func TestWriteErrorStatus(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		status  int
		code    string
		message string
		logged  bool
	}{
		{"invalid", &lifecycle.Error{Code: lifecycle.CodeInvalid, Message: "ports must be 1-65535"}, 400, "invalid_request", "ports must be 1-65535", false},
		{"not found", &lifecycle.Error{Code: lifecycle.CodeNotFound, Message: "sandbox a not found"}, 404, "not_found", "sandbox a not found", false},
		{"conflict", &lifecycle.Error{Code: lifecycle.CodeConflict, Message: "taken"}, 409, "conflict", "taken", false},
		{"unavailable", &lifecycle.Error{Code: lifecycle.CodeUnavailable, Message: "engine down"}, 503, "unavailable", "engine down", false},
		{"unsupported", &lifecycle.Error{Code: lifecycle.CodeUnsupported, Message: "no agent"}, 422, "unprocessable", "no agent", false},
		{"internal", &lifecycle.Error{Code: lifecycle.CodeInternal, Message: "record", Err: errors.New("disk full")}, 500, "internal", "record", true},
		{"plain error", errors.New("boom"), 500, "internal", "internal error", true},
		{"unmapped code", &lifecycle.Error{Code: "quota_exceeded", Message: "over quota"}, 500, "internal", "internal error", true},
		{"unmapped code wrapped", fmt.Errorf("start: %w", &lifecycle.Error{Code: "", Message: "?"}), 500, "internal", "internal error", true},
		{"api error", badRequest("limit must be 1-1000"), 400, "invalid_request", "limit must be 1-1000", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := New(Deps{}, slog.New(slog.NewJSONHandler(&logs, nil)))
			w := httptest.NewRecorder()
			s.writeError(w, httptest.NewRequest("GET", "/v1/sandboxes/a", nil), c.err)
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if w.Code != c.status || body.Error.Code != c.code || body.Error.Message != c.message {
				t.Fatalf("answer %d %+v, want %d %s %q", w.Code, body.Error, c.status, c.code, c.message)
			}
			if got := strings.Contains(logs.String(), `"request failed"`); got != c.logged {
				t.Fatalf("logged %v, want %v: %s", got, c.logged, logs.String())
			}
		})
	}
}

// An error event of a stream carries the same code as the JSON answer would.
func TestPublicErrorUnmappedCode(t *testing.T) {
	status, code, msg := publicError(&lifecycle.Error{Code: "quota_exceeded", Message: "over quota"})
	if status != http.StatusInternalServerError || code != "internal" || msg != "internal error" {
		t.Fatalf("publicError = %d %q %q", status, code, msg)
	}
}

// Every code the Go client names is one the API answers: CodeUnsupported was
// "unsupported" while the API answers "unprocessable" for lifecycle.CodeUnsupported, so a
// client that compared against it never matched.
func TestClientCodesAreAnswered(t *testing.T) {
	answered := map[string]bool{}
	for _, c := range httpstatus.Codes() {
		_, code, _ := publicError(&lifecycle.Error{Code: c, Message: "x"})
		answered[code] = true
	}
	// The codes the admin layer raises itself: the second field of every apiError literal
	// in the package's sources.
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			cl, ok := n.(*ast.CompositeLit)
			if !ok || len(cl.Elts) < 2 {
				return true
			}
			if id, ok := cl.Type.(*ast.Ident); !ok || id.Name != "apiError" {
				return true
			}
			if lit, ok := cl.Elts[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				code, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				answered[code] = true
			}
			return true
		})
	}
	for name, code := range map[string]string{
		"CodeInvalid": client.CodeInvalid, "CodeNotFound": client.CodeNotFound,
		"CodeConflict": client.CodeConflict, "CodeUnavailable": client.CodeUnavailable,
		"CodeUnsupported": client.CodeUnsupported, "CodeUnauthorized": client.CodeUnauthorized,
		"CodeForbidden": client.CodeForbidden, "CodeTooLarge": client.CodeTooLarge,
		"CodeInternal": client.CodeInternal,
	} {
		if !answered[code] {
			t.Errorf("client.%s = %q is no code the API answers (it answers %v)", name, code, answered)
		}
	}
}
