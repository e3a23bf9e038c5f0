package wake

import (
	"errors"
	"testing"
	"time"
)

func TestProcMemAvailable(t *testing.T) {
	n, err := ReadMemAvailable()
	if err != nil {
		t.Skipf("no /proc/meminfo: %v", err)
	}
	if n == 0 {
		t.Error("MemAvailable = 0")
	}
}

func TestCheckMemory(t *testing.T) {
	tests := []struct {
		name       string
		avail      uint64
		min        uint64
		retryAfter time.Duration
		refused    bool
	}{
		{name: "default threshold met", avail: 512 << 20},
		{name: "below default threshold", avail: 512<<20 - 1, refused: true},
		{name: "custom threshold", avail: 1 << 30, min: 2 << 30, refused: true},
		{name: "custom retry", avail: 0, retryAfter: time.Minute, refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := New(newGatedStarter())
			defer w.Close()
			w.MinMemAvailable, w.RetryAfter = tc.min, tc.retryAfter
			w.MemAvailable = func() (uint64, error) { return tc.avail, nil }
			err := w.checkMemory("sb1")
			var ce *CapacityError
			if refused := errors.As(err, &ce); refused != tc.refused {
				t.Fatalf("checkMemory = %v, want refused %v", err, tc.refused)
			}
			if ce != nil && tc.retryAfter != 0 && ce.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", ce.RetryAfter, tc.retryAfter)
			}
		})
	}
}
