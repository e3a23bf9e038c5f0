// Command sandboxd runs sandboxes on one Docker host: the admin API, the preview edge,
// the waker and the lifecycle manager in one process (sandboxd serve), and is the CLI of
// that API (every other command; cli*.go).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Whatever sandboxd creates is its own unless it says otherwise (issue 12).
	syscall.Umask(0o077)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	// One line on stderr for a failure; exec and shell pass the command's status through.
	os.Exit(exitStatus(err, os.Stderr))
}
