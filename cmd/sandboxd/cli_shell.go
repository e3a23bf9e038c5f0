package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (c *cli) shellCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "shell ID",
		Short: "Open a shell in a sandbox on this terminal; exits with the shell's exit code",
		Long: `Open a login shell in a sandbox over the API's terminal WebSocket. The local terminal
is put in raw mode (every key goes to the sandbox, Ctrl-C included) and resized with the
window; it is restored however the shell ends.`,
		Args:              exactArgs("ID"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.shell(cmd.Context(), args[0])
		},
	}
}

// shell attaches this terminal to a shell in the sandbox until the shell exits.
func (c *cli) shell(ctx context.Context, id string) (err error) {
	inFile, _ := c.env.stdin.(*os.File)
	outFile, _ := c.env.stdout.(*os.File)
	tty := inFile != nil && term.IsTerminal(int(inFile.Fd()))
	var o client.TerminalOptions
	if outFile != nil {
		if w, h, err := term.GetSize(int(outFile.Fd())); err == nil {
			o.Cols, o.Rows = uint(w), uint(h)
		}
	}
	t, err := c.client.Terminal(ctx, id, o)
	if err != nil {
		return err
	}
	defer t.Close()

	if tty {
		fd := int(inFile.Fd())
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("raw mode: %w", err)
		}
		// Restored however this returns: the shell's exit, an error, ctx's end (SIGINT or
		// SIGTERM to the CLI), or a panic.
		defer term.Restore(fd, old)
	}
	input, closeInput := interruptible(c.env.stdin)
	defer closeInput()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		t.Close()    // ends a Write the input pump is blocked in
		closeInput() // ends its Read
		wg.Wait()
	}()

	// Window changes follow the local terminal.
	if outFile != nil && term.IsTerminal(int(outFile.Fd())) {
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		wg.Go(func() {
			defer signal.Stop(winch)
			for {
				select {
				case <-winch:
					if w, h, err := term.GetSize(int(outFile.Fd())); err == nil {
						t.Resize(uint(w), uint(h))
					}
				case <-stop:
					return
				}
			}
		})
	}
	// Keys go to the sandbox; at the end of input that is not a terminal, Ctrl-D ends the
	// shell as if typed. Piped input can all arrive before the shell reads: a Ctrl-D that
	// lands while the terminal changes modes under the starting shell is lost, so it is
	// typed again, as a person would, until the shell has ended.
	wg.Go(func() {
		_, err := io.Copy(t, input)
		if err != nil || tty {
			return
		}
		for {
			if _, err := t.Write([]byte{4}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(eofRepeat):
			}
		}
	})
	// The interrupt of the CLI (SIGINT, SIGTERM) closes the terminal, which ends the copy
	// below.
	wg.Go(func() {
		select {
		case <-ctx.Done():
			t.Close()
		case <-stop:
		}
	})

	_, copyErr := io.Copy(c.env.stdout, t)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if code, ok := t.ExitCode(); ok {
		return exitCode(code, false)
	}
	if copyErr == nil {
		copyErr = errors.New("it closed without an exit code")
	}
	return fmt.Errorf("the terminal connection ended before the shell did: %w", copyErr)
}

// eofRepeat is how often the end of piped input is typed again while the shell runs.
const eofRepeat = 500 * time.Millisecond

// interruptible is r made so that its close ends a Read blocked in it. A blocking read of
// a terminal or a pipe (fd 0) cannot be interrupted, so such a stdin is opened again,
// non-blocking, as its own file description (fd 0's flags stay as they were) whose Close
// wakes the reader. Other readers (a regular file, a test's buffer) never block for long.
func interruptible(r io.Reader) (io.Reader, func()) {
	f, ok := r.(*os.File)
	if !ok {
		return r, func() {}
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&(os.ModeCharDevice|os.ModeNamedPipe) == 0 {
		return r, func() {}
	}
	again, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return r, func() {}
	}
	var once sync.Once
	return again, func() { once.Do(func() { again.Close() }) }
}
