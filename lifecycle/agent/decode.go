package agent

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The CLIs' streams are read leniently: a line is decoded into generic JSON
// values and each field is taken only when it has the expected type, so a
// field of an unexpected type reads as absent instead of turning the whole
// line into an error. What no mapping knows becomes a raw event; a line that
// is not JSON at all becomes a log event.

// decode trims line and decodes it. It returns the trimmed line (nil when
// blank) and the decoded value, or ok false when the line is not JSON.
func decode(line []byte) (trimmed []byte, v any, ok bool) {
	trimmed = bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return nil, nil, false
	}
	if err := json.Unmarshal(trimmed, &v); err != nil {
		return trimmed, nil, false
	}
	return trimmed, v, true
}

// rawJSON is a raw event holding a copy of b, which must be valid JSON.
func rawJSON(b []byte) Event {
	return Event{Type: TypeRaw, Raw: bytes.Clone(b)}
}

// rawValue is a raw event holding v, re-encoded: a block inside a line.
func rawValue(v any) Event {
	b, err := json.Marshal(v)
	if err != nil {
		// Values decoded from JSON always encode; this is only a guard.
		b, _ = json.Marshal(err.Error())
	}
	return Event{Type: TypeRaw, Raw: b}
}

// logEvent is a log event for a stdout line that is not JSON (a CLI's
// warning, a stack trace): its text without terminal escapes, cut to
// logLimit. Invalid UTF-8 becomes U+FFFD.
func logEvent(line []byte) Event {
	return Event{Type: TypeLog, Text: clip(plain(line), logLimit)}
}

// plain is line as text a person reads: valid UTF-8, without ANSI escape
// sequences (a CLI colours its warnings even when stdout is a file) or other
// control characters but tabs; trailing white space goes, indentation stays.
func plain(line []byte) string {
	s := strings.ToValidUTF8(string(line), "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0x1b { // ESC [ params final, or ESC and one character
			if i+1 < len(s) && s[i+1] == '[' {
				j := i + 2
				for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
					j++
				}
				i = j
			} else {
				i++
			}
			continue
		}
		if c < 0x20 && c != '\t' || c == 0x7f {
			continue
		}
		b.WriteByte(c)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

// clip cuts s to at most n characters, the last of them "…" when cut,
// keeping its white space (unlike short).
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// obj returns v as a JSON object, or nil.
func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// str returns m[k] when it is a string.
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// boolean returns m[k] when it is a bool.
func boolean(m map[string]any, k string) bool {
	b, _ := m[k].(bool)
	return b
}

// list returns m[k] when it is an array.
func list(m map[string]any, k string) []any {
	l, _ := m[k].([]any)
	return l
}

// number returns m[k] when it is a number.
func number(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}

// count returns m[k] as a token count: a whole number in range, else 0.
func count(m map[string]any, k string) int64 {
	f := number(m, k)
	if f < 0 || f > 1<<53 {
		return 0
	}
	return int64(f)
}

// short makes s fit a summary: runs of white space become one space, and
// it is cut to at most n characters, the last of them "…" when cut.
func short(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(strings.ToValidUTF8(s, "\uFFFD"), unicode.IsSpace), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Limits of the text an event carries.
const (
	inputLimit  = 200      // Event.Input
	detailLimit = 500      // a thinking summary, a tool's error, a subagent's summary
	logLimit    = 1000     // a log line
	patchLimit  = 16 << 10 // Event.Patch, in bytes
	maxTracked  = 4096     // tool calls, subagents and tasks a parser remembers at once
	finalLimit  = 64 << 10 // Result.FinalMessage, in bytes
)

// MaxFinalMessage bounds Result.FinalMessage, whatever the agent prints: the runner feeds
// a parser every line, those past a task's event cap too (issue 11).
const MaxFinalMessage = finalLimit

// keepTail bounds an answer a parser builds from many texts: a stream of
// texts must not grow it without end. The end of the answer is kept.
func keepTail(s string) string {
	if len(s) <= finalLimit {
		return s
	}
	return strings.ToValidUTF8(s[len(s)-finalLimit:], "")
}

// relPath reports p relative to dir when p is dir or under it, else p
// cleaned. The paths are the sandbox's, so always slash-separated.
func relPath(dir, p string) string {
	if p == "" {
		return ""
	}
	c := path.Clean(p)
	if !path.IsAbs(c) {
		return c // the CLIs run in dir, so a relative path is already relative to it
	}
	if c == dir {
		return "."
	}
	if dir == "/" {
		return c[1:]
	}
	if rest, ok := strings.CutPrefix(c, dir+"/"); ok {
		return rest
	}
	return c
}

// dirOr is dir cleaned, or AppDir when dir is empty.
func dirOr(dir string) string {
	if dir == "" {
		return AppDir
	}
	return path.Clean(dir)
}
