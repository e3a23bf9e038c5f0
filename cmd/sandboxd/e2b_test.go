package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// TestE2BListener: with SANDBOXD_E2B_BIND, one sandboxd serves E2B's API on its own
// listener, envd both there (by header) and through the edge (49983-<id>.preview...), and
// the sandbox's ports at <port>-<id>.preview... beside s-<id>-<port>.
func TestE2BListener(t *testing.T) {
	t.Parallel()
	const key = "e2b_0123456789abcdef0123456789abcdef01234567"
	e := newEnv(t)
	e.vars["SANDBOXD_E2B_BIND"] = "127.0.0.1:0"
	e.vars["SANDBOXD_API_TOKENS"] = "sdk:" + key
	d := e.start()
	m := regexp.MustCompile(`"e2b":"([^"]+)"`).FindStringSubmatch(d.logs.String())
	if m == nil {
		t.Fatalf("no e2b address in the serving line\n%s", d.logs)
	}
	e2bURL := "http://" + m[1]

	send := func(method, url, host string, hdr map[string]string, body []byte) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := send("POST", e2bURL+"/sandboxes", "", map[string]string{"X-API-Key": key, "Content-Type": "application/json"},
		[]byte(`{"templateID":"base","timeout":120}`))
	var sb struct {
		SandboxID, EnvdAccessToken string
		Domain                     string
	}
	json.Unmarshal(body, &sb)
	if code != 201 || sb.Domain != "preview.localhost" || sb.EnvdAccessToken == "" {
		t.Fatalf("create: %d %s\n%s", code, body, d.logs)
	}
	// The admin API knows it: one sandboxd.
	if code, body := send("GET", d.API+"/v1/sandboxes/"+sb.SandboxID, "", map[string]string{"Authorization": "Bearer " + key}, nil); code != 200 {
		t.Fatalf("admin API get: %d %s", code, body)
	}

	// A command by Connect, once by header on the E2B listener, once through the edge.
	start, _ := json.Marshal(map[string]any{"process": map[string]any{"cmd": "/bin/bash", "args": []string{"-l", "-c", "echo from $HOSTNAME"}}})
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(start)))
	frame = append(frame, start...)
	rpc := map[string]string{"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1",
		"X-Access-Token": sb.EnvdAccessToken}
	for _, via := range []struct{ url, host, id string }{
		{e2bURL, "", sb.SandboxID},
		{"http://" + d.HTTP, "49983-" + sb.SandboxID + ".preview.localhost", ""},
	} {
		hdr := map[string]string{}
		for k, v := range rpc {
			hdr[k] = v
		}
		if via.id != "" {
			hdr["E2b-Sandbox-Id"] = via.id
		}
		code, body := send("POST", via.url+"/process.Process/Start", via.host, hdr, frame)
		body = bytes.ReplaceAll(body, []byte(" "), nil) // protojson varies its spacing on purpose
		out := base64.StdEncoding.EncodeToString([]byte("from " + sb.SandboxID + "\n"))
		if code != 200 || !bytes.Contains(body, []byte(`"stdout":"`+out+`"`)) || !bytes.Contains(body, []byte(`"exited":true`)) {
			t.Fatalf("start via %s %s: %d %q", via.url, via.host, code, body)
		}
	}

	// The image's devserver on 3000, by both host forms.
	for _, host := range []string{"3000-" + sb.SandboxID + ".preview.localhost", "s-" + sb.SandboxID + "-3000.preview.localhost"} {
		var code int
		var body []byte
		testutil.Eventually(t, 30*time.Second, "the devserver answers at "+host, func() bool {
			code, body = send("GET", "http://"+d.HTTP+"/", host, nil, nil)
			return code == 200
		})
		if !strings.Contains(string(body), "hello from "+sb.SandboxID) {
			t.Fatalf("%s: %d %q", host, code, body)
		}
	}
	if code, _ := send("DELETE", e2bURL+"/sandboxes/"+sb.SandboxID, "", map[string]string{"X-API-Key": key}, nil); code != 204 {
		t.Fatalf("kill: %d", code)
	}
}
