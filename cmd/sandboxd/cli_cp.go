package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/spf13/cobra"
)

// cp copies one file between this machine and a sandbox's workspace, through the files
// API (so it works while the sandbox sleeps, and never wakes it).

// progressFrom is the size from which cp shows a progress bar, on a terminal.
const progressFrom = 1 << 20

func (c *cli) cpCmd() *cobra.Command {
	var mode string
	return &cobra.Command{
		Use:   "cp SRC DST",
		Short: "Copy a file into or out of a sandbox (ID:PATH, relative to its home; - is stdin or stdout)",
		Example: `  sandboxd cp app.tar.gz demo:workspace/app/
  sandboxd cp demo:workspace/app/dist/index.html ./index.html
  sandboxd cp demo:.sandboxd/logs/web.log - | tail`,
		Args: exactArgs("SRC", "DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcID, srcPath, srcRemote := remotePath(args[0])
			dstID, dstPath, dstRemote := remotePath(args[1])
			switch {
			case srcRemote && dstRemote:
				return usagef("cp copies between this machine and a sandbox: one of SRC and DST must be local")
			case !srcRemote && !dstRemote:
				return usagef("cp needs a sandbox side, ID:PATH (like demo:workspace/app/file)")
			case srcRemote:
				return c.download(cmd.Context(), srcID, srcPath, args[1])
			}
			return c.upload(cmd.Context(), args[0], dstID, dstPath, mode)
		},
	}
}

// remotePath splits "ID:PATH". A local path that holds a colon is written "./a:b".
func remotePath(arg string) (id, p string, ok bool) {
	id, p, ok = strings.Cut(arg, ":")
	if !ok || !lifecycle.ValidID(id) {
		return "", "", false
	}
	return id, p, true
}

func (c *cli) upload(ctx context.Context, local, id, remote, mode string) error {
	var r io.Reader = c.env.stdin
	size := int64(-1)
	name := "stdin"
	if local != "-" {
		f, err := os.Open(local)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if st.IsDir() {
			return usagef("%s is a directory: cp copies one file (tar it, copy the archive, and untar it with sandboxd exec)", local)
		}
		r, size, name = f, st.Size(), filepath.Base(local)
	}
	if remote == "" || strings.HasSuffix(remote, "/") {
		if local == "-" {
			return usagef("copying stdin needs a file name: ID:PATH/NAME")
		}
		remote += name
	}
	p := c.progress(size)
	defer p.done()
	res, err := c.client.WriteFile(ctx, id, remote, p.reader(r), client.WriteOptions{Size: size, Mode: mode})
	if err != nil {
		return err
	}
	p.done()
	if c.json {
		return printJSON(c.env.stdout, map[string]any{"source": local, "destination": id + ":" + res.Path, "bytes": res.Size})
	}
	_, err = fmt.Fprintf(c.env.stdout, "copied %s to %s:%s\n", humanBytes(res.Size), id, res.Path)
	return err
}

func (c *cli) download(ctx context.Context, id, remote, local string) error {
	f, err := c.client.ReadFile(ctx, id, remote)
	if err != nil {
		return err
	}
	defer f.Close()
	var w io.Writer = c.env.stdout
	dest := local
	if local != "-" {
		if st, err := os.Stat(local); err == nil && st.IsDir() {
			dest = filepath.Join(local, path.Base(remote))
		}
		// Written beside the destination and renamed, so an interrupted copy leaves no
		// half file under the name.
		tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".sandboxd-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	p := c.progress(f.Size)
	defer p.done()
	n, err := io.Copy(w, p.reader(f))
	if err != nil {
		return fmt.Errorf("copy %s:%s: %w", id, remote, err)
	}
	if f.Size >= 0 && n != f.Size {
		return fmt.Errorf("copy %s:%s: got %d of %d bytes", id, remote, n, f.Size)
	}
	p.done()
	if local == "-" {
		return nil
	}
	tmp := w.(*os.File)
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return err
	}
	if c.json {
		return printJSON(c.env.stdout, map[string]any{"source": id + ":" + remote, "destination": dest, "bytes": n})
	}
	_, err = fmt.Fprintf(c.env.stdout, "copied %s to %s\n", humanBytes(n), dest)
	return err
}

// progressBar draws "  42% [========>           ] 10.5 MiB / 25.0 MiB" on stderr, at most
// ten times a second, when stderr is a terminal and the file is large.
type progressBar struct {
	w     io.Writer
	total int64
	now   func() time.Time

	mu    sync.Mutex
	n     int64
	last  time.Time
	ended bool
}

// progress is a bar for a copy of size bytes, or one that draws nothing.
func (c *cli) progress(size int64) *progressBar {
	p := &progressBar{total: size, now: c.now}
	if size >= progressFrom && isTerminal(c.env.stderr) {
		p.w = c.env.stderr
	}
	return p
}

func (p *progressBar) reader(r io.Reader) io.Reader {
	if p.w == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progressBar
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(int64(n))
	return n, err
}

func (p *progressBar) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	if now := p.now(); now.Sub(p.last) >= 100*time.Millisecond || p.n == p.total {
		p.last = now
		p.draw()
	}
}

func (p *progressBar) draw() {
	const width = 30
	frac := float64(p.n) / float64(p.total)
	frac = min(max(frac, 0), 1)
	full := int(frac * width)
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	fmt.Fprintf(p.w, "\r%4.0f%% [%s] %s / %s ", frac*100, bar, humanBytes(p.n), humanBytes(p.total))
}

// done ends the bar's line; later calls do nothing.
func (p *progressBar) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w == nil || p.ended {
		return
	}
	p.ended = true
	p.draw()
	fmt.Fprintln(p.w)
}
