package lifecycle

import (
	"testing"
	"time"
)

// Durations in messages read the way the API takes them ("7d", "1d12h", "15m"), not as Go
// prints them ("168h0m0s"): a newcomer asking for "8d" was told of 192h0m0s.
func TestShowDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                   "0s",
		1500 * time.Millisecond:             "1.5s",
		90 * time.Second:                    "1m30s",
		15 * time.Minute:                    "15m",
		time.Hour:                           "1h",
		90 * time.Minute:                    "1h30m",
		24 * time.Hour:                      "1d",
		7 * 24 * time.Hour:                  "7d",
		36 * time.Hour:                      "1d12h",
		24*time.Hour + time.Second:          "1d1s",
		-time.Hour:                          "-1h",
		24*time.Hour + 500*time.Millisecond: "1d500ms",
	} {
		if got := ShowDuration(d); got != want {
			t.Errorf("ShowDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
