package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// Exit codes of "exec" for a command it could not run, as a shell has them.
const (
	exitCannotRun = 126
	exitNotFound  = 127
)

// runExec is "sandbox-init exec [--log FILE] -- argv...", which sandboxd runs
// through the Docker exec API. The command becomes the leader of a new
// session and process group, so sandboxd can kill its whole tree with the
// pid Docker reports for the exec.
//
// Without --log the command replaces this process. With --log FILE this
// process stays as the command's parent: the output is appended to FILE
// (its first $SANDBOX_INIT_LOG_MAX bytes, when that is set: execcap.go),
// SIGTERM, SIGINT and SIGHUP are passed on, and the exit code (128+signal
// for a signal) is written to FILE.exit, atomically, and is the exit code.
func runExec(args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet("sandbox-init exec", flag.ContinueOnError)
	flags.SetOutput(stderr)
	logPath := flags.String("log", "", "append the command's output to `FILE` and write its exit code to FILE.exit")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	argv := flags.Args()
	if len(argv) == 0 {
		fmt.Fprintln(stderr, "sandbox-init: exec: no command")
		return 2
	}
	if err := newSession(); err != nil {
		fmt.Fprintf(stderr, "sandbox-init: exec: %v\n", err)
		return exitCannotRun
	}
	if *logPath == "" {
		return execReplace(argv, stderr)
	}
	return execLogged(*logPath, argv, stderr)
}

// newSession makes this process a session and process group leader. setsid
// fails when the process already leads its group (docker exec with a tty
// makes it a session leader); that is as good for killing by group.
func newSession() error {
	if _, err := syscall.Setsid(); err != nil {
		if errors.Is(err, syscall.EPERM) && syscall.Getpgrp() == syscall.Getpid() {
			return nil
		}
		return fmt.Errorf("setsid: %w", err)
	}
	return nil
}

// execReplace replaces this process with argv. It returns only on failure.
func execReplace(argv []string, stderr io.Writer) int {
	path, code, err := lookupCommand(argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "sandbox-init: exec: %v\n", err)
		return code
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(stderr, "sandbox-init: exec: %s: %v\n", argv[0], err)
	if errors.Is(err, syscall.ENOENT) {
		return exitNotFound
	}
	return exitCannotRun
}

// execLogged runs argv as a child with its output in logPath and returns its
// exit code, which it also writes to logPath.exit.
func execLogged(logPath string, argv []string, stderr io.Writer) int {
	exitPath := initproto.ExitFile(logPath)
	finish := func(code int) int {
		if err := writeExitCode(exitPath, code); err != nil {
			fmt.Fprintf(stderr, "sandbox-init: exec: %v\n", err)
		}
		return code
	}
	out, err := openExecLog(logPath)
	if err != nil {
		fmt.Fprintf(stderr, "sandbox-init: exec: %v\n", err)
		return finish(exitCannotRun)
	}
	defer out.Close()
	fail := func(code int, err error) int {
		msg := fmt.Sprintf("sandbox-init: exec: %v\n", err)
		io.WriteString(stderr, msg)
		io.WriteString(out, msg) // the log is what the user reads
		return finish(code)
	}
	path, code, err := lookupCommand(argv[0])
	if err != nil {
		return fail(code, err)
	}

	// Watch before starting, so a signal that comes at once is not lost.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigc)
	cmd := &exec.Cmd{Path: path, Args: argv, Stdin: os.Stdin, Stdout: out, Stderr: out}
	wait := func() { cmd.Wait() } // the exit status is all that matters; it is in ProcessState
	if max := logMax(); max > 0 {
		wait, err = startCapped(cmd, out, max)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return fail(exitCannotRun, err)
	}
	done := make(chan struct{})
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for {
			select {
			case sig := <-sigc:
				// To the child only: it shares this process's group, and
				// signalling the group would bring the signal back here.
				cmd.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	wait()
	close(done)
	<-forwarded
	return finish(exitCode(cmd.ProcessState))
}

// lookupCommand resolves name through PATH, with a shell's exit code and
// message when it cannot.
func lookupCommand(name string) (string, int, error) {
	path, err := exec.LookPath(name)
	if errors.Is(err, exec.ErrDot) {
		err = nil // "." in the sandbox's own PATH is the user's choice
	}
	switch {
	case err == nil:
		return path, 0, nil
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return "", exitNotFound, fmt.Errorf("%s: not found", name)
	case errors.Is(err, fs.ErrPermission):
		return "", exitCannotRun, fmt.Errorf("%s: permission denied", name)
	default:
		return "", exitCannotRun, err
	}
}

// exitCode is a process's exit code, 128+signal when a signal killed it.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// openExecLog opens path for appending, creating its directories (0700) and
// the file (0600).
func openExecLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

// writeExitCode replaces path with code in decimal (no newline), atomically:
// sandboxd polls for the file, so it must never see it half written.
func writeExitCode(path string, code int) error {
	if err := replaceFile(path, initproto.FormatExitCode(code), 0o600); err != nil {
		return fmt.Errorf("exit file: %w", err)
	}
	return nil
}
