package lifecycle

import (
	"strconv"
	"strings"
	"time"
)

// ShowDuration writes d the way the API reads durations: "7d", "1d12h", "1h30m", "15m",
// "1.5s". Go's own form ("168h0m0s") is what a message said before, to a user who had
// asked for "8d".
func ShowDuration(d time.Duration) string {
	if d < 0 {
		return "-" + ShowDuration(-d)
	}
	const day = 24 * time.Hour
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
