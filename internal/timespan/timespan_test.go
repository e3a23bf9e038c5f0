package timespan

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90s":    90 * time.Second,
		"1h30m":  90 * time.Minute,
		"7d":     7 * day,
		"0.5d":   12 * time.Hour,
		"1d12h":  36 * time.Hour,
		"1d1.5s": day + 1500*time.Millisecond,
		"-1d12h": -36 * time.Hour,
		"0d":     0,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7days", "7D", "1d-5h", "1d+5h", "1dd", "forever", "1e300"} {
		if got, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", in, got)
		}
	}
	if _, err := Parse("1e300d"); !errors.Is(err, ErrOutOfRange) {
		t.Errorf(`Parse("1e300d"): %v, want ErrOutOfRange`, err)
	}
}

// Durations in messages read the way the API takes them ("7d", "1d12h", "15m"), not as Go
// prints them ("168h0m0s"): a newcomer asking for "8d" was told of 192h0m0s.
func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                          "0s",
		1500 * time.Millisecond:    "1.5s",
		90 * time.Second:           "1m30s",
		15 * time.Minute:           "15m",
		time.Hour:                  "1h",
		90 * time.Minute:           "1h30m",
		day:                        "1d",
		7 * day:                    "7d",
		36 * time.Hour:             "1d12h",
		day + time.Second:          "1d1s",
		-time.Hour:                 "-1h",
		day + 500*time.Millisecond: "1d500ms",
	} {
		if got := Format(d); got != want {
			t.Errorf("Format(%v) = %q, want %q", d, got, want)
		}
		if back, err := Parse(Format(d)); err != nil || back != d {
			t.Errorf("Parse(Format(%v)) = %v, %v", d, back, err)
		}
	}
}
