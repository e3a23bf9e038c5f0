package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"
)

// routedOperations lists every method and path template of routes.go, the MCP server's
// included.
func routedOperations(t *testing.T) map[string]bool {
	t.Helper()
	s := New(Deps{}, nil)
	s.MCP = http.NotFoundHandler()
	r := mux.NewRouter()
	s.routes(r)
	ops := map[string]bool{}
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			t.Errorf("route %s has no methods: list them in routes.go, so the document can say which", path)
			return nil
		}
		for _, m := range methods {
			ops[m+" "+path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapiDoc)
	if err != nil {
		t.Fatalf("admin/openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("admin/openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// Every route of routes.go is documented in openapi.json, and every documented operation
// is routed. A failure names the operation and where it goes.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc := loadDoc(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi is %q; the document is OpenAPI 3.1", doc.OpenAPI)
	}
	routed := routedOperations(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var missing, stale []string
	for op := range routed {
		if !documented[op] {
			method, path, _ := strings.Cut(op, " ")
			missing = append(missing, op+`: routed in admin/routes.go but not documented; add "paths" → "`+path+`" → "`+strings.ToLower(method)+`" to admin/openapi.json`)
		}
	}
	for op := range documented {
		if !routed[op] {
			stale = append(stale, op+": documented in admin/openapi.json but not routed in admin/routes.go; route it or remove it from the document")
		}
	}
	slices.Sort(missing)
	slices.Sort(stale)
	for _, m := range append(missing, stale...) {
		t.Error(m)
	}
	if len(routed) < 40 {
		t.Errorf("only %d routed operations found: the walk of routes.go misses some", len(routed))
	}
}

// Every operation has an id, a success answer and the error answer; every $ref resolves
// (Validate checked that).
func TestOpenAPIOperationsComplete(t *testing.T) {
	t.Parallel()
	doc := loadDoc(t)
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s has no operationId", name)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %q", name, other, op.OperationID)
			}
			ids[op.OperationID] = name
			if op.Responses.Default() == nil {
				t.Errorf("%s documents no default (error) answer", name)
			}
			ok := false
			for code := range op.Responses.Map() {
				ok = ok || strings.HasPrefix(code, "2") || code == "101" || code == "405"
			}
			if !ok {
				t.Errorf("%s documents no success answer", name)
			}
		}
	}
}

// GET /v1/openapi.json serves the document with this sandboxd's version.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	s := New(Deps{}, nil)
	s.Version = "1.2.3-test"
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct{ Version string }
		Paths   map[string]any
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || doc.Info.Version != "1.2.3-test" ||
		doc.OpenAPI != "3.1.0" || doc.Paths["/v1/sandboxes"] == nil {
		t.Fatalf("%d %s: openapi %q, version %q, %d paths", resp.StatusCode, resp.Header.Get("Content-Type"), doc.OpenAPI, doc.Info.Version, len(doc.Paths))
	}
}
