package admin

import (
	"errors"
	"net/http"
	"time"

	"github.com/sandboxd/sandboxd/wake"
)

// wakeError maps the waker's own errors to answers; nil for any other error (a lifecycle
// error wrapped by the waker keeps its code).
func wakeError(err error) *apiError {
	var ce *wake.CapacityError
	switch {
	case errors.As(err, &ce):
		return &apiError{http.StatusServiceUnavailable, "no_capacity", "no capacity to start the sandbox now: " + ce.Reason}
	case errors.Is(err, wake.ErrTimeout):
		return &apiError{http.StatusGatewayTimeout, "wake_timeout", "the sandbox did not start in time"}
	case errors.Is(err, wake.ErrClosed):
		return &apiError{http.StatusServiceUnavailable, "shutting_down", "sandboxd is shutting down"}
	}
	return nil
}

// wakeRetryAfter is the Retry-After of a capacity refusal, or 0.
func wakeRetryAfter(err error) time.Duration {
	var ce *wake.CapacityError
	if errors.As(err, &ce) {
		return ce.RetryAfter
	}
	return 0
}

// wakeLogged reports a start failure the waker has already logged: the error funnel does
// not log it again (issue 10, bug 5).
func wakeLogged(err error) bool {
	var se *wake.StartError
	return errors.As(err, &se)
}
