// Package fake holds what the fake agent CLIs of the sandboxd/testkit image
// share: the behaviours a prompt asks for, ordered JSON objects for lines
// shaped like the real CLIs', a paced writer, and the files a run makes.
//
// A fake never prints the value of an environment variable: the provider
// keys it checks are only ever tested for presence.
package fake

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scenario is what a prompt asks of a fake run. Each behaviour is a word in
// the prompt; any mix of them works.
type Scenario struct {
	Sleep    int    // "sleep=N": N seconds of progress, one event a second, before the normal run
	Fail     bool   // "fail": an error in the CLI's format, exit 1
	Unknown  bool   // "unknown-event": also an event of a type the parsers do not know
	Subagent bool   // "subagent": the agent hands a survey of the app to a subagent first
	Wait     string // "wait=PATH": the subagent pauses after its first progress until PATH exists
	Recover  bool   // "recover": an error the run recovers from (an answer cut at the output limit)
	Hooks    bool   // "hooks": hook and status lines around the tool calls
	Deny     bool   // "deny": the CLI refuses one tool call for want of a permission
	Edit     bool   // "edit": index.html is edited after it is written, with a patch
	Log      bool   // "log": lines on stdout that are not JSON (a runtime warning, a stack trace)
	V2       bool   // "format=v2": OpenCode 2.0's stream instead of 1.x's
}

// MaxSleep caps sleep=N, and how long wait=PATH waits, so a typo cannot
// leave a fake running for days.
const MaxSleep = 3600

var (
	sleepRE = regexp.MustCompile(`\bsleep=(\d+)`)
	waitRE  = regexp.MustCompile(`\bwait=(/[^\s]+)`)
	wordRE  = regexp.MustCompile(`[a-z0-9=-]+`)
)

// ParseScenario reads the behaviours a prompt asks for.
func ParseScenario(prompt string) Scenario {
	words := map[string]bool{}
	for _, w := range wordRE.FindAllString(strings.ToLower(prompt), -1) {
		words[w] = true
	}
	s := Scenario{
		Fail:     strings.Contains(prompt, "fail"),
		Unknown:  strings.Contains(prompt, "unknown-event"),
		Subagent: words["subagent"],
		Recover:  words["recover"],
		Hooks:    words["hooks"],
		Deny:     words["deny"],
		Edit:     words["edit"],
		Log:      words["log"],
		V2:       words["format=v2"],
	}
	if m := sleepRE.FindStringSubmatch(prompt); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > MaxSleep {
			n = MaxSleep
		}
		s.Sleep = n
	}
	if m := waitRE.FindStringSubmatch(prompt); m != nil {
		s.Wait = m[1]
	}
	return s
}

