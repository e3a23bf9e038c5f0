package main

import (
	"slices"
	"testing"
)

func TestHomeDir(t *testing.T) {
	for env, want := range map[string]string{
		"": "/home/sandbox", "/": "/home/sandbox", "//": "/home/sandbox",
		"/home/sandbox": "/home/sandbox", "/root/": "/root",
	} {
		if got := homeDir(env); got != want {
			t.Errorf("homeDir(%q) = %q, want %q", env, got, want)
		}
	}
}

func TestLoginEnv(t *testing.T) {
	inherited := []string{"HOSTNAME=box", "HOME=/", "PATH=/custom/bin", "USER=root", "LANG=C.UTF-8"}
	got := loginEnv(inherited, "/home/sandbox", "sandbox", "/bin/bash")
	want := []string{"HOSTNAME=box", "PATH=/custom/bin", "LANG=C.UTF-8",
		"HOME=/home/sandbox", "LOGNAME=sandbox", "SHELL=/bin/bash", "USER=sandbox"}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}

	got = loginEnv([]string{"A=1"}, "/h", "u", "/bin/sh")
	if v, _ := lookupEnv(got, "PATH"); v != defaultPath {
		t.Errorf("PATH without one inherited = %q, want the default", v)
	}

	svc := mergeEnv(got, map[string]string{"PORT": "4000", "A": "2", "HOME": "/elsewhere"})
	for k, want := range map[string]string{"PORT": "4000", "A": "2", "HOME": "/elsewhere", "USER": "u"} {
		if v, _ := lookupEnv(svc, k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	count := 0
	for _, kv := range svc {
		if len(kv) > 2 && kv[:2] == "A=" {
			count++
		}
	}
	if count != 1 {
		t.Errorf("A appears %d times in %q", count, svc)
	}
}

func TestLoginShell(t *testing.T) {
	if got := loginShell(func(p string) bool { return p == "/bin/bash" }); got != "/bin/bash" {
		t.Errorf("with bash: %q", got)
	}
	if got := loginShell(func(string) bool { return false }); got != "/bin/sh" {
		t.Errorf("without bash: %q", got)
	}
}
