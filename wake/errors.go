package wake

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimeout reports that a sandbox's start did not complete before the
// caller's deadline (Waker.Timeout or the caller's own).
var ErrTimeout = errors.New("wake: sandbox did not start in time")

// ErrClosed reports that the Waker was closed.
var ErrClosed = errors.New("wake: closed")

// CapacityError reports a start refused by admission: too many starts in
// flight, or too little host memory. Nothing was started; the caller may try
// again after RetryAfter.
type CapacityError struct {
	// Reason says which limit refused the start, for operators.
	Reason string
	// RetryAfter is when trying again makes sense.
	RetryAfter time.Duration
}

func (e *CapacityError) Error() string {
	return fmt.Sprintf("wake: no capacity: %s (retry after %s)", e.Reason, e.RetryAfter)
}

// StartError is a start that the Starter failed. The Waker logs it once, when the start
// ends, however many callers it is returned to: callers answer it without logging it again.
type StartError struct {
	ID  string
	Err error // the Starter's error
}

func (e *StartError) Error() string { return fmt.Sprintf("start sandbox %s: %v", e.ID, e.Err) }

func (e *StartError) Unwrap() error { return e.Err }

// PortClosedError reports a sandbox that runs but where nothing accepted a
// connection on Port before the deadline or the probe window.
type PortClosedError struct {
	Port int
}

func (e *PortClosedError) Error() string {
	return fmt.Sprintf("wake: port %d is closed", e.Port)
}

// Explain is what an API caller is told of the waker's own refusals, in the same words
// by every API (admin, E2B, envd); ok is false for any other error, which keeps its own
// (a lifecycle error the waker wrapped says what went wrong). Each API picks the status.
func Explain(err error) (msg string, ok bool) {
	var ce *CapacityError
	switch {
	case errors.As(err, &ce):
		return "no capacity to start the sandbox now: " + ce.Reason, true
	case errors.Is(err, ErrTimeout):
		return "the sandbox did not start in time", true
	case errors.Is(err, ErrClosed):
		return "sandboxd is shutting down", true
	}
	return "", false
}

// outcome names the result of a Wake call for Waker.Observe.
func outcome(started bool, err error) string {
	var ce *CapacityError
	var pe *PortClosedError
	switch {
	case err == nil && started:
		return OutcomeStarted
	case err == nil:
		return OutcomeReady
	case errors.As(err, &ce):
		return OutcomeCapacity
	case errors.As(err, &pe):
		return OutcomePortClosed
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed):
		return OutcomeCanceled
	default:
		return OutcomeError
	}
}
