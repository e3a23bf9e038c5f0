package wake

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// checkMemory refuses a start when the host's available memory is below
// MinMemAvailable: starting into an OOM would kill whatever runs already.
func (w *Waker) checkMemory(id string) error {
	read := w.MemAvailable
	if read == nil {
		read = ReadMemAvailable
	}
	avail, err := read()
	if err != nil {
		w.log().Warn("memory check skipped", "id", id, "err", err)
		return nil
	}
	need := w.MinMemAvailable
	if need == 0 {
		need = 512 << 20
	}
	if avail < need {
		return &CapacityError{
			Reason:     fmt.Sprintf("host memory low: %d MiB available, %d MiB needed", avail>>20, need>>20),
			RetryAfter: w.retryAfter(),
		}
	}
	return nil
}

// ReadMemAvailable reads the host's MemAvailable from /proc/meminfo, in bytes. It is the
// default of Waker.MemAvailable; the lifecycle's pressure reaper reads the same.
func ReadMemAvailable() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseMemAvailable(f)
}

// parseMemAvailable finds the "MemAvailable:   123456 kB" line of a
// /proc/meminfo and returns its value in bytes.
func parseMemAvailable(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("MemAvailable:"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) != 2 || string(fields[1]) != "kB" {
			return 0, fmt.Errorf("meminfo: malformed MemAvailable line %q", sc.Text())
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
	return 0, errors.New("meminfo: no MemAvailable line")
}
