// Package meminfo reads the host's memory figures from /proc/meminfo: the waker's
// admission and the pressure reaper read MemAvailable, the create limits MemTotal. One
// parser for both (stdlib only, so wake still imports nothing of ours but internal/).
package meminfo

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Path is the file the figures are read from.
const Path = "/proc/meminfo"

// Read returns field (like "MemAvailable" or "MemTotal") of /proc/meminfo, in bytes.
func Read(field string) (uint64, error) {
	f, err := os.Open(Path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return Parse(f, field)
}

// Parse finds the "<field>:   123456 kB" line of a /proc/meminfo and returns its value in
// bytes.
func Parse(r io.Reader, field string) (uint64, error) {
	prefix := []byte(field + ":")
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), prefix)
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, fmt.Errorf("meminfo: malformed %s line %q", field, sc.Text())
		}
		kb, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo: %w", err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("meminfo: %w", err)
	}
	return 0, fmt.Errorf("meminfo: no %s line", field)
}
