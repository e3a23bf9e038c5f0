package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		want     []string // names of the specs kept, in order
		problems []string // substrings, one per problem
		err      bool
	}{
		{name: "example", data: `{"services":[{"name":"web","cmd":["devserver"],"cwd":"workspace/app","env":{"PORT":"4000"},"port":4000}]}`, want: []string{"web"}},
		{name: "empty object", data: `{}`},
		{name: "null services", data: `{"services":null}`},
		{name: "unknown fields are ignored", data: `{"version":2,"services":[{"name":"a","cmd":["x"],"restart":"always"}]}`, want: []string{"a"}},
		{name: "not json", data: `services: []`, err: true},
		{name: "truncated", data: `{"services":[{"name":"a"`, err: true},
		{name: "wrong type", data: `{"services":{"name":"a"}}`, err: true},
		{name: "trailing garbage", data: `{} {}`, err: true},
		{
			name: "invalid services are skipped, the rest kept",
			data: `{"services":[
				{"name":"ok-1","cmd":["a"]},
				{"name":"Bad","cmd":["a"]},
				{"name":"-dash","cmd":["a"]},
				{"name":"","cmd":["a"]},
				{"name":"` + strings.Repeat("x", 33) + `","cmd":["a"]},
				{"name":"nocmd"},
				{"name":"emptycmd","cmd":[""]},
				{"name":"port","cmd":["a"],"port":70000},
				{"name":"env","cmd":["a"],"env":{"A=B":"c"}},
				{"name":"main","cmd":["a"]},
				{"name":"ok-1","cmd":["b"]},
				{"name":"ok_2","cmd":["a"],"port":65535}
			]}`,
			want: []string{"ok-1", "ok_2"},
			problems: []string{`"Bad"`, `"-dash"`, `""`, `"xxx`, "empty cmd", "empty cmd",
				"port 70000", `env name "A=B"`, "reserved", "duplicate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, problems, err := parseConfig([]byte(tt.data))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error: %v", err, tt.err)
			}
			var names []string
			for _, s := range specs {
				names = append(names, s.Name)
			}
			if !reflect.DeepEqual(names, tt.want) {
				t.Errorf("kept %q, want %q", names, tt.want)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %q, want %d", problems, len(tt.problems))
			}
			for i, p := range problems {
				if !strings.Contains(p, tt.problems[i]) {
					t.Errorf("problem %d = %q, want it to mention %s", i, p, tt.problems[i])
				}
			}
		})
	}
}

func TestParseConfigKeepsFields(t *testing.T) {
	specs, _, err := parseConfig([]byte(`{"services":[{"name":"web","cmd":["bash","-lc","npm run dev"],"cwd":"workspace/app","env":{"PORT":"4000"},"port":4000}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Name: "web", Cmd: []string{"bash", "-lc", "npm run dev"}, Cwd: "workspace/app", Env: map[string]string{"PORT": "4000"}, Port: 4000}
	if len(specs) != 1 || !reflect.DeepEqual(specs[0], want) {
		t.Fatalf("got %+v, want %+v", specs, want)
	}
}

func TestLoadConfigMissing(t *testing.T) {
	_, _, err := loadConfig(filepath.Join(t.TempDir(), "services.json"))
	if !os.IsNotExist(err) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "0": true, "web": true, "my-app_2": true, strings.Repeat("a", 32): true,
		"": false, "-a": false, "_a": false, "A": false, "a.b": false, "a/b": false, "..": false,
		"a b": false, strings.Repeat("a", 33): false, "é": false,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestSpecDir(t *testing.T) {
	for cwd, want := range map[string]string{
		"":              "/home/sandbox",
		"workspace/app": "/home/sandbox/workspace/app",
		"/srv/app/":     "/srv/app",
		"./x/../y":      "/home/sandbox/y",
	} {
		if got := (Spec{Cwd: cwd}).dir("/home/sandbox"); got != want {
			t.Errorf("dir(%q) = %q, want %q", cwd, got, want)
		}
	}
}

func TestDiffSpecs(t *testing.T) {
	web := Spec{Name: "web", Cmd: []string{"devserver"}, Env: map[string]string{"PORT": "4000"}, Port: 4000}
	api := Spec{Name: "api", Cmd: []string{"api"}}
	worker := Spec{Name: "worker", Cmd: []string{"work"}}
	changed := func(s Spec, f func(*Spec)) Spec {
		s.Cmd = append([]string(nil), s.Cmd...)
		s.Env = map[string]string{}
		for k, v := range web.Env {
			s.Env[k] = v
		}
		f(&s)
		return s
	}
	running := map[string]Spec{"web": web, "api": api}

	tests := []struct {
		name    string
		desired []Spec
		want    specDiff
	}{
		{name: "same", desired: []Spec{api, web}, want: specDiff{Unchanged: []string{"api", "web"}}},
		{name: "all removed", desired: nil, want: specDiff{Removed: []string{"api", "web"}}},
		{name: "added and removed", desired: []Spec{worker, web}, want: specDiff{Added: []Spec{worker}, Removed: []string{"api"}, Unchanged: []string{"web"}}},
		{name: "cmd changed", desired: []Spec{api, changed(web, func(s *Spec) { s.Cmd = append(s.Cmd, "-v") })},
			want: specDiff{Changed: []Spec{changed(web, func(s *Spec) { s.Cmd = append(s.Cmd, "-v") })}, Unchanged: []string{"api"}}},
		{name: "env value changed", desired: []Spec{api, changed(web, func(s *Spec) { s.Env["PORT"] = "4001" })},
			want: specDiff{Changed: []Spec{changed(web, func(s *Spec) { s.Env["PORT"] = "4001" })}, Unchanged: []string{"api"}}},
		{name: "env added", desired: []Spec{api, changed(web, func(s *Spec) { s.Env["DEBUG"] = "1" })},
			want: specDiff{Changed: []Spec{changed(web, func(s *Spec) { s.Env["DEBUG"] = "1" })}, Unchanged: []string{"api"}}},
		{name: "cwd changed", desired: []Spec{api, changed(web, func(s *Spec) { s.Cwd = "x" })},
			want: specDiff{Changed: []Spec{changed(web, func(s *Spec) { s.Cwd = "x" })}, Unchanged: []string{"api"}}},
		{name: "port changed", desired: []Spec{api, changed(web, func(s *Spec) { s.Port = 1 })},
			want: specDiff{Changed: []Spec{changed(web, func(s *Spec) { s.Port = 1 })}, Unchanged: []string{"api"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diffSpecs(running, tt.desired); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSpecEqualNilAndEmptyEnv(t *testing.T) {
	a := Spec{Name: "a", Cmd: []string{"x"}}
	b := Spec{Name: "a", Cmd: []string{"x"}, Env: map[string]string{}}
	if !a.equal(b) {
		t.Error("a nil env and an empty one should be equal: no restart for a rewrite of the same config")
	}
}

func TestStatSignature(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "services.json")
	missing := statSignature(path)
	if missing != statSignature(path) {
		t.Fatal("signature of a missing file is not stable")
	}
	if err := os.WriteFile(path, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	first := statSignature(path)
	if first == missing {
		t.Fatal("creating the file did not change the signature")
	}
	// Replace by rename, as sandboxd does, with the same size.
	tmp := filepath.Join(dir, "tmp")
	if err := os.WriteFile(tmp, []byte(`[]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if statSignature(path) == first {
		t.Fatal("a rename over the file did not change the signature")
	}
}
