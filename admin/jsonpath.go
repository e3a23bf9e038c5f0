package admin

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// Where an unknown field is. encoding/json names the field and nothing else, so "port"
// sent at the top of a create and "comand" sent inside a service read alike, and the
// suggestion was drawn from every name in the body (issue 10's review: "did you mean
// "port"?" for a "port" at the top). The start of the body is kept as it is decoded
// (prefixKeeper), and walked again here with the types alongside to find the object that
// holds the field.

// keptPrefix is how much of a body is kept to locate an unknown field: a field beyond it
// gets the message without its place.
const keptPrefix = 64 << 10

// prefixKeeper passes r through and keeps the first max bytes read.
type prefixKeeper struct {
	r   io.Reader
	max int
	buf []byte
}

func (p *prefixKeeper) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if room := p.max - len(p.buf); room > 0 && n > 0 {
		p.buf = append(p.buf, b[:min(n, room)]...)
	}
	return n, err
}

// frame is an object or array being walked: its type (nil: anything goes inside), its
// place, and the slot the walk is at.
type frame struct {
	t       reflect.Type
	path    string
	array   bool
	index   int
	key     string
	wantKey bool
}

// slot is the place and the declared type of the value f's walk is at.
func (f *frame) slot() (string, reflect.Type) {
	if f.array {
		return f.path + "[" + strconv.Itoa(f.index) + "]", elemOf(f.t)
	}
	p := f.key
	if f.path != "" {
		p = f.path + "." + f.key
	}
	if f.t == nil {
		return p, nil
	}
	if f.t.Kind() == reflect.Map {
		return p, f.t.Elem()
	}
	ft, _ := fieldNamed(f.t, f.key)
	return p, ft
}

// next moves f past the value at its slot.
func (f *frame) next() {
	if f.array {
		f.index++
	} else {
		f.wantKey = true
	}
}

// step is what walk visits: a key of an object, or a value (an object or array as it
// opens, or a scalar) with its place ("services[0].cmd"). in is the object or array it is
// in, nil for the body itself; end is the offset just after its token.
type step struct {
	in    *frame
	isKey bool
	key   string
	place string
	end   int64
}

// walk reads body's tokens with root's types alongside and visits every key and value in
// order until visit returns true or body ends (it may be cut short: the walk just stops).
func walk(body []byte, root reflect.Type, visit func(step) bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			place, t := "", root
			if top != nil {
				place, t = top.slot()
			}
			if visit(step{in: top, place: place, end: dec.InputOffset()}) {
				return
			}
			stack = append(stack, &frame{t: containerOf(t), path: place, array: tok == json.Delim('['), wantKey: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].next()
			}
			continue
		}
		if top == nil {
			return
		}
		if !top.array && top.wantKey {
			key, _ := tok.(string)
			if visit(step{in: top, isKey: true, key: key, end: dec.InputOffset()}) {
				return
			}
			top.key, top.wantKey = key, false
			continue
		}
		place, _ := top.slot()
		if visit(step{in: top, place: place, end: dec.InputOffset()}) {
			return
		}
		top.next()
	}
}

// locateUnknown finds, in body (a body's start), the first key that the struct at its
// place does not have and that reads name: it returns the place of the object ("" for the
// body itself, "services[0]") and the object's struct type.
func locateUnknown(body []byte, root reflect.Type, name string) (where string, owner reflect.Type, ok bool) {
	walk(body, root, func(s step) bool {
		if !s.isKey || s.key != name || s.in.t == nil || s.in.t.Kind() != reflect.Struct {
			return false
		}
		if _, known := fieldNamed(s.in.t, s.key); known {
			return false
		}
		where, owner, ok = s.in.path, s.in.t, true
		return true
	})
	return where, owner, ok
}

// containerOf is t without its pointers when it is a struct, map, slice or array whose
// inside can be checked; nil otherwise (our own types, interfaces: anything goes).
func containerOf(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || ours(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array:
		return t
	}
	return nil
}

func elemOf(t reflect.Type) reflect.Type {
	if t == nil {
		return nil
	}
	return t.Elem()
}

// fieldNamed is the type of struct t's field that JSON key matches, as encoding/json
// matches them: its exact name first, else one equal but for case.
func fieldNamed(t reflect.Type, key string) (reflect.Type, bool) {
	fields := fieldsOf(t)
	if ft, ok := fields[key]; ok {
		return ft, true
	}
	for name, ft := range fields {
		if strings.EqualFold(name, key) {
			return ft, true
		}
	}
	return nil, false
}

// placeAt is the place ("services[1].cmd") of the value that ends, or the object or array
// that opens, at byte offset of body (a decode error's Offset); "" when body does not reach
// it. A type error names its field without array indexes; this adds them.
func placeAt(body []byte, root reflect.Type, offset int64) (place string) {
	walk(body, root, func(s step) bool {
		if s.isKey || s.end < offset {
			return false
		}
		place = s.place
		return true
	})
	return place
}

// withoutIndexes is place as encoding/json names a field: "services[1].cmd" → "services.cmd".
func withoutIndexes(place string) string {
	var b strings.Builder
	skip := false
	for _, r := range place {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}
