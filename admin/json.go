package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// maxBody caps JSON request bodies.
const maxBody = 1 << 20

// decode reads one JSON object into v: unknown fields, trailing data and oversized bodies
// are errors. An empty body is allowed when optional is true.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	raw, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is larger than %d bytes", maxBody)}
	}
	if err != nil {
		return badRequest("read body: %v", err)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		if optional {
			return nil
		}
		return badRequest("a JSON body is required")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed JSON: trailing data after the object")
	}
	return nil
}

// size is a byte count given as a number of bytes or a string like "4G" or "512m".
type size int64

func (s *size) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*s = size(n)
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("a size is a number of bytes or a string like \"4G\"")
	}
	v, err := units.RAMInBytes(str)
	if err != nil {
		return fmt.Errorf("size %q: %v", str, err)
	}
	*s = size(v)
	return nil
}

// duration is given as a Go duration string ("15m", "90s") or a number of seconds.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var secs float64
	if err := json.Unmarshal(b, &secs); err == nil {
		*d = duration(secs * float64(time.Second))
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("a duration is a string like \"15m\" or a number of seconds")
	}
	if n, err := strconv.ParseFloat(str, 64); err == nil {
		*d = duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(str)
	if err != nil {
		return fmt.Errorf("duration %q: %v", str, err)
	}
	*d = duration(v)
	return nil
}
