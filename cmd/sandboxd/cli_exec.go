package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/spf13/cobra"
)

// exec and logs.

func (c *cli) execCmd() *cobra.Command {
	var env []string
	var cwd string
	var timeout time.Duration
	var stdin bool
	cmd := &cobra.Command{
		Use:   "exec ID [--] COMMAND [ARG...]",
		Short: "Run a command in a sandbox, streaming its output; exits with its exit code",
		Example: `  sandboxd exec demo -- ls -la
  sandboxd exec demo -- sh -c 'npm install && npm test'
  echo hi | sandboxd exec -i demo -- cat`,
		Args:              rangeArgs(2, -1, "ID", "COMMAND"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, argv := args[0], args[1:]
			if len(argv) > 0 && argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return usagef("exec needs a COMMAND after the sandbox id")
			}
			e, err := keyValues("env", env)
			if err != nil {
				return err
			}
			req := client.ExecRequest{Cmd: argv, Env: e, Cwd: cwd, Timeout: timeout}
			if stdin {
				b, err := io.ReadAll(io.LimitReader(c.env.stdin, 1<<20+1))
				if err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
				if len(b) > 1<<20 {
					return usagef("-i sends at most 1 MiB of stdin; use sandboxd cp for files")
				}
				s := string(b)
				req.Stdin = &s
			}
			return c.exec(cmd.Context(), id, req)
		},
	}
	// Everything after the sandbox id is the command's, its dashes included.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	cmd.Flags().StringVarP(&cwd, "workdir", "w", "", "directory to run in, relative to the home (default the home)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "kill the command after this long (default: the server's)")
	cmd.Flags().BoolVarP(&stdin, "interactive", "i", false, "send stdin to the command (at most 1 MiB)")
	return cmd
}

// exec runs the command: streamed to stdout and stderr, or with --json buffered into one
// object. Either way the CLI exits with the command's exit code.
func (c *cli) exec(ctx context.Context, id string, req client.ExecRequest) error {
	if c.json {
		res, err := c.client.Exec(ctx, id, req)
		if err != nil {
			return err
		}
		if err := printJSON(c.env.stdout, res); err != nil {
			return err
		}
		return exitCode(res.ExitCode, res.TimedOut)
	}
	st, err := c.client.ExecStream(ctx, id, req, c.env.stdout, c.env.stderr)
	if err != nil {
		return err
	}
	if st.TimedOut {
		fmt.Fprintf(c.env.stderr, "sandboxd: the command timed out after %s and was killed\n", millis(st.DurationMS))
	}
	return exitCode(st.ExitCode, st.TimedOut)
}

// exitCode ends the CLI with a command's exit code; a command killed for its timeout
// exits 124, as timeout(1) does.
func exitCode(code int, timedOut bool) error {
	switch {
	case timedOut:
		return exitError{124}
	case code == 0:
		return nil
	case code < 0 || code > 255:
		return exitError{1}
	}
	return exitError{code}
}

// logPoll is how often logs -f asks for more.
const logPoll = 500 * time.Millisecond

func (c *cli) logsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs ID [SERVICE]",
		Short: "Print a service's log (default: main, the image's own command); -f follows it",
		Long: `Print a service's log, ~/.sandboxd/logs/<SERVICE>.log in the sandbox.

The log is read through the files API, which works while the sandbox sleeps and never
wakes it: following a log keeps nothing awake. With -f the CLI asks for the bytes after
those it has twice a second; when sandbox-init rotates the log (at 1 MiB) it starts over
at the new file's beginning.`,
		Args:              rangeArgs(1, 2, "ID", "SERVICE"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			service := "main"
			if len(args) == 2 {
				service = args[1]
			}
			if service == "" || strings.ContainsAny(service, "/\x00") || service == "." || service == ".." {
				return usagef("service name %q is invalid", service)
			}
			path := ".sandboxd/logs/" + service + ".log"
			return c.followFile(cmd.Context(), args[0], path, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the service writes")
	return cmd
}

// followFile prints the file at path and, with follow, what is appended to it until ctx
// ends. A file that shrank was replaced: it is read again from its start.
func (c *cli) followFile(ctx context.Context, id, path string, follow bool) error {
	var offset int64
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	for {
		rc, size, err := c.client.ReadFileFrom(ctx, id, path, offset)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil // interrupted while following: the usual way out
		case err != nil && client.IsCode(err, client.CodeNotFound) && follow && offset == 0:
			// Not written yet (the service has not started): wait for it.
		case err != nil:
			return err
		case size < offset:
			offset = 0 // rotated or replaced
			continue
		case rc != nil:
			n, err := io.Copy(c.env.stdout, rc)
			rc.Close()
			offset += n
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("read %s: %w", path, err)
			}
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
