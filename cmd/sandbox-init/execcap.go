package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// logDrainWait is how long, once the command has ended, its output is still read from
// processes it left behind holding the pipe; then the pipe is closed and their writes fail.
const logDrainWait = time.Second

// logMax reads and removes initproto.LogMaxEnv: the cap on a logged exec's output, 0 for
// none.
func logMax() int64 {
	v, ok := os.LookupEnv(initproto.LogMaxEnv)
	if !ok {
		return 0
	}
	os.Unsetenv(initproto.LogMaxEnv) // not the command's business
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// capWriter writes the first max bytes to w, then one line saying the rest is dropped,
// then nothing. It never fails a write, so the command is never blocked or killed for
// being verbose.
type capWriter struct {
	w       io.Writer
	max     int64
	written int64
	dropped bool
}

func (c *capWriter) Write(p []byte) (int, error) {
	if room := c.max - c.written; room > 0 {
		n := min(int64(len(p)), room)
		m, _ := c.w.Write(p[:n])
		c.written += int64(m)
		if n == int64(len(p)) {
			return len(p), nil
		}
	}
	if !c.dropped {
		c.dropped = true
		fmt.Fprintf(c.w, "\n[sandbox-init: the output passed %d bytes; the rest is not kept]\n", c.max)
	}
	return len(p), nil
}

// startCapped starts cmd with its output going through a pipe into the first max bytes of
// out. wait waits for the command, then for its output (at most logDrainWait more), so
// the log is complete before the exit file says the command ended.
func startCapped(cmd *exec.Cmd, out io.Writer, max int64) (wait func(), err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w // files: the child writes to the pipe itself
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		io.Copy(&capWriter{w: out, max: max}, r)
	}()
	return func() {
		cmd.Wait()
		select {
		case <-copied:
		case <-time.After(logDrainWait):
			r.Close() // ends the copy: a background process still holds the pipe
			<-copied
		}
		r.Close()
	}, nil
}
