package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Messages for bodies that do not decode. encoding/json speaks of Go: "cannot unmarshal
// string into Go struct field execBody.cmd of type []string". A user needs the field, what
// it takes, and what was sent: "cmd must be an array of strings, like
// ["sh","-c","echo hi"]; got a string" (issue 10).

// errTrailing is a body with more after its one object.
var errTrailing = errors.New("trailing data")

// decodeMessage says in plain words why a body of type root did not decode; body is its
// start, as far as it was kept.
func decodeMessage(err error, root reflect.Type, body []byte) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, errTrailing):
		return "the body has more after its JSON object: send exactly one object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends before its JSON does: a closing } or ] or quote is missing"
	case errors.As(err, &syntax):
		return fmt.Sprintf("the body is not valid JSON: %s, at byte %d", syntax.Error(), syntax.Offset)
	case errors.As(err, &typ):
		return typeMessage(typ, root, body)
	}
	// DisallowUnknownFields reports with a plain error: `json: unknown field "portz"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, err := strconv.Unquote(name); err == nil {
			return unknownFieldMessage(name, root, body)
		}
	}
	return "the body is not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

// examples show, by field name, what a value looks like.
var examples = map[string]string{
	"cmd":      `["sh","-c","echo hi"]`,
	"ports":    `[3000]`,
	"port":     `3000`,
	"env":      `{"NODE_ENV":"development"}`,
	"labels":   `{"team":"web"}`,
	"services": `[{"name":"web","cmd":["devserver"],"port":3000}]`,
	"cpus":     `1.5`,
}

func typeMessage(e *json.UnmarshalTypeError, root reflect.Type, body []byte) string {
	if e.Field == "" {
		return "the body must be a JSON object, like {\"key\":\"value\"}; got " + article(e.Value)
	}
	want := fieldType(root, e.Field)
	if want == nil {
		want = e.Type
	}
	field := e.Field
	// The decoder says "services.cmd"; the place says which service. An item's own index
	// goes: the message speaks of the whole field ("ports … got an item that is …").
	place := placeAt(body, root, e.Offset)
	for strings.HasSuffix(place, "]") {
		place = place[:strings.LastIndexByte(place, '[')]
	}
	if place != field && withoutIndexes(place) == field {
		field = place
	}
	msg := field + " must be " + describe(want)
	name := e.Field[strings.LastIndexByte(e.Field, '.')+1:]
	if ex, ok := examples[name]; ok && !ours(want) {
		msg += ", like " + ex
	}
	return msg + "; got " + gotValue(e, want)
}

// gotValue describes what was sent. For our own types Value is the text itself; for the
// decoder's it is a kind ("string"), or "number 1e10" for a number the type cannot hold.
// When the wrong value sits inside an array or object, the message says so.
func gotValue(e *json.UnmarshalTypeError, want reflect.Type) string {
	if ours(e.Type) {
		return e.Value
	}
	got := article(e.Value)
	if n, ok := strings.CutPrefix(e.Value, "number "); ok {
		got = n
		// A whole number the type cannot hold is out of range; 1.5 for a whole number
		// speaks for itself.
		if f, err := strconv.ParseFloat(n, 64); err == nil && f == math.Trunc(f) {
			got += ", which is out of range"
		}
	}
	for want.Kind() == reflect.Pointer {
		want = want.Elem()
	}
	if want != e.Type {
		switch want.Kind() {
		case reflect.Slice, reflect.Array:
			return "an item that is " + got
		case reflect.Map:
			return "a value that is " + got
		}
	}
	return got
}

// article names a JSON kind as a noun: "string" → "a string".
func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "true or false"
	case "string", "number":
		return "a " + kind
	}
	return kind
}

var (
	durationType  = reflect.TypeFor[duration]()
	sizeType      = reflect.TypeFor[size]()
	timestampType = reflect.TypeFor[timestamp]()
	timeType      = reflect.TypeFor[time.Time]()
)

