// Package timespan reads and writes a duration as people write it, for the API's bodies,
// the operator's settings and the messages about both: Go's form ("90s", "1h30m") with
// days in front ("7d", "1d12h"), which Go's own durations lack.
package timespan

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrOutOfRange is a duration past what time.Duration holds (about 292 years).
var ErrOutOfRange = errors.New("duration out of range")

const day = 24 * time.Hour

// Parse reads s: a Go duration, or a number of days ("7d", "0.5d") followed by one
// ("1d12h"). A sign belongs in front of it all, not after the days.
func Parse(s string) (time.Duration, error) {
	i := strings.IndexByte(s, 'd')
	if i < 0 {
		return time.ParseDuration(s)
	}
	days, err := strconv.ParseFloat(s[:i], 64)
	rest := s[i+1:]
	if i == 0 || err != nil || strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
		return 0, errors.New("timespan: invalid duration " + strconv.Quote(s))
	}
	var r time.Duration
	if rest != "" {
		if r, err = time.ParseDuration(rest); err != nil {
			return 0, err
		}
	}
	v := days * float64(day)
	if math.IsNaN(v) || math.Abs(v)+float64(r) >= math.MaxInt64 {
		return 0, ErrOutOfRange
	}
	if v < 0 {
		r = -r // "-1d12h" is a day and a half back
	}
	return time.Duration(v) + r, nil
}

// Format writes d the way Parse reads it: "7d", "1d12h", "1h30m", "15m", "1.5s". Go's own
// form ("168h0m0s") is what a message said before, to a user who had asked for "8d".
func Format(d time.Duration) string {
	if d < 0 {
		return "-" + Format(-d)
	}
	days := ""
	if n := d / day; n > 0 {
		days = strconv.FormatInt(int64(n), 10) + "d"
		if d -= n * day; d == 0 {
			return days
		}
	}
	s := d.String() // "12h0m0s", "1h30m0s", "15m0s", "1m30s", "1.5s", "500ms"
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return days + s
}
