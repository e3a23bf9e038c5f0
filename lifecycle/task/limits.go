package task

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/lifecycle"
	"github.com/sandboxd/sandboxd/store"
)

// What one task may store (issue 11: an agent that printed a million lines stored a million
// rows, 155 MB, in 20 s). The agent's log stays in its workspace, whole; what reaches the
// host database is capped by count and by bytes, and a line is cut at maxLineBytes.
const (
	DefaultMaxEvents     = 10000
	DefaultMaxEventBytes = 16 << 20
	// maxLineBytes is the longest line parsed; the rest of a longer one is skipped up to its
	// newline. A cut JSON line no longer decodes, so it is kept as a raw event.
	maxLineBytes = 1 << 20
)

// maxErrorBytes bounds a result's error, which the agent's own words may fill.
const maxErrorBytes = 4 << 10

// capText cuts s to at most n bytes, on a character boundary, marking the cut with "…".
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// TypeTruncated is the event that follows the one that reached a cap: nothing more of the
// agent's output is stored, though the task runs on and ends with its done event and
// result as always.
const TypeTruncated = "truncated"

// truncatedEvent is the data of a truncated event.
type truncatedEvent struct {
	Type   string `json:"type"`
	Reason string `json:"reason"` // "events" or "bytes": the cap reached
	Limit  int64  `json:"limit"`
	Text   string `json:"text"`
}

func (r *Runner) maxEvents() int64 {
	if r.MaxEvents > 0 {
		return r.MaxEvents
	}
	return DefaultMaxEvents
}

func (r *Runner) maxEventBytes() int64 {
	if r.MaxEventBytes > 0 {
		return r.MaxEventBytes
	}
	return DefaultMaxEventBytes
}

// capped keeps the events that fit the task's caps: the event that reaches a cap is kept
// and followed by a truncated event; those after it are dropped. It returns the rows and
// the totals they bring the task to, which the caller adopts once they are stored (a
// failed store is tried again with the same events).
func (j *job) capped(events []store.TaskEvent) (out []store.TaskEvent, stored, bytes int64, truncated bool) {
	stored, bytes, truncated = j.stored, j.storedBytes, j.truncated
	maxN, maxB := j.r.maxEvents(), j.r.maxEventBytes()
	for _, e := range events {
		if truncated {
			break
		}
		out = append(out, e)
		stored++
		bytes += int64(len(e.Data))
		reason, limit := "", int64(0)
		switch {
		case stored >= maxN:
			reason, limit = "events", maxN
		case bytes >= maxB:
			reason, limit = "bytes", maxB
		}
		if reason == "" {
			continue
		}
		b, _ := json.Marshal(truncatedEvent{Type: TypeTruncated, Reason: reason, Limit: limit,
			Text: fmt.Sprintf("the task reached its limit of %d %s: the rest of the agent's output is not stored; the task goes on and ends as usual", limit, reason)})
		out = append(out, store.TaskEvent{Type: TypeTruncated, Data: b, At: e.At})
		stored++
		bytes += int64(len(b))
		truncated = true
	}
	return out, stored, bytes, truncated
}

// gone reports a store error that says the task no longer exists: its sandbox was purged.
func gone(err error) bool { return errors.Is(err, store.ErrNotFound) }

// replay feeds the already-consumed part of the log, [0, offset), to a fresh parser, so a
// resumed run knows the final message and usage so far. It streams, holding at most one
// line (cut at maxLineBytes): the part read may be any size. When the offset falls inside
// a line (an overlong one whose rest was being skipped), the rest is skipped again.
func (j *job) replay(root *os.Root) {
	f, _, err := lifecycle.OpenRegular(root, taskLog(j.t.ID))
	if err != nil {
		return
	}
	defer f.Close()
	br := bufio.NewReaderSize(io.LimitReader(f, j.offset), 64<<10)
	var line []byte
	cut := false // line reached maxLineBytes: the rest of it is dropped
	for {
		chunk, err := br.ReadSlice('\n')
		complete := err == nil
		if complete {
			chunk = chunk[:len(chunk)-1]
		}
		if !cut {
			if room := maxLineBytes - len(line); len(chunk) > room {
				chunk, cut = chunk[:room], true
			}
			line = append(line, chunk...)
		}
		switch {
		case complete:
			j.parse(line)
			line, cut = line[:0], false
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default: // the end of [0, offset)
			if len(line) > 0 {
				j.parse(line)
				j.skipping = true // the previous run parsed this much and skipped the rest
			}
			return
		}
	}
}
