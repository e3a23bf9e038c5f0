package admin

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openapiDoc is the OpenAPI 3.1 document of this API, written by hand. openapi_test.go
// holds it to routes.go: every route documented, every documented operation routed.
//
//go:embed openapi.json
var openapiDoc []byte

// OpenAPI is the embedded OpenAPI document, as written (info.version "dev").
func OpenAPI() []byte { return append([]byte(nil), openapiDoc...) }

// openapi answers GET /v1/openapi.json: the document, with info.version the version of
// this sandboxd, so a client can tell which server it speaks to.
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	s.docOnce.Do(func() {
		s.doc = openapiDoc
		if s.Version == "" {
			return
		}
		var doc map[string]any
		if json.Unmarshal(openapiDoc, &doc) != nil {
			return
		}
		if info, ok := doc["info"].(map[string]any); ok {
			info["version"] = s.Version
		}
		if b, err := json.MarshalIndent(doc, "", "  "); err == nil {
			s.doc = b
		}
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(s.doc)
	return nil
}
