package task

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// dbSize is the size of the database file once its WAL is checkpointed into it: what the
// task's rows really take.
func (h *harness) dbSize() int64 {
	h.t.Helper()
	path := filepath.Join(h.data, "sandboxd.db")
	raw, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		h.t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		h.t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		h.t.Fatal(err)
	}
	return st.Size()
}

// checkTruncatedOnce fails unless exactly one truncated event came, right before done.
func checkTruncatedOnce(t *testing.T, evs []store.TaskEvent) {
	t.Helper()
	checkSeqs(t, evs)
	n := 0
	for _, e := range evs {
		if e.Type == TypeTruncated {
			n++
		}
	}
	if n != 1 || len(evs) < 2 || evs[len(evs)-2].Type != TypeTruncated {
		t.Fatalf("%d truncated events, the one before done is %q: want one, right before done", n, evs[len(evs)-2].Type)
	}
}

// An agent that writes ten times what a task may store: the task stores up to its cap, one
// truncated event and its done event, ends as it would have (the parser saw every line, so
// the final message is the last one), and the database grows by the cap, not the output.
func TestEventCaps(t *testing.T) {
	line := strings.Repeat("x", 1000)
	cases := []struct {
		name      string
		maxEvents int64
		maxBytes  int64
		lines     int
		reason    string
	}{
		{"by count", 40, 0, 400, "events"},
		{"by bytes", 0, 64 << 10, 10 * 64, "bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				defer h.close()
				h.r.MaxEvents, h.r.MaxEventBytes = c.maxEvents, c.maxBytes
				before := h.dbSize()
				tk := h.start(Request{Prompt: "flood"})
				var out strings.Builder
				for i := range c.lines {
					out.WriteString(text(line))
					if i%50 == 49 { // in bursts across ticks, as an agent writes
						h.write(tk.ID, out.String())
						out.Reset()
						pass()
					}
				}
				h.write(tk.ID, out.String()+`{"type":"step_start","part":{}}`+"\n"+text("the last word"))
				h.exit(tk.ID, 0)
				done := h.waitEnd(tk.ID)
				res := h.result(done)
				// The parser saw every line, the dropped ones too: the final message is the
				// last step's.
				if done.Status != store.TaskSucceeded || !res.EventsTruncated || res.FinalMessage != "the last word" {
					t.Fatalf("result: %s truncated=%v final message %.40q; want succeeded, truncated, \"the last word\"",
						done.Status, res.EventsTruncated, res.FinalMessage)
				}
				evs := h.events(tk.ID)
				checkTruncatedOnce(t, evs)
				var tr truncatedEvent
				if err := json.Unmarshal(evs[len(evs)-2].Data, &tr); err != nil || tr.Reason != c.reason || tr.Text == "" {
					t.Fatalf("truncated event %s: %v", evs[len(evs)-2].Data, err)
				}
				tot, err := h.db.TaskEventTotals(h.ctx, tk.ID)
				if err != nil {
					t.Fatal(err)
				}
				const oneEvent = 2 << 10 // a message of one line, or the truncated event
				// The done event carries the result, whose final message is capped apart.
				done1 := int64(agent.MaxFinalMessage + oneEvent)
				if c.maxEvents > 0 && tot.Events != c.maxEvents+2 {
					t.Fatalf("%d events stored, want the cap %d + truncated + done", tot.Events, c.maxEvents)
				}
				if c.maxBytes > 0 && tot.Bytes > c.maxBytes+2*oneEvent+done1 {
					t.Fatalf("%d bytes of events stored, cap %d", tot.Bytes, c.maxBytes)
				}
				// The output was ten times the cap; the file grows by about the cap (pages,
				// indexes, and the result in the done event and the task row besides).
				allowed := int64(3*64<<10) + 3*c.maxBytes + c.maxEvents*3*oneEvent + 2*done1
				if grew := h.dbSize() - before; grew > allowed {
					t.Fatalf("the database grew by %d bytes for a capped task, more than %d", grew, allowed)
				}
			})
		})
	}
}

// A runner resumed after a restart starts from what the task already stored: the cap
// holds across the restart and truncated comes once.
func TestEventCapSurvivesResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		h.r.MaxEvents = 20
		tk := h.start(Request{Prompt: "flood"})
		for i := range 15 {
			h.write(tk.ID, text("before "+string(rune('a'+i))))
		}
		pass()
		h.r.Close()
		for range 100 {
			h.write(tk.ID, text("after the restart"))
		}
		h.r = h.newRunner()
		h.r.MaxEvents = 20
		if err := h.r.Resume(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.exit(tk.ID, 0)
		h.waitEnd(tk.ID)
		evs := h.events(tk.ID)
		checkTruncatedOnce(t, evs)
		if len(evs) != 22 {
			t.Fatalf("%d events, want 20 + truncated + done", len(evs))
		}
	})
}

// A line past maxLineBytes is cut: its head is kept (as a raw event, since cut JSON does
// not decode), the rest skipped up to its newline, and the next line reads as usual — also
// when sandboxd restarts while the rest is being skipped.
func TestOverlongLine(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "in one run"
		if restart {
			name = "across a restart"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t)
				defer h.close()
				tk := h.start(Request{Prompt: "print a lot"})
				chunk := strings.Repeat("y", 1<<20)
				h.write(tk.ID, chunk+chunk)
				pass()
				if restart {
					h.r.Close()
				}
				h.write(tk.ID, chunk+"\n"+text("after the long line"))
				if restart {
					h.r = h.newRunner()
					if err := h.r.Resume(h.ctx); err != nil {
						t.Fatal(err)
					}
				}
				pass()
				h.exit(tk.ID, 0)
				h.waitEnd(tk.ID)
				evs := h.events(tk.ID)
				checkSeqs(t, evs)
				if got := messages(t, evs); !slices.Equal(got, []string{"after the long line"}) {
					t.Fatalf("messages %q", got)
				}
				var raws int
				for _, e := range evs {
					if len(e.Data) > maxLineBytes+1024 {
						t.Fatalf("event %d holds %d bytes, more than a line may", e.Seq, len(e.Data))
					}
					if e.Type == agent.TypeRaw || e.Type == agent.TypeLog { // its head: not JSON, so a log line
						raws++
					}
				}
				if raws != 1 {
					t.Fatalf("%d events for one long line, want 1", raws)
				}
			})
		})
	}
}

// A task whose sandbox is purged while it runs stores nothing more and ends its run.
func TestPurgedTaskStopsStoring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		tk := h.start(Request{Prompt: "work"})
		h.write(tk.ID, text("one"))
		pass()
		if _, err := h.db.PurgeSandbox(context.Background(), "sb"); err != nil {
			t.Fatal(err)
		}
		h.write(tk.ID, text("two"))
		h.waitRun(tk.ID)
		if evs, _ := h.db.TaskEvents(h.ctx, tk.ID, 0, 100); len(evs) != 0 {
			t.Fatalf("%d events of a purged task", len(evs))
		}
		if h.r.Running() != 0 || h.inUse.Load() != 0 {
			t.Fatalf("after purge: running %d, busy %d", h.r.Running(), h.inUse.Load())
		}
	})
}
