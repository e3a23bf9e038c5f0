package agent

import (
	"strconv"
	"strings"
)

// Patches: what a file tool changed, as a unified diff a client can show.
// Claude Code gives the hunks of an edit (tool_use_result.structuredPatch,
// the shape of jsdiff's structuredPatch); OpenCode gives the diff text of an
// edit (state.metadata.diff). Either is cut to patchLimit bytes, so a huge
// rewrite cannot fill the event store.

// structuredPatch renders Claude Code's hunks for path:
//
//	[{"oldStart":3,"oldLines":1,"newStart":3,"newLines":2,"lines":[" a","-b","+c","+d"]}]
//
// It returns "" when there are no hunks (a created file gives none: the
// whole file is its content, which events never carry).
func structuredPatch(path string, hunks []any) string {
	if len(hunks) == 0 || path == "" {
		return ""
	}
	var b patchBuilder
	b.line("--- a/" + strings.TrimPrefix(path, "/"))
	b.line("+++ b/" + strings.TrimPrefix(path, "/"))
	n := 0
	for _, h := range hunks {
		hunk := obj(h)
		lines := list(hunk, "lines")
		if hunk == nil || lines == nil {
			continue
		}
		n++
		b.line("@@ -" + span(hunk, "oldStart", "oldLines") + " +" + span(hunk, "newStart", "newLines") + " @@")
		for _, l := range lines {
			if s, ok := l.(string); ok {
				b.line(s)
			}
		}
		if b.full {
			break
		}
	}
	if n == 0 {
		return ""
	}
	return b.String()
}

// span is a hunk's "start,lines" range.
func span(hunk map[string]any, start, lines string) string {
	return strconv.FormatInt(count(hunk, start), 10) + "," + strconv.FormatInt(count(hunk, lines), 10)
}

// clipPatch bounds a diff text a CLI gave.
func clipPatch(diff string) string {
	if strings.TrimSpace(diff) == "" {
		return ""
	}
	var b patchBuilder
	for l := range strings.Lines(diff) {
		b.line(strings.TrimSuffix(l, "\n"))
		if b.full {
			break
		}
	}
	return b.String()
}

// patchBuilder writes whole lines while they fit patchLimit, then a note
// that the patch was cut.
type patchBuilder struct {
	strings.Builder
	full bool
}

const cutNote = "… (patch cut at 16 KiB)\n"

func (b *patchBuilder) line(s string) {
	if b.full {
		return
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if b.Len()+len(s)+1 > patchLimit-len(cutNote) {
		b.full = true
		b.WriteString(cutNote)
		return
	}
	b.WriteString(s)
	b.WriteByte('\n')
}