// ours reports whether t describes itself with an example.
func ours(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t == durationType || t == sizeType || t == timestampType || t == timeType
}

// describe says what a field of type t takes: "an array of strings".
func describe(t reflect.Type) string {
	switch t {
	case durationType:
		return `a duration like "30s", "15m" or "7d", or a number of seconds`
	case sizeType:
		return `a size like "4G" or "512M", or a number of bytes`
	case timestampType, timeType:
		return `a time like "2030-01-02T15:04:05Z" (RFC 3339)`
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + plural(t.Elem())
	case reflect.Map:
		return "an object whose values are " + plural(t.Elem())
	case reflect.Struct:
		return "an object"
	}
	return "a JSON value"
}

// plural names many values of type t: "strings", "whole numbers".
func plural(t reflect.Type) string {
	switch t {
	case durationType:
		return "durations"
	case sizeType:
		return "sizes"
	case timestampType, timeType:
		return "times"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return plural(t.Elem())
	case reflect.String:
		return "strings"
	case reflect.Bool:
		return "true or false values"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole numbers"
	case reflect.Float32, reflect.Float64:
		return "numbers"
	case reflect.Slice, reflect.Array:
		return "arrays of " + plural(t.Elem())
	case reflect.Map, reflect.Struct:
		return "objects"
	}
	return "JSON values"
}

// fieldType is the declared type of the field at path ("services.cmd") in root, or nil.
func fieldType(root reflect.Type, path string) reflect.Type {
	t := root
	for _, name := range strings.Split(path, ".") {
		f, ok := fieldsOf(elemStruct(t))[name]
		if !ok {
			return nil
		}
		t = f
	}
	return t
}

// elemStruct is the struct t holds, through pointers, slices and maps; nil if none.
func elemStruct(t reflect.Type) reflect.Type {
	for t != nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			if ours(t) {
				return nil
			}
			return t
		default:
			return nil
		}
	}
	return nil
}

// fieldsOf maps the JSON names of struct t's fields to their types, embedded structs'
// fields included.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	if t == nil {
		return out
	}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && name == "" {
			if s := elemStruct(f.Type); s != nil {
				for k, v := range fieldsOf(s) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// unknownFieldMessage names the field, the object it was found in, and what was likely
// meant: a field of that object a slip away, a usual synonym of one, or else that
// object's fields.
func unknownFieldMessage(name string, root reflect.Type, body []byte) string {
	where, owner, ok := locateUnknown(body, root, name)
	if !ok { // beyond the kept start: the body's own fields are the best guess
		where, owner = "", elemStruct(root)
	}
	msg := fmt.Sprintf("unknown field %q", name)
	whose := "the body's own fields are "
	if where != "" {
		msg += " in " + where
		whose = where + "'s fields are "
	}
	own := fieldsOf(owner)
	if alias, ok := synonyms[strings.ToLower(name)]; ok && own[alias] != nil {
		return msg + fmt.Sprintf("; did you mean %q?", alias)
	}
	names := slices.Sorted(maps.Keys(own))
	best, bestDist := "", max(3, len(name)/2+1) // suggest only names a slip away
	for _, k := range names {
		if d := editDistance(strings.ToLower(name), k); d < bestDist && d < len(k) {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return msg + fmt.Sprintf("; did you mean %q?", best)
	}
	return msg + "; " + whose + strings.Join(names, ", ")
}

// synonyms are names people send for a field by another name: other APIs' words, or ours
// misremembered.
var synonyms = map[string]string{
	"command": "cmd", "commands": "cmd", "comand": "cmd", "args": "cmd", "argv": "cmd",
	"workdir": "cwd", "dir": "cwd", "directory": "cwd",
	"envs": "env", "environment": "env", "envvars": "env",
	"port": "ports", "expose": "ports",
	"cpu": "cpus", "mem": "memory", "ram": "memory",
}

// editDistance is the Levenshtein distance between a and b (short names: O(len a × len b)).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
