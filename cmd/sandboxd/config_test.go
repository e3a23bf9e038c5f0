package main

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/admin/apikey"
	"github.com/sandboxd/sandboxd/edge"
)

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
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
		{"tenant token", map[string]string{"SANDBOXD_API_TOKENS": "ci:abc,acme:xyz:tenant=acme"}, nil, ""},
		{"bad tenant", map[string]string{"SANDBOXD_API_TOKENS": "acme:xyz:tenant=Acme"}, nil, `SANDBOXD_API_TOKENS: token "acme": tenant "Acme" is invalid`},
		{"tenant limits", map[string]string{"SANDBOXD_TENANT_MAX_SANDBOXES": "10", "SANDBOXD_TENANT_MAX_RUNNING": "0"}, nil, ""},
		{"negative limit", map[string]string{"SANDBOXD_TENANT_MAX_RUNNING": "-1"}, nil, `SANDBOXD_TENANT_MAX_RUNNING="-1": want a whole number ≥ 0`},
		{"limit flag", nil, []string{"--tenant-max-sandboxes", "x"}, `--tenant-max-sandboxes="x": want a whole number ≥ 0`},
		{"tiny audit", map[string]string{"SANDBOXD_AUDIT_MAX_ROWS": "10"}, nil, `SANDBOXD_AUDIT_MAX_ROWS="10": want a whole number ≥ 1000`},
		{"duplicate name", map[string]string{"SANDBOXD_API_TOKENS": "a:x1,a:x2"}, nil, "appears twice"},
		{"public bind without tokens", map[string]string{"SANDBOXD_API_BIND": "0.0.0.0:9090"}, nil, "SANDBOXD_API_BIND"},
		{"public bind, auth disabled", map[string]string{"SANDBOXD_API_BIND": "0.0.0.0:9090", "SANDBOXD_API_AUTH_DISABLED": "true"}, nil, ""},
		{"public bind with tokens", map[string]string{"SANDBOXD_API_BIND": "0.0.0.0:9090", "SANDBOXD_API_TOKENS": "ci:abc"}, nil, ""},
		{"bad duration", map[string]string{"SANDBOXD_IDLE_TIMEOUT": "soon"}, nil, `SANDBOXD_IDLE_TIMEOUT="soon": want a duration like 15m, 90s or 1d`},
		{"days", map[string]string{"SANDBOXD_STOP_AFTER": "1d", "SANDBOXD_TASK_CHECKPOINT_AGE": "14d"}, nil, ""},
		{"too short", map[string]string{"SANDBOXD_TASK_CHECKPOINT_AGE": "30s"}, nil, `SANDBOXD_TASK_CHECKPOINT_AGE="30s": must be at least 1m`},
		{"bad bind", map[string]string{"SANDBOXD_HTTP_BIND": "80"}, nil, "SANDBOXD_HTTP_BIND"},
		{"bad domain", map[string]string{"PREVIEW_DOMAIN": "exa mple.com"}, nil, "PREVIEW_DOMAIN"},
		{"bad size", map[string]string{"SANDBOXD_WAKE_MIN_MEMORY": "lots"}, nil, "SANDBOXD_WAKE_MIN_MEMORY"},
		{"bad bool", map[string]string{"SANDBOXD_API_AUTH_DISABLED": "maybe"}, nil, "SANDBOXD_API_AUTH_DISABLED"},
		{"flag wins and is named", map[string]string{"SANDBOXD_IDLE_TIMEOUT": "5m"}, []string{"--idle-timeout", "x"}, `--idle-timeout="x"`},
		{"missing init", map[string]string{"SANDBOXD_INIT_PATH": "/nonexistent/sandbox-init"}, nil, "SANDBOXD_INIT_PATH"},
		{"e2b on loopback", map[string]string{"SANDBOXD_E2B_BIND": "127.0.0.1:3001"}, nil, ""},
		{"bad e2b bind", map[string]string{"SANDBOXD_E2B_BIND": "3001"}, nil, "SANDBOXD_E2B_BIND"},
		{"public e2b without tokens", map[string]string{"SANDBOXD_E2B_BIND": ":3001"}, nil, "SANDBOXD_E2B_BIND"},
		{"public e2b with tokens", map[string]string{"SANDBOXD_E2B_BIND": ":3001", "SANDBOXD_API_TOKENS": "sdk:e2b_0123456789abcdef0123456789abcdef01234567"}, nil, ""},
		{"preview access", map[string]string{"SANDBOXD_PREVIEW_ACCESS": "private"}, nil, ""},
		{"bad preview access", map[string]string{"SANDBOXD_PREVIEW_ACCESS": "secret"}, nil, `SANDBOXD_PREVIEW_ACCESS="secret": want public or private`},
		// Issue 11: the edge's and the waker's limits.
		{"edge conns not a number", map[string]string{"SANDBOXD_EDGE_MAX_CONNS": "lots"}, nil, `SANDBOXD_EDGE_MAX_CONNS="lots": want auto`},
		{"edge conns past the open-file limit", map[string]string{"SANDBOXD_EDGE_MAX_CONNS": "100000000"}, nil, "SANDBOXD_EDGE_MAX_CONNS=100000000: the open-file limit"},
		{"edge conns given", map[string]string{"SANDBOXD_EDGE_MAX_CONNS": "100"}, nil, ""},
		{"per-IP negative", map[string]string{"SANDBOXD_EDGE_MAX_CONNS_PER_IP": "-1"}, nil, "SANDBOXD_EDGE_MAX_CONNS_PER_IP"},
		{"per-IP off", map[string]string{"SANDBOXD_EDGE_MAX_CONNS_PER_IP": "0"}, nil, ""},
		{"body rate zero", map[string]string{"SANDBOXD_EDGE_BODY_MIN_RATE": "0"}, nil, "SANDBOXD_EDGE_BODY_MIN_RATE"},
		{"body rate overflows", map[string]string{"SANDBOXD_EDGE_BODY_MIN_RATE": "8EiB"}, nil, "SANDBOXD_EDGE_BODY_MIN_RATE"},
		{"body window too short", map[string]string{"SANDBOXD_EDGE_BODY_WINDOW": "1ms"}, nil, "SANDBOXD_EDGE_BODY_WINDOW"},
		{"header timeout", map[string]string{"SANDBOXD_EDGE_HEADER_TIMEOUT": "never"}, nil, "SANDBOXD_EDGE_HEADER_TIMEOUT"},
		{"wake queue zero", map[string]string{"SANDBOXD_WAKE_QUEUE_MAX": "0"}, nil, "SANDBOXD_WAKE_QUEUE_MAX"},
		{"wake queue per sandbox", map[string]string{"SANDBOXD_WAKE_QUEUE_PER_SANDBOX": "x"}, nil, "SANDBOXD_WAKE_QUEUE_PER_SANDBOX"},
		{"uid range backwards", map[string]string{"SANDBOXD_UID_RANGE": "300000-200000"}, nil, `SANDBOXD_UID_RANGE="300000-200000"`},
		{"uid range over a host account", map[string]string{"SANDBOXD_UID_RANGE": "65000-70000"}, nil, `holds uid 65534 of host account "nobody"`},
		{"short key", map[string]string{"SANDBOXD_SECRET_KEY": "c2hvcnQ="}, nil, "SANDBOXD_SECRET_KEY: want 32 random bytes"},
		{"previous key without a new one", map[string]string{"SANDBOXD_SECRET_KEY_PREVIOUS": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}, nil, "SANDBOXD_SECRET_KEY is not"},
		{"bad disk quota", map[string]string{"SANDBOXD_DISK_QUOTA": "lots"}, nil, "SANDBOXD_DISK_QUOTA"},
		{"quota above its max", map[string]string{"SANDBOXD_DISK_QUOTA": "20G", "SANDBOXD_DISK_QUOTA_MAX": "10G"}, nil, "above SANDBOXD_DISK_QUOTA_MAX"},
		// Issue 14: the garbage collector.
		{"gc", map[string]string{"SANDBOXD_GOGC": "200", "SANDBOXD_GOMEMLIMIT": "2GiB"}, nil, ""},
		{"gc off", map[string]string{"SANDBOXD_GOGC": "off", "SANDBOXD_GOMEMLIMIT": "off"}, nil, ""},
		{"bad gogc", map[string]string{"SANDBOXD_GOGC": "5"}, nil, `SANDBOXD_GOGC="5": want a percentage from 10 to 10000, or off`},
		{"bad gomemlimit", map[string]string{"SANDBOXD_GOMEMLIMIT": "lots"}, nil, `SANDBOXD_GOMEMLIMIT="lots": want a size of at least 64MiB`},
		{"gc flag", nil, []string{"--gogc", "x"}, `--gogc="x"`},
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

