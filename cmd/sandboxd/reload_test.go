package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadEnvFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, text string
		want       map[string]string
		err        string
	}{
		{"empty", "", map[string]string{}, ""},
		{"comments and blanks", "# a comment\n; another\n\n   \nA=1\n", map[string]string{"A": "1"}, ""},
		{"spaces around", "  A = spaced value  \r\n", map[string]string{"A": "spaced value"}, ""},
		{"empty value", "A=\n", map[string]string{"A": ""}, ""},
		{"double quotes", `A="x # not a comment \"q\" \\ end"` + "\n", map[string]string{"A": `x # not a comment "q" \ end`}, ""},
		{"single quotes", `A='$HOME \n'`, map[string]string{"A": `$HOME \n`}, ""},
		{"later wins", "A=1\nA=2\n", map[string]string{"A": "2"}, ""},
		{"equals in value", "SANDBOXD_API_TOKENS=ci:a=b,ops:c\n", map[string]string{"SANDBOXD_API_TOKENS": "ci:a=b,ops:c"}, ""},
		{"no equals", "A=1\njust words\n", nil, ":2: want KEY=VALUE"},
		{"bad key", "1A=x\n", nil, ":1: want KEY=VALUE"},
		{"export is not systemd's", "export A=1\n", nil, ":1: want KEY=VALUE"},
		{"open quote", "A=\"never closed\n", nil, ":1: A: no closing quote"},
		{"text after quote", "A=\"x\" y\n", nil, ":1: A: text after the closing quote"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sandboxd.env")
			if err := os.WriteFile(path, []byte(c.text), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readEnvFile(path)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if describe(got) != describe(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestConfigEnvFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.env"), filepath.Join(dir, "bad.env")
	os.WriteFile(good, []byte("SANDBOXD_API_TOKENS=ci:abc\n"), 0o600)
	os.WriteFile(bad, []byte("SANDBOXD_API_TOKENS=ci:abc\nnonsense\n"), 0o600)
	for _, c := range []struct{ name, file, want string }{
		{"readable", good, ""},
		{"missing", filepath.Join(dir, "nope.env"), `SANDBOXD_ENV_FILE="` + dir + `/nope.env": want a readable file of KEY=VALUE lines`},
		{"bad line", bad, `bad.env:2: want KEY=VALUE`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := loadConfig(nil, notifyEnv(map[string]string{"SANDBOXD_ENV_FILE": c.file}), io.Discard)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case c.want == "" && cfg.EnvFile != c.file:
				t.Fatalf("EnvFile = %q, want %q", cfg.EnvFile, c.file)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// apiStatus is the status of GET /v1/sandboxes with the bearer secret (none when "").
func apiStatus(t *testing.T, d *daemon, secret string) int {
	t.Helper()
	return apiGetStatus(t, d, "/v1/sandboxes", secret)
}

// apiGetStatus is the status of GET path with the bearer secret (none when "").
func apiGetStatus(t *testing.T, d *daemon, path, secret string) int {
	t.Helper()
	return callAs(t, secret, "GET", d.API+path, nil, nil)
}

// SIGHUP re-reads SANDBOXD_API_TOKENS from SANDBOXD_ENV_FILE; a file that fails the checks
// made at start keeps the tokens in force. systemd hears RELOADING=1, then READY=1.
func TestReloadTokensOnSIGHUP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	envFile := filepath.Join(t.TempDir(), "sandboxd.env")
	write := func(text string) {
		if err := os.WriteFile(envFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# as systemd's EnvironmentFile\nSANDBOXD_API_TOKENS=ci:secret-a\n")
	sock := listenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
	p := e.startProcess(map[string]string{"SANDBOXD_ENV_FILE": envFile, "SANDBOXD_API_TOKENS": "ci:secret-a",
		"NOTIFY_SOCKET": sock.addr})
	if m := sock.next(t); !strings.HasPrefix(m, "READY=1\n") {
		t.Fatalf("first message %q", m)
	}
	hup := func(wantLog string) {
		t.Helper()
		before := strings.Count(p.logs.String(), wantLog)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if m := sock.next(t); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
			t.Fatalf("after SIGHUP: %q, want RELOADING=1", m)
		}
		if m := sock.next(t); !strings.HasPrefix(m, "READY=1\nSTATUS=serving; ") {
			t.Fatalf("after the reload: %q, want READY=1", m)
		}
		// The log line was written before READY=1, but stderr is a pipe of its own.
		logged(t, p.daemon, 30*time.Second, before+1, wantLog)
	}
	for secret, want := range map[string]int{"secret-a": 200, "": 401, "secret-b": 401} {
		if got := apiStatus(t, p.daemon, secret); got != want {
			t.Fatalf("before the reload, secret %q: %d, want %d", secret, got, want)
		}
	}

	write("SANDBOXD_API_TOKENS=\"ci:secret-b,ops:secret-c:tenant=acme\"\nSANDBOXD_IDLE_TIMEOUT=1h\n")
	hup(`"msg":"SIGHUP: API tokens reloaded"`)
	for secret, want := range map[string]int{"secret-a": 401, "secret-b": 200, "secret-c": 200} {
		if got := apiStatus(t, p.daemon, secret); got != want {
			t.Fatalf("after the reload, secret %q: %d, want %d", secret, got, want)
		}
	}
	// Issue 13: the reloaded ops token is acme's, so the audit log is not its to read.
	for secret, want := range map[string]int{"secret-b": 200, "secret-c": 403} {
		if got := apiGetStatus(t, p.daemon, "/v1/audit", secret); got != want {
			t.Fatalf("after the reload, GET /v1/audit with %q: %d, want %d", secret, got, want)
		}
	}
	// The warning follows the "reloaded" line, which may have reached us alone.
	logged(t, p.daemon, 30*time.Second, 1, `"variables":["SANDBOXD_IDLE_TIMEOUT"]`)

	for _, bad := range []struct{ text, log string }{
		{"SANDBOXD_API_TOKENS=ci:\n", `SANDBOXD_API_TOKENS: token \"ci\" has an empty secret`},
		{"SANDBOXD_API_TOKENS=\n", `turning authentication off takes a restart`},
		{"SANDBOXD_API_TOKENS=ci:x\nnot a line\n", `sandboxd.env:2: want KEY=VALUE`},
	} {
		write(bad.text)
		hup(bad.log)
		if got := apiStatus(t, p.daemon, "secret-b"); got != 200 {
			t.Fatalf("after a bad reload (%q): %d, want the tokens kept", bad.text, got)
		}
	}
	if err := p.stop(); err != nil {
		t.Fatalf("stop after SIGHUPs: %v", err)
	}
}
