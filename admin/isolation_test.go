package admin

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// The create body's "disk" reaches the lifecycle in bytes; the answer shows the disk and
// the services' env names, never their values (issue 12).
func TestCreateDiskAndWriteOnlyServiceEnv(t *testing.T) {
	var got lifecycle.CreateRequest
	d := Deps{Sandboxes: &fakeSandboxes{CreateFn: func(ctx context.Context, req lifecycle.CreateRequest) (store.Sandbox, error) {
		got = req
		return store.Sandbox{ID: "q", Status: store.StatusRunning, UID: 200001, DiskBytes: req.DiskBytes,
			Services: []store.Service{{Name: "web", Cmd: []string{"x"}, Env: map[string]string{"DB_PASSWORD": "hunter2", "A": "1"}}},
			Disk:     store.DiskUsage{Used: 5, Quota: req.DiskBytes, Inodes: 7, InodeQuota: 9, Enforced: "btrfs"}}, nil
	}}}
	code, body, _ := apiCall(t, d, "POST", "/v1/sandboxes", `{"id":"q","disk":"2G"}`)
	if code != http.StatusCreated || got.DiskBytes != 2<<30 {
		t.Fatalf("create: %d %s; disk %d", code, body, got.DiskBytes)
	}
	for _, want := range []string{`"disk":{"used":5,"quota":2147483648,"inodes":7,"inode_quota":9,"enforced":"btrfs"}`,
		`"env_keys":["A","DB_PASSWORD"]`, `"uid":200001`} {
		if !strings.Contains(body, want) {
			t.Errorf("answer lacks %s: %s", want, body)
		}
	}
	if strings.Contains(body, "hunter2") {
		t.Errorf("answer shows a service env value: %s", body)
	}
	code, _, e := apiCall(t, d, "POST", "/v1/sandboxes", `{"disk":"-1G"}`)
	if code != http.StatusBadRequest || !strings.Contains(e.Error.Message, "disk") {
		t.Errorf("a negative disk: %d %+v", code, e)
	}
}

// A start refused for the quota answers 507 with the lifecycle's message.
func TestDiskQuotaIs507(t *testing.T) {
	status, code, msg := publicError(&lifecycle.Error{Code: lifecycle.CodeDiskQuota, Message: "sandbox x is over its disk quota"})
	if status != http.StatusInsufficientStorage || code != "disk_quota" || msg != "sandbox x is over its disk quota" {
		t.Fatalf("%d %s %q", status, code, msg)
	}
}
