package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/sandboxd/sandboxd/admin/apikey"
)

// reloader applies SIGHUP (`systemctl reload sandboxd`) to the API tokens. A running
// process's environment never changes, and systemd reads EnvironmentFile= only at start,
// so sandboxd reads the file itself: SANDBOXD_ENV_FILE, the unit's EnvironmentFile. A file
// that does not parse, or whose tokens fail the checks made at start, is logged with the
// variable it concerns and changes nothing. (TLS certificate files reload on SIGHUP too,
// through their own subscription in tls.go: signal.Notify delivers to every channel.)
type reloader struct {
	envFile string              // "" : SIGHUP only says so
	apiBind string              // tokens are checked against it, as at start
	getenv  func(string) string // the environment sandboxd started with
	keys    *apikey.Keys
	notify  *notifier
	log     *slog.Logger
	hup     chan os.Signal
	authOn  bool // the API asks for tokens
}

// newReloader subscribes to SIGHUP at once, so that from the "serving" line on a SIGHUP
// reloads and never falls to its default action of ending the process. Close it when
// serve returns.
func newReloader(cfg *config, getenv func(string) string, keys *apikey.Keys, notify *notifier, log *slog.Logger) *reloader {
	r := &reloader{envFile: cfg.EnvFile, apiBind: cfg.APIBind, getenv: getenv, keys: keys, notify: notify,
		log: log, hup: make(chan os.Signal, 1), authOn: len(cfg.Tokens) > 0}
	signal.Notify(r.hup, syscall.SIGHUP)
	return r
}

// Close ends the SIGHUP subscription.
func (r *reloader) Close() { signal.Stop(r.hup) }

// Run reloads at each SIGHUP until ctx is done.
func (r *reloader) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.hup:
			r.notify.Reloading()
			status := "serving; " + r.reload()
			r.notify.Ready(status)
		}
	}
}

// reload applies SANDBOXD_ENV_FILE's tokens and says what happened, for STATUS=.
func (r *reloader) reload() string {
	if r.envFile == "" {
		r.log.Warn("SIGHUP: SANDBOXD_ENV_FILE is unset, so there is nothing to reload the API tokens from; they are unchanged")
		return "API tokens unchanged (no SANDBOXD_ENV_FILE)"
	}
	vars, err := readEnvFile(r.envFile)
	if err != nil {
		r.log.Error("SIGHUP: SANDBOXD_ENV_FILE does not load; keeping the API tokens", "file", r.envFile, "err", err)
		return "reload failed; API tokens unchanged"
	}
	tokens, err := apiAuth(vars["SANDBOXD_API_TOKENS"], vars["SANDBOXD_API_AUTH_DISABLED"], r.apiBind)
	if err == nil && len(tokens) == 0 && r.authOn {
		// A token-less API on loopback refuses other Host names (admin.Server.LoopbackOnly),
		// a guard set at start: going without tokens takes a start that sets it.
		err = fmt.Errorf("SANDBOXD_API_TOKENS is empty (or SANDBOXD_API_AUTH_DISABLED=true): turning authentication off takes a restart")
	}
	if err != nil {
		r.log.Error("SIGHUP: keeping the API tokens", "file", r.envFile, "err", err)
		return "reload failed; API tokens unchanged"
	}
	r.keys.SetEnv(tokens)
	r.authOn = len(tokens) > 0
	names := make([]string, 0, len(tokens))
	for _, t := range tokens {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	var restart []string
	for k, v := range vars {
		if k != "SANDBOXD_API_TOKENS" && k != "SANDBOXD_API_AUTH_DISABLED" && v != r.getenv(k) {
			restart = append(restart, k)
		}
	}
	slices.Sort(restart)
	r.log.Info("SIGHUP: API tokens reloaded", "file", r.envFile, "tokens", names)
	if len(restart) > 0 {
		r.log.Warn("SIGHUP: these variables changed in the file but apply only at the next start", "variables", restart)
	}
	return fmt.Sprintf("API tokens reloaded (%d)", len(names))
}

var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// readEnvFile parses the subset of systemd's EnvironmentFile= syntax that an env file
// needs: KEY=VALUE lines; blank lines and lines starting with # or ; are skipped; a value
// may be in "double quotes" (with \" and \\ escapes) or 'single quotes'; unquoted values
// lose surrounding whitespace. Errors name the line.
func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !envKey.MatchString(key) {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE", path, n)
		}
		v, err := envValue(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", path, n, key, err)
		}
		vars[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return vars, nil
}

// envValue unquotes one value.
func envValue(v string) (string, error) {
	if v == "" || (v[0] != '"' && v[0] != '\'') {
		return v, nil
	}
	q := v[0]
	var out strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == q:
			if strings.TrimSpace(v[i+1:]) != "" {
				return "", fmt.Errorf("text after the closing quote")
			}
			return out.String(), nil
		case c == '\\' && q == '"' && i+1 < len(v):
			i++
			out.WriteByte(v[i])
		default:
			out.WriteByte(c)
		}
	}
	return "", fmt.Errorf("no closing quote (a value on several lines is not supported)")
}
