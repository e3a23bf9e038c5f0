package lifecycle

import (
	"strconv"

	"github.com/sandboxd/sandboxd/internal/meminfo"
)

// fallbackMaxMemory is the memory ceiling when /proc/meminfo cannot be read.
const fallbackMaxMemory = 64 << 30

// maxMemory resolves Config.MaxMemory: zero means this host's MemTotal, since a limit above
// the RAM the host has limits nothing (issue 10: 64G was accepted on a 23 GiB host).
// fromHost reports that the ceiling is the host's, for the error that names it.
func maxMemory(configured int64) (limit int64, fromHost bool) {
	if configured > 0 {
		return configured, false
	}
	total, err := readMemTotal()
	if err != nil || total == 0 {
		return fallbackMaxMemory, false
	}
	return int64(total), true
}

// readMemTotal reads the host's MemTotal from /proc/meminfo, in bytes.
func readMemTotal() (uint64, error) { return meminfo.Read("MemTotal") }

// formatBytes is n in the largest binary unit it reaches, with one decimal when it is not
// whole: "64 GiB", "23.4 GiB", "512 MiB".
func formatBytes(n int64) string {
	units := []struct {
		size int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		if n >= u.size {
			v := float64(n) / float64(u.size)
			s := strconv.FormatFloat(v, 'f', 1, 64)
			if n%u.size == 0 {
				s = strconv.FormatInt(n/u.size, 10)
			}
			return s + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
