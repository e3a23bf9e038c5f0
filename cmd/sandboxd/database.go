package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker/client"
	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// dbFile is the database's name in the data dir.
const dbFile = "sandboxd.db"

// recovery says how to get a lost database back; README, "Backup and restore", says more.
const recovery = "To recover, put the database back: restore a backup made with `sandboxd backup` " +
	"(README, \"Backup and restore\"); or start once with `sandboxd serve --adopt`, which rebuilds each " +
	"sandbox from its container and its saved config (ids, image, ports, services, env, labels; task history is lost)"

// openDatabase opens the database, and never creates one in its place while sandboxes exist
// (issue 11: started with the file moved away, sandboxd made an empty database and removed
// every container as an orphan, losing their env, services, ports and labels). A missing
// (or empty) file is created only when the data dir holds no workspace, saved config or
// container of this instance, or when adopt says the operator wants the new database
// filled from them.
func openDatabase(ctx context.Context, dataDir string, docker *client.Client, adopt bool, sealer *store.Sealer, log *slog.Logger) (*store.DB, error) {
	path := filepath.Join(dataDir, dbFile)
	st, err := os.Stat(path)
	missing := errors.Is(err, fs.ErrNotExist) || err == nil && st.Size() == 0
	if err != nil && !missing {
		return nil, fmt.Errorf("database %s cannot be read: %w. %s", path, err, recovery)
	}
	if missing && !adopt {
		left, err := lifecycle.FindLeftovers(ctx, docker, dataDir)
		if err != nil {
			return nil, fmt.Errorf("database %s is missing, and sandboxd cannot tell whether sandboxes exist that an empty one would orphan (%w), so it does not start", path, err)
		}
		if !left.Empty() {
			return nil, fmt.Errorf("database %s is missing, but %s: with an empty database sandboxd would lose their env, services, ports and labels and remove their containers as orphans, so it does not start. %s",
				path, describeLeftovers(left), recovery)
		}
	}
	db, err := store.Open(ctx, path, store.WithSealer(sealer))
	if errors.Is(err, store.ErrUnsealable) {
		return nil, fmt.Errorf("SANDBOXD_SECRET_KEY: %w: the database's env values were sealed with another key; "+
			"give that key (SANDBOXD_SECRET_KEY, or SANDBOXD_SECRET_KEY_PREVIOUS beside a new one)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("database %s cannot be opened: %w. %s", path, err, recovery)
	}
	if missing && adopt {
		log.Warn("started with a new database: adopting every sandbox with a container or a saved config", "database", path)
	}
	return db, nil
}

// describeLeftovers says what exists: "this data dir holds 2 workspaces (a, b), ...".
func describeLeftovers(l lifecycle.Leftovers) string {
	var parts []string
	add := func(ids []string, one, many string) {
		if len(ids) == 0 {
			return
		}
		what := many
		if len(ids) == 1 {
			what = one
		}
		shown := ids
		if len(shown) > 5 {
			shown = append(shown[:5:5], "…")
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(ids), what, strings.Join(shown, ", ")))
	}
	add(l.Containers, "container of this sandboxd", "containers of this sandboxd")
	add(l.Configs, "saved sandbox config", "saved sandbox configs")
	add(l.Workspaces, "workspace", "workspaces")
	return "this data dir has " + strings.Join(parts, ", ")
}

// backup is `sandboxd backup <file>`: an online, consistent copy of the database, made
// through SQLite's backup API while sandboxd may be serving.
func backup(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	flags := flag.NewFlagSet("sandboxd backup", flag.ContinueOnError)
	flags.SetOutput(stderr)
	def := getenv("SANDBOXD_DATA_DIR")
	if def == "" {
		def = "/var/lib/sandboxd"
	}
	dataDir := flags.String("data-dir", def, "the data dir whose database to copy (env SANDBOXD_DATA_DIR)")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: sandboxd backup [--data-dir DIR] <file>\n\nwrites a consistent copy of the database to <file> (mode 0600), while sandboxd serves or not")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return errors.New("backup: name one file to write")
	}
	src := filepath.Join(*dataDir, dbFile)
	dst := flags.Arg(0)
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: there is no database at %s (is SANDBOXD_DATA_DIR or --data-dir right?)", src)
	}
	if err := store.Backup(ctx, src, dst); err != nil {
		return fmt.Errorf("backup of %s: %w", src, err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sandboxd: backed up %s to %s (%d bytes)\n", src, dst, st.Size())
	return nil
}
