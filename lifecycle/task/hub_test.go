package task

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle/agent"
)

// hubEntries counts what the runner holds for readers: a channel per job that has one,
// and jobs themselves.
func (r *Runner) hubEntries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs)
}

// Issue 10, bug 1: every events request for a finished task left an entry in the hub
// that nothing ever removed, so the map grew with every request. Readers of a finished
// task hold nothing; a reader of a running task is woken by its events and its end, and
// the hub is empty once the task has ended, whether or not its readers stayed.
func TestHubHoldsNothingOnceTheTaskEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		tk := h.start(Request{Prompt: "build it"})
		synctest.Wait() // the runner has stored its "started" event and waits for the agent

		evs, more, err := h.r.TaskEvents(h.ctx, tk.ID, 0, 500)
		if err != nil || len(evs) != 1 {
			t.Fatalf("events of a task that started: %v %+v", err, evs)
		}
		after := evs[0].Seq
		h.write(tk.ID, text("working"))
		select {
		case <-more:
		case <-time.After(time.Minute):
			t.Fatal("a reader was not woken by a new event")
		}
		// This reader reads once more and leaves without waiting; another waits for the end.
		if _, _, err := h.r.TaskEvents(h.ctx, tk.ID, after, 500); err != nil {
			t.Fatal(err)
		}
		_, more, _ = h.r.TaskEvents(h.ctx, tk.ID, 0, 500)
		h.exit(tk.ID, 0)
		select {
		case <-more:
		case <-time.After(time.Minute):
			t.Fatal("a reader was not woken by the task's end")
		}
		h.waitEnd(tk.ID)
		if n := h.r.hubEntries(); n != 0 {
			t.Fatalf("the hub holds %d entries after the task ended", n)
		}

		for range 100 { // clients replaying the finished task
			evs, _, err := h.r.TaskEvents(h.ctx, tk.ID, 0, 500)
			if err != nil || evs[len(evs)-1].Type != agent.TypeDone {
				t.Fatalf("replay: %v %+v", err, evs)
			}
		}
		if n := h.r.hubEntries(); n != 0 {
			t.Fatalf("the hub holds %d entries after 100 reads of a finished task", n)
		}
	})
}
