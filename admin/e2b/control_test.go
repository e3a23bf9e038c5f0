package e2b

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/admin/e2b/envd"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/lifecycle/dockertest"
)

var e2bID = regexp.MustCompile(`^[a-z0-9]+$`)

func TestControlPlane(t *testing.T) {
	st := newStack(t)

	// Auth, in E2B's error shape.
	for _, key := range []string{"", "e2b_nope"} {
		req, _ := http.NewRequest("GET", st.api.URL+"/v2/sandboxes", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e e2bError
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 401 || e.Code != 401 {
			t.Fatalf("key %q: %d %+v", key, resp.StatusCode, e)
		}
	}

	// Bad creates change nothing.
	st.wantError(t, "POST", "/sandboxes", `{"templateID":"no/such:image"}`, 400)
	st.wantError(t, "POST", "/sandboxes", `{"templateID":"base","timeout":0}`, 400)
	st.wantError(t, "POST", "/sandboxes", `{"templateID":"base","timeout":999999}`, 400)
	st.wantError(t, "POST", "/sandboxes", `{}`, 400)
	st.wantError(t, "POST", "/sandboxes", `{"templateID":"base","metadata":{"k":"two\nlines"}}`, 400)
	st.wantError(t, "POST", "/sandboxes", `{"templateID":"base","volumeMounts":[{"name":"v","path":"/data"}]}`, 400)
	st.wantError(t, "POST", "/sandboxes", `{"templateID":`, 400)
	var none []detailView
	if code, _ := st.call(t, "GET", "/v2/sandboxes", "", &none); code != 200 || len(none) != 0 {
		t.Fatalf("after refused creates: %d %v", code, none)
	}

	// Create: 201, an id of letters and digits, the envd facts the SDKs read.
	var a sandboxView
	code, _ := st.call(t, "POST", "/sandboxes", `{"templateID":"base","timeout":300,"metadata":{"userId":"u1","team":"x/y"},"envVars":{"GREETING":"hi"},"secure":true,"allow_internet_access":true}`, &a)
	if code != 201 || !e2bID.MatchString(a.SandboxID) || a.TemplateID != "base" || a.Alias != "base" ||
		a.EnvdVersion != envd.Version || a.EnvdAccessToken == "" || a.Domain == nil || *a.Domain != "preview.test" || a.ClientID == "" {
		t.Fatalf("create: %d %+v", code, a)
	}
	// The second sandbox names its image as the template and pauses at its timeout.
	var b sandboxView
	if code, _ := st.call(t, "POST", "/sandboxes", `{"templateID":"`+dockertest.Testkit+`","timeout":300,"autoPause":true,"metadata":{"userId":"u2"}}`, &b); code != 201 || b.TemplateID != dockertest.Testkit {
		t.Fatalf("create from an image: %d %+v", code, b)
	}

	// Get: the detail, metadata back as given, the env in the sandbox.
	var d detailView
	if code, _ := st.call(t, "GET", "/sandboxes/"+a.SandboxID, "", &d); code != 200 || d.State != "running" ||
		d.Metadata["userId"] != "u1" || d.Metadata["team"] != "x/y" || len(d.Metadata) != 2 || d.Domain == nil ||
		d.EndAt.Sub(time.Now()) < 290*time.Second || d.CPUCount < 1 || d.MemoryMB == 0 {
		t.Fatalf("get: %d %+v", code, d)
	}
	res, err := st.mgr.Exec(context.Background(), a.SandboxID, lifecycle.ExecRequest{Cmd: []string{"sh", "-c", "echo $GREETING"}})
	if err != nil || string(res.Stdout) != "hi\n" {
		t.Fatalf("envVars in the sandbox: %q %v", res.Stdout, err)
	}
	st.wantError(t, "GET", "/sandboxes/nosuch", "", 404)
	st.wantError(t, "GET", "/sandboxes/Bad..ID", "", 404)

	// List: the metadata filter (escaped twice, as the SDKs send it), state, paging.
	listIDs := func(query string) ([]string, string) {
		t.Helper()
		var l []detailView
		code, hdr := st.call(t, "GET", "/v2/sandboxes?"+query, "", &l)
		if code != 200 {
			t.Fatalf("list %s: %d", query, code)
		}
		var ids []string
		for _, x := range l {
			ids = append(ids, x.SandboxID)
		}
		return ids, hdr.Get("X-Next-Token")
	}
	if ids, _ := listIDs("metadata=userId%3Du1"); len(ids) != 1 || ids[0] != a.SandboxID {
		t.Fatalf("metadata filter: %v", ids)
	}
	if ids, _ := listIDs("metadata=team%3Dx%252Fy%26userId%3Du1"); len(ids) != 1 || ids[0] != a.SandboxID {
		t.Fatalf("metadata filter, two pairs: %v", ids)
	}
	if ids, _ := listIDs("metadata=userId%3Dnobody"); len(ids) != 0 {
		t.Fatalf("metadata filter matching none: %v", ids)
	}
	first, next := listIDs("limit=1")
	if len(first) != 1 || next == "" {
		t.Fatalf("page 1: %v, next %q", first, next)
	}
	second, next2 := listIDs("limit=1&nextToken=" + next)
	if len(second) != 1 || second[0] == first[0] || next2 != "" {
		t.Fatalf("page 2: %v, next %q", second, next2)
	}
	if ids, _ := listIDs("state=paused"); len(ids) != 0 {
		t.Fatalf("paused while none is: %v", ids)
	}
	st.wantError(t, "GET", "/v2/sandboxes?state=sleeping", "", 400)
	st.wantError(t, "GET", "/v2/sandboxes?limit=0", "", 400)

	// Timeout, metrics.
	if code, _ := st.call(t, "POST", "/sandboxes/"+a.SandboxID+"/timeout", `{"timeout":60}`, nil); code != 204 {
		t.Fatalf("timeout: %d", code)
	}
	st.call(t, "GET", "/sandboxes/"+a.SandboxID, "", &d)
	if left := time.Until(d.EndAt); left > 61*time.Second || left < 50*time.Second {
		t.Fatalf("end after timeout 60: in %s", left)
	}
	st.wantError(t, "POST", "/sandboxes/nosuch/timeout", `{"timeout":60}`, 404)
	st.wantError(t, "POST", "/sandboxes/"+a.SandboxID+"/timeout", `{}`, 400)
	var m []metricView
	if code, _ := st.call(t, "GET", "/sandboxes/"+a.SandboxID+"/metrics", "", &m); code != 200 || len(m) != 1 || m[0].MemTotal == 0 || m[0].CPUCount < 1 {
		t.Fatalf("metrics: %d %+v", code, m)
	}
	st.wantError(t, "GET", "/sandboxes/nosuch/metrics", "", 404)

	// Pause: 204, then 409; paused in get and list; no metrics; connect resumes (201),
	// then finds it running (200).
	if code, _ := st.call(t, "POST", "/sandboxes/"+a.SandboxID+"/pause", "", nil); code != 204 {
		t.Fatalf("pause: %d", code)
	}
	st.wantError(t, "POST", "/sandboxes/"+a.SandboxID+"/pause", "", 409)
	st.wantError(t, "POST", "/sandboxes/nosuch/pause", "", 404)
	if st.call(t, "GET", "/sandboxes/"+a.SandboxID, "", &d); d.State != "paused" {
		t.Fatalf("state after pause: %q", d.State)
	}
	if ids, _ := listIDs("state=paused"); len(ids) != 1 || ids[0] != a.SandboxID {
		t.Fatalf("paused list: %v", ids)
	}
	if ids, _ := listIDs("state=running"); len(ids) != 1 || ids[0] != b.SandboxID {
		t.Fatalf("running list: %v", ids)
	}
	// The JS SDK repeats the parameter where Python joins with commas.
	if ids, _ := listIDs("state=running&state=paused"); len(ids) != 2 {
		t.Fatalf("both states, JS form: %v", ids)
	}
	if ids, _ := listIDs("state=running,paused"); len(ids) != 2 {
		t.Fatalf("both states, Python form: %v", ids)
	}
	if code, _ := st.call(t, "GET", "/sandboxes/"+a.SandboxID+"/metrics", "", &m); code != 200 || len(m) != 0 {
		t.Fatalf("metrics while paused: %d %+v", code, m)
	}
	var c sandboxView
	if code, _ := st.call(t, "POST", "/sandboxes/"+a.SandboxID+"/connect", `{"timeout":120}`, &c); code != 201 || c.SandboxID != a.SandboxID || c.EnvdAccessToken != a.EnvdAccessToken {
		t.Fatalf("connect to paused: %d %+v", code, c)
	}
	if code, _ := st.call(t, "POST", "/sandboxes/"+a.SandboxID+"/connect", `{"timeout":30}`, &c); code != 200 {
		t.Fatalf("connect to running: %d", code)
	}
	// Connect to a running sandbox never brings its end closer.
	if st.call(t, "GET", "/sandboxes/"+a.SandboxID, "", &d); time.Until(d.EndAt) < 100*time.Second {
		t.Fatalf("connect with a shorter timeout moved the end to %s", d.EndAt)
	}
	st.wantError(t, "POST", "/sandboxes/nosuch/connect", `{"timeout":30}`, 404)
	st.wantError(t, "POST", "/sandboxes/"+a.SandboxID+"/connect", `{}`, 400)

	// envd on this listener, routed by E2b-Sandbox-Id, and through the edge's host.
	for _, target := range []struct{ url, host string }{
		{st.api.URL + "/health", ""},
		{st.edge.URL + "/health", "49983-" + a.SandboxID + ".preview.test"},
	} {
		req, _ := http.NewRequest("GET", target.url, nil)
		if target.host != "" {
			req.Host = target.host
		} else {
			req.Header.Set(envd.HeaderSandboxID, a.SandboxID)
		}
		req.Header.Set(envd.HeaderAccessToken, a.EnvdAccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("envd health via %s %s: %d", target.url, target.host, resp.StatusCode)
		}
	}

	// The timeouts: a sweep past the ends kills a and pauses b (autoPause).
	st.srv.sweep(context.Background(), time.Now().Add(time.Hour))
	st.wantError(t, "GET", "/sandboxes/"+a.SandboxID, "", 404)
	if st.call(t, "GET", "/sandboxes/"+b.SandboxID, "", &d); d.State != "paused" {
		t.Fatalf("autoPause sandbox after its timeout: %q", d.State)
	}
	if st.mgr.WorkspaceExists(a.SandboxID) {
		t.Fatal("a killed sandbox kept its workspace")
	}

	// Kill: 204, then 404.
	if code, _ := st.call(t, "DELETE", "/sandboxes/"+b.SandboxID, "", nil); code != 204 {
		t.Fatalf("kill: %d", code)
	}
	st.wantError(t, "DELETE", "/sandboxes/"+b.SandboxID, "", 404)

	want := []string{"tester e2b.sandbox.create", "tester e2b.sandbox.create", "tester e2b.sandbox.timeout",
		"tester e2b.sandbox.pause", "tester e2b.sandbox.resume", "sandboxd e2b.sandbox.timeout.kill",
		"sandboxd e2b.sandbox.timeout.pause", "tester e2b.sandbox.purge"}
	got := st.audits.actions()
	for _, w := range want {
		if !contains(got, w) {
			t.Errorf("audit has no %q: %v", w, got)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// A timeout too large for a Duration is refused as out of range: the seconds used to be
// multiplied first, so 18446744074 wrapped to under a second and 9223372037 to a negative
// timeout, and both passed the check. Neither creates a sandbox nor moves an end.
func TestTimeoutOverflow(t *testing.T) {
	st := newStack(t)
	for _, n := range []string{"18446744074", "9223372037"} {
		st.wantError(t, "POST", "/sandboxes", `{"templateID":"base","timeout":`+n+`}`, 400)
	}
	var list []detailView
	if code, _ := st.call(t, "GET", "/v2/sandboxes", "", &list); code != 200 || len(list) != 0 {
		t.Fatalf("after the refused creates: %d, %d sandboxes, want none", code, len(list))
	}
	var a sandboxView
	if code, _ := st.call(t, "POST", "/sandboxes", `{"templateID":"base","timeout":300}`, &a); code != 201 {
		t.Fatalf("create: %d", code)
	}
	for _, n := range []string{"18446744074", "9223372037"} {
		st.wantError(t, "POST", "/sandboxes/"+a.SandboxID+"/timeout", `{"timeout":`+n+`}`, 400)
	}
	var d detailView
	if code, _ := st.call(t, "GET", "/sandboxes/"+a.SandboxID, "", &d); code != 200 || time.Until(d.EndAt) < 290*time.Second || time.Until(d.EndAt) > 300*time.Second {
		t.Fatalf("after the refused timeouts: %d, end in %s, want the create's 300s", code, time.Until(d.EndAt))
	}
}
