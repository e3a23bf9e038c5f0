package envd

import (
	"net/http"
	"strings"
)

// CORS: E2B's JS SDK also runs in browsers, where envd is another origin, so envd answers
// any origin, as E2B's own does. That opens nothing: every call needs the sandbox's access
// token in a header (or a signed URL), never a cookie, so a page without the token gets
// 401 like any other client.

// exposed are the answer headers a browser lets the JS SDK read (Connect's own among them).
const exposed = "Connect-Protocol-Version, Connect-Content-Encoding, Content-Encoding, Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Content-Disposition"

// IsEnvdPath reports whether p is one of envd's routes: the E2B listener answers a CORS
// preflight for them, which carries no E2b-Sandbox-Id header to route by.
func IsEnvdPath(p string) bool {
	return isRPC(p) || p == "/files" || p == "/health"
}

// Preflight answers a browser's CORS preflight and reports whether r was one; for any
// other request from a page it adds the headers that let the page read the answer.
func Preflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Origin") == "" {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		h.Set("Access-Control-Expose-Headers", exposed)
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" {
		h.Set("Access-Control-Allow-Headers", strings.ToLower(asked))
	}
	h.Set("Access-Control-Max-Age", "7200")
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
	return true
}
