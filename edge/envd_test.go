package edge

import (
	"io"
	"net/http"
	"testing"
)

// TestE2BHostForm: <port>-<id>.preview.<domain> reaches the same app port as
// s-<id>-<port>, and port 49983 goes to the Envd handler, named by the header the
// edge sets, without waking or reaching the sandbox.
func TestE2BHostForm(t *testing.T) {
	t.Parallel()
	var envdSaw []string
	envd := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		envdSaw = append(envdSaw, r.Header.Get("E2b-Sandbox-Id")+" "+r.URL.Path)
		io.WriteString(w, "envd")
	})
	h := newHarness(t, func(s *Server) { s.Envd = envd })
	_, port := h.backend(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "app saw "+r.Host)
	}))
	h.route("abc", Running, port)

	get := func(host, path string, hdr ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+host+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	e2bHost := itoa(port) + "-abc.preview." + testDomain
	if code, body := get(e2bHost, "/"); code != 200 || body != "app saw "+e2bHost {
		t.Fatalf("E2B form: %d %q", code, body)
	}
	if code, body := get(previewHost("abc", port), "/"); code != 200 || body != "app saw "+previewHost("abc", port) {
		t.Fatalf("sandboxd form: %d %q", code, body)
	}

	calls := h.waker.calls.Load()
	// A client's own E2b-Sandbox-Id never picks another sandbox: the host decides.
	if code, body := get("49983-abc.preview."+testDomain, "/health", "E2b-Sandbox-Id", "other"); code != 200 || body != "envd" {
		t.Fatalf("envd host: %d %q", code, body)
	}
	if code, _ := get(previewHost("nosuch", 49983), "/files"); code != 200 {
		t.Fatalf("envd, sandboxd form: %d", code)
	}
	if got := h.waker.calls.Load(); got != calls {
		t.Fatalf("envd requests woke the sandbox %d times", got-calls)
	}
	if len(envdSaw) != 2 || envdSaw[0] != "abc /health" || envdSaw[1] != "nosuch /files" {
		t.Fatalf("envd saw %q", envdSaw)
	}
}

// TestEnvdPortWithoutHandler: without an Envd handler, 49983 is an ordinary port.
func TestEnvdPortWithoutHandler(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.route("abc", Running, 3000)
	resp, err := h.client.Get("http://49983-abc.preview." + testDomain + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("undeclared port 49983 without envd: %d, want 404", resp.StatusCode)
	}
}