// WaitFor returns once path exists, or after MaxSleep seconds: a test
// holds a fake at a point of its run by making it wait for a file.
func WaitFor(path string) {
	deadline := time.Now().Add(MaxSleep * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KV is one member of an Obj.
type KV struct {
	K string
	V any
}

// Obj is a JSON object that keeps its members in order, as the real CLIs
// print them ("type" first).
type Obj []KV

func (o Obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := Marshal(kv.K)
		if err != nil {
			return nil, err
		}
		v, err := Marshal(kv.V)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Marshal encodes v as JavaScript's JSON.stringify does for the values the
// fakes print: without escaping <, > and & as Go does by default.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// DefaultStep is the pause after each line when FAKEAGENT_STEP_MS is unset.
const DefaultStep = 50 * time.Millisecond

// Out writes lines, each at once (stdout is not buffered) and each followed
// by a pause, so that a reader sees the stream arrive over time.
type Out struct {
	mu   sync.Mutex // a signal handler prints too
	w    io.Writer
	step time.Duration
}

// NewOut paces lines by FAKEAGENT_STEP_MS (milliseconds, default 50).
func NewOut(w io.Writer, getenv func(string) string) *Out {
	step := DefaultStep
	if ms, err := strconv.Atoi(getenv("FAKEAGENT_STEP_MS")); err == nil && ms >= 0 {
		step = time.Duration(ms) * time.Millisecond
	}
	return &Out{w: w, step: step}
}

// JSON prints v as one line and pauses.
func (o *Out) JSON(v any) {
	b, err := Marshal(v)
	if err != nil {
		panic(err) // the fakes print only values they build
	}
	o.Line(string(b))
}

// Line prints s and a newline, then pauses.
func (o *Out) Line(s string) {
	o.mu.Lock()
	io.WriteString(o.w, s+"\n")
	o.mu.Unlock()
	time.Sleep(o.step)
}

// Progress calls each(i) once a second for i = 1..seconds.
func Progress(seconds int, each func(i int)) {
	for i := 1; i <= seconds; i++ {
		time.Sleep(time.Second)
		each(i)
	}
}

// File is a file a fake run wrote.
type File struct {
	Path    string // absolute
	Content string
}

// AppFiles are the files a fake run writes into dir as the prompt's answer:
// index.html with the prompt, as given, in its <h1>, and notes.md; both
// carry the marker "made by fake-<name>".
func AppFiles(dir, name, prompt string) []File {
	marker := "made by fake-" + name
	return []File{
		{
			Path: filepath.Join(dir, "index.html"),
			Content: "<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  <title>" + marker + "</title>\n</head>\n<body>\n" +
				"  <h1>" + prompt + "</h1>\n  <p>" + marker + "</p>\n</body>\n</html>\n",
		},
		{
			Path:    filepath.Join(dir, "notes.md"),
			Content: "# Notes\n\nThe prompt was:\n\n> " + strings.ReplaceAll(prompt, "\n", "\n> ") + "\n\nindex.html shows it as a heading.\n\n" + marker + "\n",
		},
	}
}

// Write writes the file.
func (f File) Write() error { return os.WriteFile(f.Path, []byte(f.Content), 0o644) }

// ID is prefix followed by n random letters and digits.
func ID(prefix string, n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

// UUID is a random version 4 UUID.
func UUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Usage is a fake CLI's error for bad arguments: its message and exit 2.
type Usage struct{ Msg string }

func (e Usage) Error() string { return e.Msg }

// Usagef makes a Usage error.
func Usagef(format string, a ...any) error { return Usage{fmt.Sprintf(format, a...)} }

// Edit is a change a fake run makes to a file it wrote: a line added before
// </body> of index.html, with the patch the CLIs report for it.
type Edit struct {
	Path       string
	Old, New   string // the replaced text and its replacement
	Content    string // the file after the edit
	OldStart   int    // the hunk: one line of context, then the added line
	Lines      []string
	UnifiedOut string // the hunk as a unified diff (OpenCode's metadata.diff)
}

// EditIndex is the edit of f (index.html as AppFiles makes it).
func EditIndex(f File, name string) Edit {
	added := "  <p>edited by fake-" + name + "</p>"
	e := Edit{Path: f.Path, Old: "</body>", New: added + "\n</body>"}
	e.Content = strings.Replace(f.Content, e.Old, e.New, 1)
	lines := strings.Split(f.Content, "\n")
	at := 1
	for i, l := range lines {
		if l == "</body>" {
			at = i // the line before, 0-based, is the context
			break
		}
	}
	e.OldStart = at
	e.Lines = []string{" " + lines[at-1], "+" + added, " </body>"}
	e.UnifiedOut = "Index: " + f.Path + "\n===================================================================\n--- " + f.Path + "\n+++ " + f.Path + "\n" +
		fmt.Sprintf("@@ -%d,2 +%d,3 @@\n", at, at) + strings.Join(e.Lines, "\n") + "\n"
	return e
}

// Write applies the edit.
func (e Edit) Write() error { return os.WriteFile(e.Path, []byte(e.Content), 0o644) }
