package lifecycle

import (
	"errors"
	"fmt"
)

// Code classifies an error for the API: admin maps each code to one HTTP status.
type Code string

// Error codes.
const (
	CodeInvalid     Code = "invalid_request" // the caller sent something wrong; nothing changed
	CodeNotFound    Code = "not_found"
	CodeConflict    Code = "conflict"      // the id is taken, or the sandbox is in the wrong state
	CodeUnavailable Code = "unavailable"   // try again later: no capacity, engine down
	CodeUnsupported Code = "unprocessable" // well-formed, but this sandbox cannot do it (an agent its image lacks)
	CodeInternal    Code = "internal"

	CodeLimit Code = "limit_exceeded" // a tenant's limit refused it (issue 13); nothing was done
)

// Error keeps the public message apart from the internal cause: Message is safe to show a
// caller, Err is for the log.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode is e's code as a string, for packages that may not import lifecycle (the edge
// tells a tenant's limit from a failed start by it).
func (e *Error) ErrorCode() string { return string(e.Code) }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// internal wraps an unexpected failure; its message says what was being done.
func internal(err error, format string, args ...any) *Error {
	return &Error{Code: CodeInternal, Message: fmt.Sprintf(format, args...), Err: err}
}

// ErrorCode returns err's code, or CodeInternal for errors that carry none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of err that is safe to show a caller.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
