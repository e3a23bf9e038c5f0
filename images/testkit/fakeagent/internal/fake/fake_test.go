package fake

import (
	"reflect"
	"testing"
)

func TestParseScenario(t *testing.T) {
	tests := []struct {
		prompt string
		want   Scenario
	}{
		{"build a page", Scenario{}},
		{"sleep=3 then fail", Scenario{Sleep: 3, Fail: true}},
		{"nosleep=3", Scenario{}},
		{"sleep=99999999999999999999 unknown-event", Scenario{Sleep: MaxSleep, Unknown: true}},
		{"a subagent, wait=/tmp/go then recover; hooks, deny, edit, log format=v2", Scenario{Subagent: true, Wait: "/tmp/go", Recover: true, Hooks: true, Deny: true, Edit: true, Log: true, V2: true}},
		{"subagents denying edits format=v3", Scenario{}},
	}
	for _, tt := range tests {
		if got := ParseScenario(tt.prompt); got != tt.want {
			t.Errorf("ParseScenario(%q) = %+v, want %+v", tt.prompt, got, tt.want)
		}
	}
}

func TestFlags(t *testing.T) {
	f := Flags{Strings: map[string]bool{"model": true}, Bools: map[string]bool{"auto": true}, Short: map[string]string{"m": "model"}}
	a, err := f.Parse([]string{"x", "-m", "a/b", "--auto", "y", "--model=c/d", "--auto=false", "--", "--auto", "-m"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Values["model"] != "c/d" || !a.Set["auto"] || !reflect.DeepEqual(a.Positional, []string{"x", "y", "--auto", "-m"}) {
		t.Errorf("parsed %+v", a)
	}
	for _, bad := range [][]string{{"--nope"}, {"-x"}, {"-m=a"}, {"--model"}, {"--auto=yes"}} {
		if _, err := f.Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestObj(t *testing.T) {
	b, err := Marshal(Obj{{K: "type", V: "text"}, {K: "text", V: "<h1>&</h1>"}, {K: "n", V: Obj{}}})
	if err != nil || string(b) != `{"type":"text","text":"<h1>&</h1>","n":{}}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}