// Issue 14: sandboxd's GC defaults apply unless Go's own variable is set; its own variables
// win over Go's.
func TestGCSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                 string
		env                  map[string]string
		percent              int
		percentSet, limitSet bool
		limit                int64
	}{
		{"defaults", nil, 100, true, true, 0},
		{"Go's own variables", map[string]string{"GOGC": "400", "GOMEMLIMIT": "1GiB"}, 100, false, false, 0},
		{"sandboxd's win", map[string]string{"GOGC": "100", "SANDBOXD_GOGC": "800", "SANDBOXD_GOMEMLIMIT": "1GiB"}, 800, true, true, 1 << 30},
		{"off", map[string]string{"SANDBOXD_GOGC": "off"}, -1, true, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := loadConfig(nil, func(k string) string { return c.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.GCPercent != c.percent || cfg.GCPercentSet != c.percentSet || cfg.MemoryLimit != c.limit || cfg.MemoryLimitSet != c.limitSet {
				t.Fatalf("GOGC %d (applied %v), limit %d (applied %v)", cfg.GCPercent, cfg.GCPercentSet, cfg.MemoryLimit, cfg.MemoryLimitSet)
			}
		})
	}
}

func TestTokensAreSecretToName(t *testing.T) {
	t.Parallel()
	c, err := loadConfig(nil, func(k string) string {
		return map[string]string{"SANDBOXD_API_TOKENS": " ci:abc123 , ops:def:456 "}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []apikey.Token{{Name: "ci", Secret: "abc123"}, {Name: "ops", Secret: "def:456"}}
	if !slices.Equal(c.Tokens, want) {
		t.Fatalf("tokens = %v", c.Tokens)
	}
}

// The hook that blocks sandboxd forever is for in-process tests only (testHooks); the
// binary has no flag or variable that reaches it (issue 10).
func TestNoTestHookInTheBinary(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
	var out bytes.Buffer
	if _, err := loadConfig(nil, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("loadConfig with the defaults printed %q; warnings go through the JSON logger", out.String())
	}
}

// The edge's connection cap comes from the open-file limit: "auto" takes what it allows,
// and a number it does not allow stops sandboxd with the arithmetic (issue 11).
func TestEdgeMaxConnsFromTheLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		openFiles uint64
		given     int // 0: auto
		want      int
		err       string
	}{
		{"auto at 1024", 1024, 0, 384, ""},
		{"auto at a million is bounded for memory", 1 << 20, 0, 8192, ""},
		{"given within the room", 1024, 300, 300, ""},
		{"given past the memory bound", 1 << 20, 100000, 100000, ""},
		{"given past the room", 1024, 500, 0, "leaves room for 384"},
		{"a limit too low to serve", 256, 0, 0, "too low for sandboxd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &config{OpenFiles: tc.openFiles, EdgeMaxConns: tc.given}
			err := c.resolveEdgeMaxConns()
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want it to contain %q", err, tc.err)
			case tc.err == "" && c.EdgeMaxConns != tc.want:
				t.Fatalf("EdgeMaxConns = %d, want %d", c.EdgeMaxConns, tc.want)
			}
		})
	}
}

// The admin API's connections fit in half of what the edge leaves (issue 11).
func TestAPIMaxConns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		openFiles uint64
		want      int
	}{{256, 64}, {1024, 128}, {1 << 20, 131072}} {
		if got := apiMaxConns(tc.openFiles); got != tc.want {
			t.Errorf("apiMaxConns(%d) = %d, want %d", tc.openFiles, got, tc.want)
		}
		if reserve := int(tc.openFiles) - 2*edge.ConnRoom(tc.openFiles); tc.openFiles >= 1024 && 2*apiMaxConns(tc.openFiles) > reserve {
			t.Errorf("at %d files the API takes %d of the %d kept for what is not the edge", tc.openFiles, apiMaxConns(tc.openFiles), reserve)
		}
	}
}
