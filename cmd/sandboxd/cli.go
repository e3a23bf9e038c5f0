package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// The CLI: every command but serve talks to a sandboxd's API through admin/client.
// SANDBOXD_API (default http://127.0.0.1:9090) says where, SANDBOXD_TOKEN with which
// bearer token. Output is a human table or list, or with --json the API's objects; exit
// status 0 is success, 1 a failure (one line on stderr with the request id), 2 a usage
// error, and exec and shell pass the command's own exit code through.

// cliEnv is what the CLI touches of its process, so tests run it in-process.
type cliEnv struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// httpClient sends the API requests; nil means http.DefaultClient.
	httpClient *http.Client
	// now is the clock of ages ("12s ago"); nil means time.Now.
	now func() time.Time
	// serve is sandboxd serve, backup sandboxd backup; nil in tests of the CLI.
	serve  func(ctx context.Context, args []string) error
	backup func(ctx context.Context, args []string) error
}

// processEnv is the CLI of the sandboxd process.
func processEnv(getenv func(string) string, stderr io.Writer) cliEnv {
	return cliEnv{getenv: getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: stderr}
}

func (c *cli) now() time.Time {
	if c.env.now != nil {
		return c.env.now()
	}
	return time.Now()
}

// isTerminal reports whether f is a terminal (an *os.File on a tty).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// exitError ends the CLI with a status and nothing more to print: the command's own
// exit code, or a failure already reported.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a command line the CLI does not understand: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitStatus reports err on stderr, in one line, and answers the process's exit status.
func exitStatus(err error, stderr io.Writer) int {
	var ee exitError
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // serve -h printed its usage
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, context.Canceled):
		return 130 // interrupted: as a shell reports SIGINT
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "sandboxd:", flatten(err.Error()))
		fmt.Fprintln(stderr, "Run 'sandboxd --help' for usage.")
		return 2
	}
	fmt.Fprintln(stderr, "sandboxd:", flatten(err.Error()))
	return 1
}

func flatten(s string) string { return strings.Join(strings.Fields(s), " ") }

// cli is one run of the CLI: its environment, global flags and client.
type cli struct {
	env    cliEnv
	api    string
	json   bool
	client *client.Client
}

// runCLI runs the CLI with args (without the program name).
func runCLI(ctx context.Context, args []string, env cliEnv) error {
	c := &cli{env: env}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetIn(env.stdin)
	root.SetOut(env.stdout)
	root.SetErr(env.stderr)
	_, err := root.ExecuteContextC(ctx)
	if err != nil && isCobraUsage(err) {
		err = usageError{err}
	}
	return err
}

// isCobraUsage reports the errors cobra itself raises for a command line it cannot
// parse (an unknown command; flags go through SetFlagErrorFunc). The API's errors and the
// server's are never taken for one.
func isCobraUsage(err error) bool {
	var ue usageError
	var ce *client.Error
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return false
	}
	msg := err.Error()
	for _, p := range []string{"unknown command ", "unknown flag: ", "unknown shorthand flag: ", "flag needs an argument: "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sandboxd",
		Short: "sandboxd runs isolated sandboxes on one Docker host; this is its server and its CLI",
		Long: `sandboxd runs isolated sandboxes on one Docker host.

'sandboxd serve' is the server. Every other command is a client of its API:
SANDBOXD_API (default ` + client.DefaultURL + `) says where, SANDBOXD_TOKEN with which
bearer token. Output is for people; --json prints the API's objects for scripts.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return c.connect()
		},
	}
	root.PersistentFlags().StringVar(&c.api, "api", "", "API address (default $SANDBOXD_API, else "+client.DefaultURL+")")
	root.PersistentFlags().BoolVar(&c.json, "json", false, "print JSON for scripts")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddGroup(&cobra.Group{ID: "sandboxes", Title: "Sandboxes:"}, &cobra.Group{ID: "work", Title: "Working in a sandbox:"},
		&cobra.Group{ID: "tasks", Title: "Agents:"})
	for _, cmd := range []*cobra.Command{c.lsCmd(), c.createCmd(), c.getCmd(), c.rmCmd(), c.purgeCmd(), c.startCmd(), c.pauseCmd(), c.stopCmd(), c.keepaliveCmd(), c.imagesCmd()} {
		cmd.GroupID = "sandboxes"
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{c.execCmd(), c.shellCmd(), c.logsCmd(), c.cpCmd(), c.previewCmd()} {
		cmd.GroupID = "work"
		root.AddCommand(cmd)
	}
	task := c.taskCmd()
	task.GroupID = "tasks"
	root.AddCommand(task, c.versionCmd(), c.serveCmd(), c.backupCmd())
	return root
}

// connect makes the client from --api, SANDBOXD_API and SANDBOXD_TOKEN.
func (c *cli) connect() error {
	api := c.api
	if api == "" {
		api = c.env.getenv("SANDBOXD_API")
	}
	cl, err := client.New(api, c.env.getenv("SANDBOXD_TOKEN"))
	if err != nil {
		return usagef("SANDBOXD_API: %v", err)
	}
	cl.HTTPClient = c.env.httpClient
	cl.UserAgent = "sandboxd-cli/" + buildVersion()
	c.client = cl
	return nil
}

// exactArgs and rangeArgs are cobra's validators with usage errors that name the
// arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return rangeArgs(len(names), len(names), names...)
}

func rangeArgs(min, max int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min {
			return usagef("%s needs %s", cmd.CommandPath(), strings.Join(names[len(args):min], " and "))
		}
		if max >= 0 && len(args) > max {
			return usagef("%s takes at most %d arguments (%s); got %d", cmd.CommandPath(), max, strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// backupCmd is sandboxd backup: a consistent copy of a data dir's database (database.go),
// made on the host, not through the API.
func (c *cli) backupCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "backup [--data-dir DIR] <file>",
		Short:              "Write a consistent copy of the database to a file, while sandboxd serves or not",
		DisableFlagParsing: true,
		PersistentPreRunE:  func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.env.backup == nil {
				return errors.New("backup is not available here")
			}
			return c.env.backup(cmd.Context(), args)
		},
	}
}

// serveCmd is sandboxd serve, listed with the CLI's commands; its flags are config.go's.
func (c *cli) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "serve [flags]",
		Short:              "Serve the admin API and the preview edge (flags: sandboxd serve -h)",
		DisableFlagParsing: true,
		PersistentPreRunE:  func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.env.serve == nil {
				return errors.New("serve is not available here")
			}
			return c.env.serve(cmd.Context(), args)
		},
	}
}
