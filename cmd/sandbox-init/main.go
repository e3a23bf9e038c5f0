// Command sandbox-init is PID 1 of every sandbox container. sandboxd bind-mounts
// it read-only at /opt/sandboxd/init and makes it the container's entrypoint,
// so any image works unchanged.
//
// It owns everything that happens inside a sandbox on sandboxd's behalf:
//   - the services: the image's own command (service "main") and the ones
//     declared in /opt/sandboxd/run/services.json, each in its own process
//     group with a login environment and a size-capped log under
//     $HOME/.sandboxd/logs, restarted on every exit with capped backoff, and
//     changed live when the config changes (SIGHUP, or the file's stat);
//   - the duties of PID 1: reaping every zombie, forwarding signals, and a
//     prompt, clean exit on SIGTERM;
//   - the state file $HOME/.sandboxd/state.json that sandboxd reads;
//   - the relay (":65535") that joins connections from sandboxd's edge to
//     servers bound to the container's loopback only;
//   - "sandbox-init exec", which puts commands sandboxd runs through the
//     Docker exec API in their own session so their whole tree can be killed.
//
// Usage:
//
//	sandbox-init [--config PATH] [--state PATH] [--relay ADDR] [--] [command...]
//	sandbox-init exec [--log FILE] -- command...
//	sandbox-init fs OP ARGS...   (file operations for sandboxd's E2B adapter: fscmd.go)
//	sandbox-init version
//
// The first form supervises; its defaults are --config
// /opt/sandboxd/run/services.json, --state $HOME/.sandboxd/state.json (HOME
// unset or "/" means /home/sandbox) and --relay :65535 (empty: no relay).
// The trailing command, if any, is service "main". sandboxd should put "--"
// before the image's command, so that one starting with "exec", "version"
// or "-" is not taken for this program's own.
//
// Its contract with sandboxd (these paths, the files and the relay's handshake) is
// declared once, in internal/initproto. It is a static binary (CGO_ENABLED=0) built from
// the standard library and that package only.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code. Unlike
// the other commands of this module it takes no context: signals are this
// program's business (it is PID 1), so each mode installs its own handlers.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "exec":
			return runExec(args[1:], stderr)
		case "fs":
			return runFS(args[1:], os.Stdin, stdout, stderr)
		case "version":
			fmt.Fprintln(stdout, versionString())
			return 0
		}
	}
	logger := log.New(stderr, "sandbox-init: ", 0)
	return runSupervisor(args, getenv, stdout, logger)
}

// versionString names the build: the -X version, the VCS revision when the
// toolchain recorded one, and the Go version.
func versionString() string {
	v := "sandbox-init " + version
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " (" + rev + dirty + ")"
		}
	}
	return v + " " + runtime.Version()
}
