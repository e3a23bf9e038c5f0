package lifecycle

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

func (m *Manager) memAvailable() (uint64, error) {
	if m.MemAvailable != nil {
		return m.MemAvailable()
	}
	return ReadMemAvailable()
}

// ReadMemAvailable returns the host's MemAvailable from /proc/meminfo, in bytes.
func ReadMemAvailable() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	return parseMemAvailable(b)
}

func parseMemAvailable(b []byte) (uint64, error) {
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := bytes.Fields(s.Bytes())
		if len(f) >= 2 && string(f[0]) == "MemAvailable:" {
			kb, err := strconv.ParseUint(string(f[1]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("meminfo: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("meminfo: no MemAvailable line")
}
