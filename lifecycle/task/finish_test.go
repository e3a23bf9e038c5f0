package task

import (
	"encoding/json"
	"testing"
	"testing/synctest"

	"github.com/sandboxd/sandboxd/lifecycle/agent"
	"github.com/sandboxd/sandboxd/store"
)

// An error line is the agent's last word: the parser holds it back until the stream ends,
// so the runner must ask for it. It shows as an error event before done, and the result
// carries the agent's failure kind, its sentence and OpenCode's ref (issue 19).
func TestErrorAtTheEndOfTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t)
		defer h.close()
		tk := h.start(Request{Prompt: "make a todo app"})
		h.write(tk.ID, text("Reading the project.")+
			`{"type":"error","sessionID":"ses_1","error":{"name":"ProviderAuthError","data":{"providerID":"anthropic","message":"API key is missing","ref":"err_01K2Q8V4ZC7M3Y5W1N6P9R0T2X"}}}`+"\n")
		h.exit(tk.ID, 1)
		done := h.waitEnd(tk.ID)
		res := h.result(done)
		if done.Status != store.TaskFailed || res.FailureReason != "agent_error" || res.FailureKind != agent.FailureAuth ||
			res.Error != "API key is missing" || res.ErrorRef != "err_01K2Q8V4ZC7M3Y5W1N6P9R0T2X" {
			t.Fatalf("result %s %+v; want failed, agent_error, %s, the sentence and the ref", done.Status, res, agent.FailureAuth)
		}
		evs := h.events(tk.ID)
		checkSeqs(t, evs)
		if len(evs) < 2 || evs[len(evs)-2].Type != agent.TypeError {
			t.Fatalf("events %v: want the error event just before done", types(evs))
		}
		var ev agent.Event
		if err := json.Unmarshal(evs[len(evs)-2].Data, &ev); err != nil || ev.Text == "" {
			t.Fatalf("error event %s: %v", evs[len(evs)-2].Data, err)
		}
	})
}

func types(evs []store.TaskEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}
