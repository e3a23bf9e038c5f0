package agent

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// Tool inputs, as the CLIs name their keys. OpenCode uses camelCase
// (filePath, oldString), Claude Code snake_case (file_path, old_string);
// both put a shell command in "command".

// fileTools are the tools, by lower-case name, that change the file their
// input names. Claude Code's NotebookEdit names it notebook_path.
var fileTools = map[string]bool{
	"write":        true, // both
	"edit":         true, // both
	"multiedit":    true, // both
	"notebookedit": true, // Claude Code
}

// subagentTools start a subagent: Claude Code's Agent (named Task before
// 2.1.224, and still listed as Task by the init line) and OpenCode's task.
var subagentTools = map[string]bool{"agent": true, "task": true}

// patchTools take a patch text naming the files they change (OpenCode).
var patchTools = map[string]bool{"patch": true, "apply_patch": true}

// pathKeys name a file in a tool input, in order of preference.
var pathKeys = []string{"filePath", "file_path", "notebook_path"}

// summaryKeys are tried in order for the summary of a tool input.
var summaryKeys = []string{
	"filePath", "file_path", "notebook_path", // file tools
	"command",     // bash
	"url",         // webfetch
	"query",       // websearch
	"description", // task / agent
	"path",        // list
	"pattern",     // glob, grep without a path
	"name",        // skill
	"prompt",
}

// isPathKey reports whether the value of k is a path to show relative to the app dir.
func isPathKey(k string) bool {
	return k == "path" || slices.Contains(pathKeys, k)
}

// summarize returns a short summary of a tool's input, never the content it
// writes, and the files the tool changes when it succeeds, relative to dir
// when under it. tool is the lower-case tool name.
func summarize(tool string, input map[string]any, dir string) (summary string, changed []string) {
	switch {
	case fileTools[tool]:
		for _, k := range pathKeys {
			if p := str(input, k); p != "" {
				changed = []string{relPath(dir, p)}
				break
			}
		}
	case patchTools[tool]:
		changed = patchFiles(str(input, "patchText"), dir)
		return short(strings.Join(changed, ", "), inputLimit), changed
	}
	switch tool {
	case "glob", "grep":
		s := str(input, "pattern")
		if p := str(input, "path"); p != "" {
			s += " in " + relPath(dir, p)
		}
		return short(s, inputLimit), changed
	case "todowrite":
		return strconv.Itoa(len(list(input, "todos"))) + " todos", changed
	}
	for _, k := range summaryKeys {
		if s := str(input, k); s != "" {
			if isPathKey(k) {
				s = relPath(dir, s)
			}
			return short(s, inputLimit), changed
		}
	}
	if len(input) == 0 {
		return "", changed
	}
	b, err := json.Marshal(input)
	if err != nil {
		return "", changed
	}
	return short(string(b), inputLimit), changed
}

// patchFiles lists the files an OpenCode patch text adds, updates, deletes
// or moves to, in order, each once.
func patchFiles(patch, dir string) []string {
	var files []string
	seen := map[string]bool{}
	for line := range strings.Lines(patch) {
		line = strings.TrimSpace(line)
		for _, prefix := range []string{"*** Add File:", "*** Update File:", "*** Delete File:", "*** Move to:"} {
			if p, ok := strings.CutPrefix(line, prefix); ok {
				p = relPath(dir, strings.TrimSpace(p))
				if p != "" && !seen[p] {
					seen[p] = true
					files = append(files, p)
				}
			}
		}
	}
	return files
}

// fileEvents are the file_changed events for paths. patch goes with the
// change when the tool changed one file; sub is the subagent that made it.
func fileEvents(paths []string, patch string, sub *Subagent) []Event {
	evs := make([]Event, 0, len(paths))
	for _, p := range paths {
		ev := Event{Type: TypeFileChanged, Path: p, Subagent: sub}
		if len(paths) == 1 {
			ev.Patch = patch
		}
		evs = append(evs, ev)
	}
	return evs
}
