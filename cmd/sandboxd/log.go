package main

import (
	"io"
	"log/slog"
)

// newLogger is sandboxd's logger: JSON lines at level and above. Durations are written as
// strings ("1.5s"), whatever the call site passes: slog's JSON handler writes a
// time.Duration as integer nanoseconds ("took":302958418), which nobody reads right
// (issue 10).
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		},
	}))
}
