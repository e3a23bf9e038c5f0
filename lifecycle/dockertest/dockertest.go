// Package dockertest gives tests the real Docker engine: a client (skipping loudly without
// an engine, failing under CI=true), the testkit image, binaries built from this module,
// and cleanup of everything a test created, even when it fails.
package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Testkit is the image tests run sandboxes from (make testkit).
const Testkit = "sandboxd/testkit:latest"

// Client returns a client of the local engine. Without an engine the test is skipped with
// one loud line, except under CI=true, where it fails: CI must prove the real thing.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = cli.Ping(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("DOCKER ENGINE UNAVAILABLE under CI=true: %v", err)
		}
		t.Skipf("SKIPPING: no Docker engine (%v); these tests need the real engine", err)
	}
	t.Cleanup(func() { cli.Close() })
	if _, err := cli.ImageInspect(context.Background(), Testkit); err != nil {
		t.Fatalf("image %s is missing: run `make testkit` (%v)", Testkit, err)
	}
	return cli
}

// Network returns a fresh network name for a test and removes the network at cleanup,
// with its internal sibling (InternalNetwork), which sandboxd makes beside it (issue 15).
// Containers are cleaned first (cleanups run last-registered first).
func Network(t testing.TB, cli *client.Client) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "sbdtest-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range []string{name, InternalNetwork(name)} {
			if err := cli.NetworkRemove(ctx, n); err != nil && !strings.Contains(err.Error(), "not found") {
				t.Logf("cleanup: remove network %s: %v", n, err)
			}
		}
	})
	return name
}

// InternalNetwork is the name sandboxd gives the internal network beside network.
func InternalNetwork(network string) string { return network + "-internal" }

// CleanupInstance removes, at the end of the test, every container labelled with the
// sandboxd instance.
func CleanupInstance(t testing.TB, cli *client.Client, instance string) {
	t.Helper()
	t.Cleanup(func() { RemoveInstance(t, cli, instance) })
}

// RemoveInstance force-removes every container of a sandboxd instance now.
func RemoveInstance(t testing.TB, cli *client.Client, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", "sandboxd.instance="+instance))})
	if err != nil {
		t.Logf("cleanup: list containers: %v", err)
		return
	}
	for _, c := range list {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Logf("cleanup: remove %s: %v", c.ID[:12], err)
		}
	}
}

// NetworkICC reports whether a network lets containers reach each other.
func NetworkICC(t testing.TB, cli *client.Client, name string) bool {
	n, err := cli.NetworkInspect(context.Background(), name, network.InspectOptions{})
	if err != nil {
		t.Fatalf("inspect network %s: %v", name, err)
	}
	return n.Options["com.docker.network.bridge.enable_icc"] != "false"
}

var (
	buildMu  sync.Mutex
	builtDir string
	built    = map[string]string{}
)

// Binary builds a main package of this module (e.g. "./cmd/sandbox-init") once per test
// process and returns its path. sandbox-init and the testkit's programs are built static,
// as the Makefile and images/testkit/build.sh do.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	root := ModuleRoot(t)
	if builtDir == "" {
		dir, err := os.MkdirTemp("", "sandboxd-bin-")
		if err != nil {
			t.Fatal(err)
		}
		builtDir = dir // removed by the OS's tmp cleaning; shared by every test of the process
	}
	out := filepath.Join(builtDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if strings.HasSuffix(pkg, "sandbox-init") || strings.Contains(pkg, "images/testkit/") {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0") // they run in containers of any image
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// ModuleRoot is the directory holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(b)))
}

// RemoveBuilt deletes the binaries Binary built; call it from TestMain after m.Run.
func RemoveBuilt() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtDir != "" {
		os.RemoveAll(builtDir)
		builtDir = ""
		built = map[string]string{}
	}
}
