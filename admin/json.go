package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/internal/bytesize"
	"github.com/sandboxd/sandboxd/internal/timespan"
)

// maxBody caps JSON request bodies.
const maxBody = 1 << 20

// decode reads one JSON object into v: unknown fields, trailing data and bodies over
// maxBody are errors. An empty body is allowed when optional is true.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	ifEmpty := "the body is empty: this request needs a JSON object"
	if optional {
		ifEmpty = ""
	}
	return decodeJSON(w, r, v, maxBody, ifEmpty)
}

// decodeJSON is the one path every JSON body takes: at most limit bytes, one object, no
// unknown fields, nothing after it. An empty body answers ifEmpty, or is allowed when
// ifEmpty is "". Its errors are plain sentences that name the field (jsonerr.go), never
// the decoder's words about Go types. The body is decoded as it streams in, so a large
// one (a file's content) is held once, not twice.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64, ifEmpty string) error {
	kept := &prefixKeeper{r: http.MaxBytesReader(w, r.Body, limit), max: keptPrefix}
	dec := json.NewDecoder(kept)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
			var tooBig *http.MaxBytesError
			if errors.As(terr, &tooBig) {
				err = terr
			}
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", limit)}
	case err == io.EOF: // nothing but white space
		if ifEmpty == "" {
			return nil
		}
		return badRequest("%s", ifEmpty)
	}
	return badRequest("%s", decodeMessage(err, reflect.TypeOf(v), kept.buf))
}

// size is a byte count given as a number of bytes or a string like "4G" or "512m".
type size int64

func (s *size) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*s = size(n)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err == nil { // a number int64 cannot hold: 1e300, 1.5
		return badValue[size](b, "which is not a whole number of bytes in range")
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return badValue[size](b, "")
	}
	v, err := bytesize.Parse(str)
	if errors.Is(err, bytesize.ErrOutOfRange) {
		return badValue[size](b, "which is out of range")
	}
	if err != nil {
		return badValue[size](b, "")
	}
	*s = size(v)
	return nil
}

// duration is given as a duration string ("15m", "90s", "7d": timespan) or a number of
// seconds.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return badValue[duration](b, "")
		}
		v, err := timespan.Parse(str)
		if err == nil {
			*d = duration(v)
			return nil
		}
		if errors.Is(err, timespan.ErrOutOfRange) {
			return badValue[duration](b, "which is out of range")
		}
		if secs, err = strconv.ParseFloat(str, 64); err != nil {
			return badValue[duration](b, "")
		}
	}
	// Seconds past what a Duration holds (about 292 years) would wrap around: {"seconds":
	// 1e300} once kept a sandbox awake until 1970.
	if math.IsNaN(secs) || math.Abs(secs) >= math.MaxInt64/float64(time.Second) {
		return badValue[duration](b, "which is out of range")
	}
	*d = duration(secs * float64(time.Second))
	return nil
}

// timestamp is a time in RFC 3339 form, "2030-01-02T15:04:05Z".
type timestamp time.Time

func (t *timestamp) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return badValue[timestamp](b, "")
	}
	v, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		return badValue[timestamp](b, "")
	}
	*t = timestamp(v)
	return nil
}

// badValue is the error of one of the types above. It is a json.UnmarshalTypeError so the
// decoder fills in the field's name; Value carries what was sent (and why it fails, when
// that is not plain), which decodeMessage shows after "got".
func badValue[T any](got []byte, why string) error {
	v := string(got)
	if len(v) > 64 {
		v = v[:61] + "..."
	}
	if why != "" {
		v += ", " + why
	}
	return &json.UnmarshalTypeError{Value: v, Type: reflect.TypeFor[T]()}
}
