package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/sandboxd/sandboxd/internal/netpolicy"
	"github.com/sandboxd/sandboxd/store"
)

// TestClientSandboxDecodesView holds the Go client's Sandbox to the API's sandbox view: a
// view with every field set decodes into client.Sandbox with unknown fields refused, so a
// field added to the view and not to the client fails here.
func TestClientSandboxDecodesView(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	s := &Server{
		PreviewURL: func(id string, port int) string { return fmt.Sprintf("https://%d-%s.preview.test", port, id) },
		egress:     fakeEgress{denied: []netpolicy.Denial{{At: at, Host: "example.com:443", Reason: netpolicy.ReasonNotListed}}, operator: []string{"registry.npmjs.org"}},
	}
	sb := store.Sandbox{
		ID: "full", Status: store.StatusPaused, Image: "img:1", Ports: []int{3000}, EnvKeys: []string{"A"},
		Labels:      map[string]string{"k": "v"},
		Services:    []store.Service{{Name: "web", Cmd: []string{"npm", "start"}, Cwd: "/w", Env: map[string]string{"S": "x"}, Port: 3000}},
		MemoryBytes: 1 << 30, NanoCPUs: 1.5e9, IdleTimeout: 15 * time.Minute, IdlePolicy: store.IdleSleep,
		HostHeader: "localhost", Tenant: "acme", Egress: netpolicy.Proxy, EgressAllow: []string{"pypi.org"},
		ContainerID: "c1", IP: "10.0.0.2", Error: "it failed once",
		CreatedAt: at, UpdatedAt: at, LastActiveAt: at, KeepaliveUntil: at.Add(time.Hour),
		Previews: store.Previews{Access: "private", Ports: map[int]string{3000: "public"}},
		LastExit: store.Exit{Code: 137, Reason: "oom", At: at},
		UID:      10001,
		Disk:     store.DiskUsage{Used: 1, Quota: 2, Inodes: 3, InodeQuota: 4, Enforced: "scan", Snapshots: 5},
		WakeOn:   store.WakeOnAny, StopAfter: time.Hour, PausedAt: at,
	}
	views := map[string]any{
		"view": s.view(sb),
		"start": struct { // POST .../start adds how long the wake took
			WakeMS int64 `json:"wake_duration_ms"`
			sandboxView
		}{42, s.view(sb)},
	}
	for name, v := range views {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		// Every field of the view shows, omitempty ones too: the sandbox above must set
		// each, or a field added later would go unchecked.
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			t.Fatal(err)
		}
		for _, missing := range absentFields(reflect.TypeOf(v), generic, "") {
			t.Errorf("%s: %s is not in %s: set it in the sandbox of this test", name, missing, b)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var got client.Sandbox
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("%s: client.Sandbox does not take the view: %v\n%s", name, err, b)
		}
		if got.ID != "full" || got.Tenant != "acme" || got.Previews.Ports["3000"] != "public" || got.LastExit == nil ||
			got.LastExit.Code != 137 || got.Disk.Snapshots != 5 || got.WakeOn != store.WakeOnAny || got.StopAfter != "1h0m0s" ||
			got.PausedAt == nil || !got.PausedAt.Equal(at) || got.Network.Egress != netpolicy.Proxy ||
			len(got.Network.DeniedRecent) != 1 || got.Network.DeniedRecent[0].Host != "example.com:443" ||
			len(got.Network.OperatorAllow) != 1 || got.UID != 10001 || len(got.Services) != 1 ||
			len(got.Services[0].EnvKeys) != 1 || got.Services[0].EnvKeys[0] != "S" || got.PreviewURL(3000) == "" {
			t.Errorf("%s: decoded %+v", name, got)
		}
		if name == "start" && got.WakeMS != 42 {
			t.Errorf("start: wake_duration_ms %d", got.WakeMS)
		}
	}
}

// absentFields lists the JSON fields of struct type typ (and of the structs within it)
// that the decoded value v lacks.
func absentFields(typ reflect.Type, v any, path string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	var out []string
	switch typ.Kind() {
	case reflect.Struct:
		if typ == reflect.TypeOf(time.Time{}) {
			return nil
		}
		obj, _ := v.(map[string]any)
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if f.Anonymous && f.Tag.Get("json") == "" {
				out = append(out, absentFields(f.Type, v, path)...)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv, ok := obj[name]
			if !ok || fv == nil {
				out = append(out, path+name)
				continue
			}
			out = append(out, absentFields(f.Type, fv, path+name+".")...)
		}
	case reflect.Slice:
		if l, _ := v.([]any); len(l) > 0 {
			out = append(out, absentFields(typ.Elem(), l[0], path+"0.")...)
		} else if typ.Elem().Kind() == reflect.Struct {
			out = append(out, strings.TrimSuffix(path, ".")+" (empty)")
		}
	}
	return out
}
