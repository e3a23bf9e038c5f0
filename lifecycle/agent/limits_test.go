package agent

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// Whatever an agent prints, a parser holds a bounded amount: the final message keeps its
// last MaxFinalMessage bytes, and calls that never end do not pile up.
func TestParsersHoldBoundedState(t *testing.T) {
	para := strings.Repeat("é", 500) // 1000 bytes, two per character: cuts land inside them
	t.Run("opencode", func(t *testing.T) {
		p := OpenCode{}.NewParser().(*openCodeParser)
		for i := range 5000 {
			p.Parse(fmt.Appendf(nil, `{"type":"text","part":{"type":"text","text":%q}}`, para))
			p.Parse(fmt.Appendf(nil, `{"type":"tool_use","part":{"callID":"c%d","tool":"bash","state":{"status":"running","input":{"command":"ls"}}}}`, i))
		}
		checkFinal(t, p.Result().FinalMessage, para)
		if len(p.shown) > maxTracked {
			t.Fatalf("%d calls tracked, at most %d", len(p.shown), maxTracked)
		}
	})
	t.Run("claude", func(t *testing.T) {
		p := Claude{}.NewParser().(*claudeParser)
		for i := range 5000 {
			p.Parse(fmt.Appendf(nil, `{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":%q},{"type":"tool_use","id":"t%d","name":"Bash","input":{"command":"ls"}}]}}`, para, i))
		}
		checkFinal(t, p.Result().FinalMessage, para)
		if len(p.tools) > maxTracked {
			t.Fatalf("%d calls tracked, at most %d", len(p.tools), maxTracked)
		}
	})
}

func checkFinal(t *testing.T, msg, para string) {
	t.Helper()
	if len(msg) > MaxFinalMessage || len(msg) < MaxFinalMessage-2*len(para) || !strings.HasSuffix(msg, para) {
		t.Fatalf("final message of %d bytes (at most %d), ending %q", len(msg), MaxFinalMessage, msg[max(0, len(msg)-8):])
	}
	if !utf8.ValidString(msg) {
		t.Fatalf("the cut split a character: starts %q", msg[:8])
	}
}
