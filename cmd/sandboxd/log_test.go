package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// Durations are logged as strings, never as raw nanoseconds (issue 10: "took":302958418).
func TestLoggerWritesDurationsAsStrings(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := newLogger(&buf, slog.LevelInfo)
	log.Info("sandbox started", "took", 302958418*time.Nanosecond, slog.Group("wake", "timeout", time.Minute))
	var line struct {
		Took string `json:"took"`
		Wake struct {
			Timeout string `json:"timeout"`
		} `json:"wake"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %s: %v", buf.Bytes(), err)
	}
	if line.Took != "302.958418ms" || line.Wake.Timeout != "1m0s" {
		t.Errorf("durations logged as %s", buf.Bytes())
	}
}
