// Package bytesize reads a size as people write it, for the API's bodies and the operator's
// settings alike: a number of bytes with an optional unit, decimal or binary, in any case
// and with or without its B ("512M", "2GiB", "2 gb", and Kubernetes' "2Gi").
package bytesize

import (
	"errors"
	"strings"

	units "github.com/docker/go-units"
)

// ErrOutOfRange is a size past what int64 holds.
var ErrOutOfRange = errors.New("size out of range")

// Parse returns the bytes s names. Units are powers of 1024, as Docker reads them. A size
// past what int64 holds is ErrOutOfRange, not a wrapped negative number (issue 11).
func Parse(s string) (int64, error) {
	if strings.HasSuffix(s, "i") || strings.HasSuffix(s, "I") {
		s += "B" // Kubernetes' "2Gi", which the parser takes only as "2GiB"
	}
	n, err := units.RAMInBytes(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, ErrOutOfRange
	}
	return n, nil
}
