// Package httpstatus is the one table from lifecycle's error codes to HTTP statuses, for every
// API sandboxd serves (admin's REST API and E2B's): a code answers the same status on
// either, and a code added to lifecycle needs one line here.
package httpstatus

import (
	"maps"
	"net/http"
	"slices"

	"github.com/sandboxd/sandboxd/lifecycle"
)

var table = map[lifecycle.Code]int{
	lifecycle.CodeInvalid:     http.StatusBadRequest,
	lifecycle.CodeNotFound:    http.StatusNotFound,
	lifecycle.CodeConflict:    http.StatusConflict,
	lifecycle.CodeUnavailable: http.StatusServiceUnavailable,
	lifecycle.CodeUnsupported: http.StatusUnprocessableEntity,
	lifecycle.CodeInternal:    http.StatusInternalServerError,

	lifecycle.CodeLimit:     http.StatusTooManyRequests, // issue 13: a tenant's limit
	lifecycle.CodeDiskQuota: http.StatusInsufficientStorage,
}

// Of is the status of code; ok is false for a code the table lacks, which is sandboxd's
// bug, not the caller's: callers answer 500 and keep the message for the log.
func Of(code lifecycle.Code) (status int, ok bool) {
	status, ok = table[code]
	return status, ok
}

// Codes are the codes the table maps, in no order: what an API may answer.
func Codes() []lifecycle.Code {
	return slices.Collect(maps.Keys(table))
}
