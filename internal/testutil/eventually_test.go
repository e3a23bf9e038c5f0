package testutil

import (
	"testing"
	"time"
)

// fakeTB records a Fatalf instead of stopping the test, so a timeout can be observed.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f) // Fatalf must not return; the test recovers it
}

func TestEventually(t *testing.T) {
	t.Parallel()
	n := 0
	Eventually(t, 10*time.Second, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}

	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != f {
				panic(r)
			}
		}()
		Eventually(f, 20*time.Millisecond, "never", func() bool { return false })
	}()
	if f.failed == "" {
		t.Error("a condition that never holds did not fail the test")
	}
}
