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
	msg, ok := wake.Explain(err)
	var ce *wake.CapacityError
	switch {
	case !ok:
		return nil
	case errors.As(err, &ce):
		return &apiError{http.StatusServiceUnavailable, "no_capacity", msg}
	case errors.Is(err, wake.ErrTimeout):
		return &apiError{http.StatusGatewayTimeout, "wake_timeout", msg}
	default:
		return &apiError{http.StatusServiceUnavailable, "shutting_down", msg}
	}
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
