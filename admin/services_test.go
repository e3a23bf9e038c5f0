package admin

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// The image's own command, which sandbox-init runs as "main", says so instead of showing
// "cmd":null; declared services show their command.
func TestServicesListSaysWhereEachComesFrom(t *testing.T) {
	d := Deps{Services: &fakeServices{ServicesFn: func(ctx context.Context, id string) ([]lifecycle.ServiceState, error) {
		return []lifecycle.ServiceState{
			{Service: store.Service{Name: "web", Cmd: []string{"devserver"}, Port: 4000}, State: "running", PID: 12},
			{Service: store.Service{Name: "main", Port: 3000}, State: "running", PID: 7},
		}, nil
	}}}
	code, body, _ := apiCall(t, d, "GET", "/v1/sandboxes/a/services", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var got struct{ Services []map[string]any }
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Services) != 2 {
		t.Fatalf("%s: %v", body, err)
	}
	web, main := got.Services[0], got.Services[1]
	if web["source"] != "declared" || web["note"] != nil || web["cmd"] == nil || web["port"] != 4000.0 {
		t.Errorf("web: %v", web)
	}
	if _, hasCmd := main["cmd"]; hasCmd || main["source"] != "image" || main["note"] != imageServiceNote || main["port"] != 3000.0 {
		t.Errorf("main: %v", main)
	}
}
