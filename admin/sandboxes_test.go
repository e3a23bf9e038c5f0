package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/store"
)

// apiCall sends one request to the API over d and answers the status and the decoded
// error (when there is one) or body.
func apiCall(t *testing.T, d Deps, method, target, body string) (int, string, apiErrorBody) {
	t.Helper()
	srv := httptest.NewServer(New(d, nil).Handler())
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiErrorBody
	json.Unmarshal(b, &e)
	return resp.StatusCode, string(b), e
}

type apiErrorBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

// A ?status= that is no state answers 400 and lists the states there are.
func TestListStatusFilter(t *testing.T) {
	var asked []string
	d := Deps{Sandboxes: &fakeSandboxes{ListFn: func(ctx context.Context, o store.ListOptions) ([]store.Sandbox, error) {
		asked = append(asked, o.Status)
		return nil, nil
	}}}
	for _, path := range []string{"/v1/sandboxes", "/sandboxes"} {
		code, _, e := apiCall(t, d, "GET", path+"?status=bogus", "")
		want := `status "bogus" is not a sandbox state: use creating, running, stopping, stopped or error`
		if code != 400 || e.Error.Code != "invalid_request" || e.Error.Message != want {
			t.Fatalf("%s?status=bogus = %d %+v, want 400 %q", path, code, e, want)
		}
	}
	if len(asked) != 0 {
		t.Fatalf("a bad filter reached the list: %q", asked)
	}
	for _, st := range sandboxStates {
		if code, body, _ := apiCall(t, d, "GET", "/v1/sandboxes?status="+st, ""); code != 200 {
			t.Fatalf("?status=%s = %d %s", st, code, body)
		}
	}
	if strings.Join(asked, ",") != "creating,running,stopping,stopped,error" {
		t.Fatalf("filters asked: %q", asked)
	}
}
