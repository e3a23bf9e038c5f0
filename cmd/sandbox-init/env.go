package main

import (
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// defaultHome is the sandbox's persistent home, bind-mounted by sandboxd.
const defaultHome = initproto.Home

// defaultPath is PATH when the container's environment has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// homeDir returns the home to use for a $HOME value. Docker sets HOME=/ when
// the container's user has no passwd entry in the image, which is always the
// case for a sandbox's own uid (sandboxd mounts its /etc/passwd, but Docker
// reads the image's); "/" is read-only here, so it counts as unset.
func homeDir(env string) string {
	if env == "" || filepath.Clean(env) == "/" {
		return defaultHome
	}
	return filepath.Clean(env)
}

// userName returns the passwd name of the current uid (os/user reads
// /etc/passwd when cgo is off: sandboxd mounts one that names the sandbox's uid
// "sandbox"), or "sandbox" when there is no entry.
func userName() string {
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil && u.Username != "" {
		return u.Username
	}
	return "sandbox"
}

// loginShell returns /bin/bash when the image has it, else /bin/sh.
func loginShell(exists func(string) bool) string {
	if exists("/bin/bash") {
		return "/bin/bash"
	}
	return "/bin/sh"
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// loginEnv returns the environment every service starts from: the
// container's own, with the variables a login would set.
func loginEnv(inherited []string, home, user, shell string) []string {
	vars := map[string]string{"HOME": home, "USER": user, "LOGNAME": user, "SHELL": shell}
	env := mergeEnv(inherited, vars)
	if v, ok := lookupEnv(env, "PATH"); !ok || v == "" {
		env = mergeEnv(env, map[string]string{"PATH": defaultPath})
	}
	return env
}

// mergeEnv returns base with the variables of add set, each once: a later
// duplicate would be ignored by most programs' getenv, so replace in place.
func mergeEnv(base []string, add map[string]string) []string {
	out := make([]string, 0, len(base)+len(add))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := add[k]; ok {
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(add))
	for k := range add {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+add[k])
	}
	return out
}

// lookupEnv finds key in env, the last value winning as in os.Getenv.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// lookPath resolves name the way a shell would for a service that runs in
// dir with the given PATH: a name with a slash is taken as is (relative to
// dir), any other is searched in PATH (empty and relative entries relative
// to dir). It returns the path to exec.
func lookPath(name, path, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return name, checkExecutable(p)
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

// checkExecutable reports why p cannot be executed, or nil.
func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return os.ErrPermission
	}
	return nil
}
