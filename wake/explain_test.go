package wake

import (
	"errors"
	"fmt"
	"testing"
)

// Every API tells a caller the waker's refusals in the same words, however the error
// was wrapped; any other error is not the waker's to explain.
func TestExplain(t *testing.T) {
	tests := []struct {
		err  error
		want string
		ok   bool
	}{
		{&CapacityError{Reason: "12 starts in flight"}, "no capacity to start the sandbox now: 12 starts in flight", true},
		{fmt.Errorf("exec: %w", ErrTimeout), "the sandbox did not start in time", true},
		{ErrClosed, "sandboxd is shutting down", true},
		{&StartError{ID: "a", Err: errors.New("image gone")}, "", false},
		{&PortClosedError{Port: 3000}, "", false},
	}
	for _, tc := range tests {
		if msg, ok := Explain(tc.err); msg != tc.want || ok != tc.ok {
			t.Errorf("Explain(%v) = %q, %v; want %q, %v", tc.err, msg, ok, tc.want, tc.ok)
		}
	}
}
