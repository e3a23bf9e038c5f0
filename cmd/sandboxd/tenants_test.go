package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// tenantCall is call with a bearer token; it answers the status and the raw body.
func tenantCall(t *testing.T, d *daemon, token, method, path, body string) (int, string) {
	t.Helper()
	var raw []byte
	code := callAs(t, token, method, d.API+path, body, &raw)
	return code, string(raw)
}

// Issue 13 end to end, on the real engine and the real store: tenant tokens from the
// environment, ids in the tenant's namespace, another tenant's sandbox as good as absent,
// the running limit on a create and on a preview wake, and the audit naming who did what.
// Two small sandboxes; the route-by-route proofs are admin's unit tests.
func TestTenantsEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["SANDBOXD_API_TOKENS"] = "root:r00t-secret,alice:alice-secret:tenant=a,bob:bob-secret:tenant=b"
	e.vars["SANDBOXD_TENANT_MAX_RUNNING"] = "1"
	d := e.start()

	code, body := tenantCall(t, d, "alice-secret", "POST", "/v1/sandboxes", `{"ports":[3000]}`)
	var first sandboxJSON
	json.Unmarshal([]byte(body), &first)
	if code != 201 || !strings.HasPrefix(first.ID, "a--") || !strings.Contains(body, `"tenant":"a"`) {
		t.Fatalf("alice creates: %d %s", code, body)
	}
	// Bob: alice's sandbox answers as one that does not exist, and its id is not his to take.
	for _, path := range []string{"/v1/sandboxes/" + first.ID, "/v1/sandboxes/" + first.ID + "/exec"} {
		code, body := tenantCall(t, d, "bob-secret", "POST", path, `{"cmd":["true"]}`)
		ghostCode, ghost := tenantCall(t, d, "bob-secret", "POST", strings.Replace(path, first.ID, "a--ghost", 1), `{"cmd":["true"]}`)
		if path == "/v1/sandboxes/"+first.ID {
			code, body = tenantCall(t, d, "bob-secret", "GET", path, "")
			ghostCode, ghost = tenantCall(t, d, "bob-secret", "GET", "/v1/sandboxes/a--ghost", "")
		}
		if code != 404 || ghostCode != 404 || body != strings.ReplaceAll(ghost, "a--ghost", first.ID) {
			t.Errorf("bob on %s: %d %s; on a missing sandbox: %d %s", path, code, body, ghostCode, ghost)
		}
	}
	if code, body := tenantCall(t, d, "bob-secret", "POST", "/v1/sandboxes", `{"id":"`+first.ID+`"}`); code != 400 || !strings.Contains(body, `outside tenant b`) {
		t.Errorf("bob takes alice's id: %d %s", code, body)
	}
	if code, body := tenantCall(t, d, "bob-secret", "GET", "/v1/sandboxes", ""); code != 200 || strings.Contains(body, first.ID) {
		t.Errorf("bob lists: %d %s", code, body)
	}

	// Alice runs one sandbox, her limit: a second create is refused, and so is waking the
	// first through its preview while the second runs.
	if code, body := tenantCall(t, d, "alice-secret", "POST", "/v1/sandboxes", `{}`); code != 429 || !strings.Contains(body, `"code":"limit_exceeded"`) {
		t.Fatalf("a second running sandbox: %d %s", code, body)
	}
	if code, body := tenantCall(t, d, "alice-secret", "POST", "/v1/sandboxes/"+first.ID+"/stop", ""); code != 200 {
		t.Fatalf("stop: %d %s", code, body)
	}
	code, body = tenantCall(t, d, "alice-secret", "POST", "/v1/sandboxes", `{"id":"a--second"}`)
	if code != 201 {
		t.Fatalf("a second sandbox once the first sleeps: %d %s", code, body)
	}
	resp, page := preview(t, d, first.ID, 3000, "GET", "/", "", http.Header{"Accept": {"text/html"}})
	if resp.StatusCode != 429 || !strings.Contains(page, "Too many sandboxes running") {
		t.Errorf("preview wake over the limit: %d %s", resp.StatusCode, page)
	}
	if code, body := tenantCall(t, d, "alice-secret", "GET", "/v1/sandboxes/"+first.ID, ""); code != 200 || !strings.Contains(body, `"status":"stopped"`) {
		t.Errorf("after the refused wake: %d %s", code, body)
	}

	// The audit names each actor, refusals included; the request log too.
	code, audit := tenantCall(t, d, "r00t-secret", "GET", "/v1/audit?sandbox="+first.ID, "")
	for _, want := range []string{
		`"actor":"alice","tenant":"a","action":"POST /v1/sandboxes","target":"` + first.ID + `"`,
		`"actor":"bob","tenant":"b","action":"POST /v1/sandboxes/{id}/exec","target":"` + first.ID + `","detail":"","status":404,"result":"not_found"`,
		`"actor":"alice","tenant":"a","action":"POST /v1/sandboxes/{id}/stop","target":"` + first.ID + `","detail":"sandbox.stop","status":200,"result":"ok"`,
	} {
		if code != 200 || !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
	if !strings.Contains(d.logs.String(), `"actor":"alice"`) {
		t.Errorf("the request log never names alice")
	}
}
