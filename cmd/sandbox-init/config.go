package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// mainName is the service that runs the image's own command; the name is
// reserved in the services file.
const mainName = initproto.MainService

// Spec is one declared service, as sandboxd writes it into the services file
// (initproto.Service), with what sandbox-init does with it.
type Spec initproto.Service

// equal reports whether a and b describe the same process: any difference
// means a restart.
func (a Spec) equal(b Spec) bool {
	return a.Name == b.Name && slices.Equal(a.Cmd, b.Cmd) && a.Cwd == b.Cwd &&
		maps.Equal(a.Env, b.Env) && a.Port == b.Port
}

// dir returns the service's working directory for the given home.
func (a Spec) dir(home string) string {
	switch {
	case a.Cwd == "":
		return home
	case filepath.IsAbs(a.Cwd):
		return filepath.Clean(a.Cwd)
	default:
		return filepath.Join(home, a.Cwd)
	}
}

// validName reports whether name matches ^[a-z0-9][a-z0-9_-]{0,31}$. It is
// used in a file name, so it is checked before anything else.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// check returns why a cannot be run, or nil.
func (a Spec) check() error {
	if !validName(a.Name) {
		return fmt.Errorf("service name %q: must match ^[a-z0-9][a-z0-9_-]{0,31}$", a.Name)
	}
	if a.Name == mainName {
		return fmt.Errorf("service %q: the name is reserved for the image's command", a.Name)
	}
	if len(a.Cmd) == 0 || a.Cmd[0] == "" {
		return fmt.Errorf("service %q: empty cmd", a.Name)
	}
	for _, arg := range a.Cmd {
		if strings.IndexByte(arg, 0) >= 0 {
			return fmt.Errorf("service %q: cmd contains a NUL byte", a.Name)
		}
	}
	if strings.IndexByte(a.Cwd, 0) >= 0 {
		return fmt.Errorf("service %q: cwd contains a NUL byte", a.Name)
	}
	for k, v := range a.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("service %q: invalid env name %q", a.Name, k)
		}
	}
	if a.Port < 0 || a.Port > 65535 {
		return fmt.Errorf("service %q: port %d out of range", a.Name, a.Port)
	}
	return nil
}

// parseConfig decodes the services file. A file that does not decode is an
// error (the caller runs zero services); a service that fails its checks is
// skipped and described in problems, and the rest still run. The first of
// two services with the same name wins.
func parseConfig(data []byte) (specs []Spec, problems []string, err error) {
	declared, err := initproto.DecodeServices(data)
	if err != nil {
		return nil, nil, err
	}
	seen := make(map[string]bool, len(declared))
	for i, d := range declared {
		s := Spec(d)
		if err := s.check(); err != nil {
			problems = append(problems, fmt.Sprintf("services[%d] skipped: %v", i, err))
			continue
		}
		if seen[s.Name] {
			problems = append(problems, fmt.Sprintf("services[%d] skipped: duplicate name %q", i, s.Name))
			continue
		}
		seen[s.Name] = true
		specs = append(specs, s)
	}
	return specs, problems, nil
}

// loadConfig reads and parses the config file at path.
func loadConfig(path string) ([]Spec, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, initproto.MaxServicesSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > initproto.MaxServicesSize {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", path, initproto.MaxServicesSize)
	}
	specs, problems, err := parseConfig(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return specs, problems, nil
}

// specDiff is what it takes to go from the running set to the desired one.
// Each list is sorted by name.
type specDiff struct {
	Added     []Spec   // not running: start
	Changed   []Spec   // running with another spec: stop, then start this one
	Removed   []string // running, not desired: stop
	Unchanged []string // keep running untouched
}

// diffSpecs compares the running specs (by name) with the desired ones.
func diffSpecs(running map[string]Spec, desired []Spec) specDiff {
	var d specDiff
	want := make(map[string]bool, len(desired))
	for _, s := range desired {
		want[s.Name] = true
		cur, ok := running[s.Name]
		switch {
		case !ok:
			d.Added = append(d.Added, s)
		case cur.equal(s):
			d.Unchanged = append(d.Unchanged, s.Name)
		default:
			d.Changed = append(d.Changed, s)
		}
	}
	for name := range running {
		if !want[name] {
			d.Removed = append(d.Removed, name)
		}
	}
	bySpecName := func(a, b Spec) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(d.Added, bySpecName)
	slices.SortFunc(d.Changed, bySpecName)
	slices.Sort(d.Removed)
	slices.Sort(d.Unchanged)
	return d
}
