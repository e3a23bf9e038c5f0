package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestConfigErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string // in the error; "" means no error
	}{
		{"defaults", nil, nil, ""},
		{"tokens", map[string]string{"SANDBOXD_API_TOKENS": "ci:abc123,ops:def456"}, nil, ""},
		{"empty secret", map[string]string{"SANDBOXD_API_TOKENS": "ci:"}, nil, "SANDBOXD_API_TOKENS: token \"ci\" has an empty secret"},
		{"no colon", map[string]string{"SANDBOXD_API_TOKENS": "justasecret"}, nil, "SANDBOXD_API_TOKENS"},
		{"duplicate name", map[string]string{"SANDBOXD_API_TOKENS": "a:x1,a:x2"}, nil, "appears twice"},
		{"public bind without tokens", map[string]string{"SANDBOXD_API_BIND": "0.0.0.0:9090"}, nil, "SANDBOXD_API_BIND"},
		{"public bind, auth disabled", map[string]string{"SANDBOXD_API_BIND": "0.0.0.0:9090", "SANDBOXD_API_AUTH_DISABLED": "true"}, nil, ""},
		{"public bind with tokens", map[string]string{"SANDBOXD_API_BIND": "0.0.0.0:9090", "SANDBOXD_API_TOKENS": "ci:abc"}, nil, ""},
		{"bad duration", map[string]string{"SANDBOXD_IDLE_TIMEOUT": "soon"}, nil, `SANDBOXD_IDLE_TIMEOUT="soon"`},
		{"bad bind", map[string]string{"SANDBOXD_HTTP_BIND": "80"}, nil, "SANDBOXD_HTTP_BIND"},
		{"bad domain", map[string]string{"PREVIEW_DOMAIN": "exa mple.com"}, nil, "PREVIEW_DOMAIN"},
		{"bad size", map[string]string{"SANDBOXD_WAKE_MIN_MEMORY": "lots"}, nil, "SANDBOXD_WAKE_MIN_MEMORY"},
		{"bad bool", map[string]string{"SANDBOXD_API_AUTH_DISABLED": "maybe"}, nil, "SANDBOXD_API_AUTH_DISABLED"},
		{"flag wins and is named", map[string]string{"SANDBOXD_IDLE_TIMEOUT": "5m"}, []string{"--idle-timeout", "x"}, `--idle-timeout="x"`},
		{"missing init", map[string]string{"SANDBOXD_INIT_PATH": "/nonexistent/sandbox-init"}, nil, "SANDBOXD_INIT_PATH"},
		{"uid range backwards", map[string]string{"SANDBOXD_UID_RANGE": "300000-200000"}, nil, `SANDBOXD_UID_RANGE="300000-200000"`},
		{"uid range over a host account", map[string]string{"SANDBOXD_UID_RANGE": "65000-70000"}, nil, `holds uid 65534 of host account "nobody"`},
		{"short key", map[string]string{"SANDBOXD_SECRET_KEY": "c2hvcnQ="}, nil, "SANDBOXD_SECRET_KEY: want 32 random bytes"},
		{"previous key without a new one", map[string]string{"SANDBOXD_SECRET_KEY_PREVIOUS": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}, nil, "SANDBOXD_SECRET_KEY is not"},
		{"bad disk quota", map[string]string{"SANDBOXD_DISK_QUOTA": "lots"}, nil, "SANDBOXD_DISK_QUOTA"},
		{"quota above its max", map[string]string{"SANDBOXD_DISK_QUOTA": "20G", "SANDBOXD_DISK_QUOTA_MAX": "10G"}, nil, "above SANDBOXD_DISK_QUOTA_MAX"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadConfig(c.args, func(k string) string { return c.env[k] }, io.Discard)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), "c2hvcnQ"):
				t.Fatalf("the error repeats a secrets key: %v", err)
			}
		})
	}
}

func TestTokensAreSecretToName(t *testing.T) {
	c, err := loadConfig(nil, func(k string) string {
		return map[string]string{"SANDBOXD_API_TOKENS": " ci:abc123 , ops:def:456 "}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tokens["abc123"] != "ci" || c.Tokens["def:456"] != "ops" || len(c.Tokens) != 2 {
		t.Fatalf("tokens = %v", c.Tokens)
	}
}

// The hook that blocks sandboxd forever is for in-process tests only (testHooks); the
// binary has no flag or variable that reaches it (issue 10).
func TestNoTestHookInTheBinary(t *testing.T) {
	none := func(string) string { return "" }
	if _, err := loadConfig([]string{"--test-hook", "start.begin"}, none, io.Discard); err == nil {
		t.Fatal("--test-hook was accepted")
	}
	var usage bytes.Buffer
	loadConfig([]string{"-h"}, none, &usage)
	if !strings.Contains(usage.String(), "SANDBOXD_DATA_DIR") || strings.Contains(strings.ToUpper(usage.String()), "HOOK") {
		t.Errorf("the usage mentions a hook (or is not the usage):\n%s", usage.String())
	}
}

// The nofile default is capped at the host's hard limit without a word (it is documented
// so); a value the operator set above it is a warning, logged as JSON by serve (issue 10:
// every start with the defaults printed a plain-text warning among the JSON logs).
func TestNoFileCap(t *testing.T) {
	tests := []struct {
		name     string
		nofile   int64
		hard     uint64
		explicit bool
		want     int64
		warnings int
	}{
		{"default under the limit", 65536, 1 << 20, false, 65536, 0},
		{"default above the limit", 65536, 4096, false, 4096, 0},
		{"set above the limit", 100000, 65536, true, 65536, 1},
		{"set under the limit", 4096, 65536, true, 4096, 0},
	}
	for _, tc := range tests {
		c := &config{NoFile: tc.nofile}
		c.capNoFile(tc.hard, tc.explicit)
		if c.NoFile != tc.want || len(c.Warnings) != tc.warnings {
			t.Errorf("%s: nofile %d with %d warnings, want %d with %d", tc.name, c.NoFile, len(c.Warnings), tc.want, tc.warnings)
		}
	}
}

func TestConfigPrintsNothingWithDefaults(t *testing.T) {
	var out bytes.Buffer
	if _, err := loadConfig(nil, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("loadConfig with the defaults printed %q; warnings go through the JSON logger", out.String())
	}
}
