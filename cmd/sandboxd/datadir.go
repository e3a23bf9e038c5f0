package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sandboxd/sandboxd/store"
)

// ownDataDir makes the data dir, or takes one that exists, with mode 0700: nothing under it
// (workspaces, the database, the run dirs, the secrets key) is any other account's business
// (issue 12: it was 0711, its workspaces 0755). A directory others share (sticky or
// world-writable, like /tmp) is refused rather than closed to them.
func ownDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("SANDBOXD_DATA_DIR: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("SANDBOXD_DATA_DIR: %w", err)
	}
	if st.Mode()&fs.ModeSticky != 0 || st.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("SANDBOXD_DATA_DIR=%s is shared with other accounts (mode %v): give sandboxd a directory of its own", dir, st.Mode())
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("SANDBOXD_DATA_DIR: %w", err)
	}
	return nil
}

// secretsSealer is the Sealer of env values at rest: SANDBOXD_SECRET_KEY (with any previous
// keys of a rotation), or the key file in the data dir, made at first start.
func secretsSealer(cfg *config) (*store.Sealer, error) {
	key := cfg.Isolation.Key
	if key == nil {
		var err error
		if key, err = store.LoadOrCreateKey(filepath.Join(cfg.DataDir, store.KeyFile)); err != nil {
			return nil, fmt.Errorf("SANDBOXD_SECRET_KEY is unset and the key file failed: %w", err)
		}
	}
	s, err := store.NewSealer(key, cfg.Isolation.PreviousKeys...)
	if err != nil {
		return nil, errors.New("SANDBOXD_SECRET_KEY: not a usable key")
	}
	return s, nil
}
