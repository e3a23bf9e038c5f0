package task

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sandboxd/sandboxd/store"
)

// pass lets the runner's loop take one tick.
func pass() {
	time.Sleep(taskTick)
	synctest.Wait()
}

// storeOutage plays issue 10's bug 2: the store fails while the agent is mid-line, and
// comes back before the line ends. It checks what is stored once the store is back.
func storeOutage(h *harness, tk store.Task) {
	t := h.t
	t.Helper()
	h.write(tk.ID, text("one")+text("two"))
	pass()
	h.db.failAppend.Store(true)
	five := text("five")
	cut := strings.Index(five, "five") + 2 // mid-word: a read from a wrong place shows
	h.write(tk.ID, text("three")+text("four")+five[:cut])
	pass()
	pass()
	h.db.failAppend.Store(false)
	pass()
	h.write(tk.ID, five[cut:]+text("six"))
	pass()
	if got, want := h.storedOffset(tk.ID), h.logSize(tk.ID); got != want {
		t.Fatalf("stored log offset %d once the store came back, want %d (the whole log)", got, want)
	}
	if got, want := messages(t, h.events(tk.ID)), []string{"one", "two", "three", "four", "five", "six"}; !slices.Equal(got, want) {
		t.Fatalf("messages once the store came back:\n got %q\nwant %q", got, want)
	}
}

func (h *harness) logSize(taskID string) int64 {
	st, err := os.Stat(filepath.Join(h.ws, taskLog(taskID)))
	if err != nil {
		h.t.Fatal(err)
	}
	return st.Size()
}

func (h *harness) storedOffset(taskID string) int64 {
	got, err := h.r.GetTask(h.ctx, "sb", taskID)
	if err != nil {
		h.t.Fatal(err)
	}
	return got.LogOffset
}

// checkEnd checks a task that ended well after the agent said want, one message a line.
func checkEnd(h *harness, done store.Task, want []string) {
	t := h.t
	t.Helper()
	evs := h.events(done.ID)
	checkSeqs(t, evs)
	if got := messages(t, evs); !slices.Equal(got, want) {
		t.Fatalf("messages:\n got %q\nwant %q", got, want)
	}
	res := h.result(done)
	if done.Status != store.TaskSucceeded || res.FinalMessage != strings.Join(want, "\n\n") {
		t.Fatalf("result: status %s, final message %q", done.Status, res.FinalMessage)
	}
	if got, want := h.storedOffset(done.ID), h.logSize(done.ID); got != want {
		t.Fatalf("stored log offset %d at the end, want %d", got, want)
	}
}

// Issue 10, bug 2: when storing events failed, the runner had already moved its read
// position past the lines it could not store, but not the stored offset; the next read
// started inside bytes it had read, stored garbled and repeated lines, and left a wrong
// offset to resume from. Each line must be stored once, in order, numbered 1..N, and the
// parser must see each line once (the final message is built from them).
func TestStoreOutageMidLineLosesAndRepeatsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		tk := h.start(Request{Prompt: "build it"})
		storeOutage(h, tk)
		h.write(tk.ID, text("seven"))
		h.exit(tk.ID, 0)
		checkEnd(h, h.waitEnd(tk.ID), []string{"one", "two", "three", "four", "five", "six", "seven"})
	})
}

// After an outage, sandboxd stops mid-line and starts again: the new runner resumes from
// the stored offset, and the events go on without a gap or a repeat.
func TestResumeAfterStoreOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		tk := h.start(Request{Prompt: "build it"})
		storeOutage(h, tk)
		eight := text("eight")
		h.write(tk.ID, text("seven")+eight[:10])
		pass()
		h.r.Close()
		h.write(tk.ID, eight[10:])
		h.r = h.newRunner()
		if err := h.r.Resume(h.ctx); err != nil {
			t.Fatal(err)
		}
		h.exit(tk.ID, 0)
		checkEnd(h, h.waitEnd(tk.ID), []string{"one", "two", "three", "four", "five", "six", "seven", "eight"})
	})
}
