package wake

import (
	"fmt"

	"github.com/sandboxd/sandboxd/internal/meminfo"
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
func ReadMemAvailable() (uint64, error) { return meminfo.Read("MemAvailable") }
