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
	"time"
)

// Scenario is what a prompt asks of a fake run.
type Scenario struct {
	Sleep   int  // "sleep=N": N seconds of progress, one event a second, before the normal run
	Fail    bool // "fail": an error in the CLI's format, exit 1
	Unknown bool // "unknown-event": also an event of a type the parsers do not know
}

// MaxSleep caps sleep=N, so a typo cannot leave a fake running for days.
const MaxSleep = 3600

var sleepRE = regexp.MustCompile(`\bsleep=(\d+)`)

// ParseScenario reads the behaviours a prompt asks for.
func ParseScenario(prompt string) Scenario {
	s := Scenario{
		Fail:    strings.Contains(prompt, "fail"),
		Unknown: strings.Contains(prompt, "unknown-event"),
	}
	if m := sleepRE.FindStringSubmatch(prompt); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > MaxSleep {
			n = MaxSleep
		}
		s.Sleep = n
	}
	return s
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
	io.WriteString(o.w, s+"\n")
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
