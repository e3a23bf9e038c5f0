package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Every way a body can fail to decode answers 400 (413 when too big) with a sentence that
// names the field, says what it takes and what was sent, and never Go's type names.
func TestDecodeMessages(t *testing.T) {
	type body = func() any
	exec := func() any { return &execBody{} }
	create := func() any { return &createBody{} }
	keepalive := func() any { return &keepaliveBody{} }
	cases := []struct {
		name     string
		into     body
		optional bool
		in       string
		status   int
		want     string // the whole message
	}{
		// The two messages users met first (issue 10).
		{"array wanted", exec, false, `{"cmd":"echo hi"}`, 400,
			`cmd must be an array of strings, like ["sh","-c","echo hi"]; got a string`},
		{"bad duration", exec, false, `{"cmd":["true"],"timeout":"forever"}`, 400,
			`timeout must be a duration like "30s", "15m" or "7d", or a number of seconds; got "forever"`},

		{"empty body", exec, false, ``, 400, `the body is empty: this request needs a JSON object`},
		{"white space only", exec, false, " \n\t", 400, `the body is empty: this request needs a JSON object`},
		{"empty optional body", keepalive, true, ``, 200, ``},
		{"syntax", exec, false, `{"cmd":["true"],}`, 400,
			`the body is not valid JSON: invalid character '}' looking for beginning of object key string, at byte 17`},
		{"cut short", exec, false, `{"cmd":["true"]`, 400,
			`the body ends before its JSON does: a closing } or ] or quote is missing`},
		{"trailing object", exec, false, `{"cmd":["true"]} {}`, 400,
			`the body has more after its JSON object: send exactly one object`},
		{"trailing garbage", exec, false, `{"cmd":["true"]} x`, 400,
			`the body has more after its JSON object: send exactly one object`},
		{"not an object", exec, false, `["true"]`, 400,
			`the body must be a JSON object, like {"key":"value"}; got an array`},
		{"unknown field, near a known one", exec, false, `{"cmd":["true"],"timout":"5s"}`, 400,
			`unknown field "timout"; did you mean "timeout"?`},
		{"unknown field, nothing near", exec, false, `{"cmd":["true"],"shell":"bash"}`, 400,
			`unknown field "shell"; the body's own fields are cmd, cwd, detach, env, stdin, stream, timeout`},
		{"unknown field, as near a nested one as a top one", create, true, `{"portz":[3000]}`, 400,
			`unknown field "portz"; did you mean "ports"?`},
		{"unknown nested field", create, true, `{"services":[{"name":"web","cmdd":["x"]}]}`, 400,
			`unknown field "cmdd" in services[0]; did you mean "cmd"?`},
		// A newcomer's two (issue 10's second look): "port" at the top was answered "did you
		// mean "port"?", a service's field; a service's typo listed the body's fields.
		{"a service's field at the top", create, true, `{"port":[3000]}`, 400,
			`unknown field "port"; did you mean "ports"?`},
		{"a usual misspelling in a service", create, true, `{"ports":[3000],"services":[{"name":"web","comand":["x"],"port":3000}]}`, 400,
			`unknown field "comand" in services[0]; did you mean "cmd"?`},
		{"nothing near, in the second service", create, true, `{"services":[{"name":"a","cmd":["x"]},{"name":"b","shell":"bash"}]}`, 400,
			`unknown field "shell" in services[1]; services[1]'s fields are cmd, cwd, env, name, port`},
		{"map keys are free, the field after is not", create, true, `{"env":{"portz":"1","Cmd":"x"},"labels":{},"portz":[1]}`, 400,
			`unknown field "portz"; did you mean "ports"?`},
		{"a synonym", exec, false, `{"command":["true"]}`, 400,
			`unknown field "command"; did you mean "cmd"?`},
		{"beyond the kept start", exec, false, `{"cmd":["` + strings.Repeat("x", keptPrefix) + `"],"shell":1}`, 400,
			`unknown field "shell"; the body's own fields are cmd, cwd, detach, env, stdin, stream, timeout`},
		{"item of the wrong type", create, true, `{"ports":["3000"]}`, 400,
			`ports must be an array of whole numbers, like [3000]; got an item that is a string`},
		{"number out of range", create, true, `{"ports":[1e10]}`, 400,
			`ports must be an array of whole numbers, like [3000]; got an item that is 1e10, which is out of range`},
		{"fraction for a whole number", create, true, `{"ports":[80.5]}`, 400,
			`ports must be an array of whole numbers, like [3000]; got an item that is 80.5`},
		{"map value", create, true, `{"env":{"PORT":4000}}`, 400,
			`env must be an object whose values are strings, like {"NODE_ENV":"development"}; got a value that is a number`},
		{"object wanted", create, true, `{"labels":["a"]}`, 400,
			`labels must be an object whose values are strings, like {"team":"web"}; got an array`},
		{"nested field", create, true, `{"services":[{"name":"web","cmd":"devserver"}]}`, 400,
			`services[0].cmd must be an array of strings, like ["sh","-c","echo hi"]; got a string`},
		{"nested field, which service", create, true, `{"services":[{"name":"a","cmd":["x"]},{"name":"b","cmd":["x"],"port":"3000"}]}`, 400,
			`services[1].port must be a whole number, like 3000; got a string`},
		{"nested item", create, true, `{"services":[{"name":"a","cmd":["x",1]}]}`, 400,
			`services[0].cmd must be an array of strings, like ["sh","-c","echo hi"]; got an item that is a number`},
		{"bool", exec, false, `{"cmd":["true"],"detach":"yes"}`, 400,
			`detach must be true or false; got a string`},
		{"number", create, true, `{"cpus":"two"}`, 400,
			`cpus must be a number, like 1.5; got a string`},
		{"bad size", create, true, `{"memory":"lots"}`, 400,
			`memory must be a size like "4G" or "512M", or a number of bytes; got "lots"`},
		{"size of the wrong kind", create, true, `{"memory":true}`, 400,
			`memory must be a size like "4G" or "512M", or a number of bytes; got true`},
		{"duration out of range", create, true, `{"idle_timeout":1e300}`, 400,
			`idle_timeout must be a duration like "30s", "15m" or "7d", or a number of seconds; got 1e300, which is out of range`},
		{"duration string out of range", create, true, `{"idle_timeout":"1e300"}`, 400,
			`idle_timeout must be a duration like "30s", "15m" or "7d", or a number of seconds; got "1e300", which is out of range`},
		{"days out of range", create, true, `{"idle_timeout":"1e300d"}`, 400,
			`idle_timeout must be a duration like "30s", "15m" or "7d", or a number of seconds; got "1e300d", which is out of range`},
		{"days spelled out", create, true, `{"idle_timeout":"7days"}`, 400,
			`idle_timeout must be a duration like "30s", "15m" or "7d", or a number of seconds; got "7days"`},
		{"bad time", keepalive, true, `{"until":"tomorrow"}`, 400,
			`until must be a time like "2030-01-02T15:04:05Z" (RFC 3339); got "tomorrow"`},
		{"too big", exec, false, `{"cmd":["` + strings.Repeat("x", maxBody) + `"]}`, 413,
			`the body is larger than 1048576 bytes`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("POST", "/", strings.NewReader(c.in))
			err := decode(w, r, c.into(), c.optional)
			status, msg := http.StatusOK, ""
			if err != nil {
				var ae *apiError
				if !errors.As(err, &ae) {
					t.Fatalf("error %T %v is not an API error", err, err)
				}
				status, msg = ae.status, ae.message
			}
			if status != c.status || msg != c.want {
				t.Fatalf("decode(%.60q) = %d %q\n want %d %q", c.in, status, msg, c.status, c.want)
			}
			for _, goTalk := range []string{"Go struct", "unmarshal", "[]string", "main.", "admin."} {
				if strings.Contains(msg, goTalk) {
					t.Errorf("message speaks Go (%q): %s", goTalk, msg)
				}
			}
		})
	}
}

// The values the custom types take, and what they decode to.
func TestDecodeValues(t *testing.T) {
	cases := []struct {
		in   string
		want createBody
	}{
		{`{"idle_timeout":"15m"}`, createBody{IdleTimeout: duration(15 * time.Minute)}},
		{`{"idle_timeout":90}`, createBody{IdleTimeout: duration(90 * time.Second)}},
		{`{"idle_timeout":"90"}`, createBody{IdleTimeout: duration(90 * time.Second)}},
		{`{"idle_timeout":1.5}`, createBody{IdleTimeout: duration(1500 * time.Millisecond)}},
		{`{"idle_timeout":"7d"}`, createBody{IdleTimeout: duration(7 * 24 * time.Hour)}},
		{`{"idle_timeout":"1d12h"}`, createBody{IdleTimeout: duration(36 * time.Hour)}},
		{`{"idle_timeout":"0.5d"}`, createBody{IdleTimeout: duration(12 * time.Hour)}},
		{`{"idle_timeout":null}`, createBody{}},
		{`{"memory":"4G"}`, createBody{Memory: 4 << 30}},
		{`{"memory":"512m"}`, createBody{Memory: 512 << 20}},
		{`{"memory":"2Gi"}`, createBody{Memory: 2 << 30}},
		{`{"memory":"512Mi"}`, createBody{Memory: 512 << 20}},
		{`{"memory":1024}`, createBody{Memory: 1024}},
	}
	for _, c := range cases {
		var got createBody
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.in))
		if err := decode(httptest.NewRecorder(), r, &got, false); err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got.IdleTimeout != c.want.IdleTimeout || got.Memory != c.want.Memory {
			t.Errorf("%s = %+v, want %+v", c.in, got, c.want)
		}
	}
	var k keepaliveBody
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"until":"2030-01-02T15:04:05.5+02:00"}`))
	if err := decode(httptest.NewRecorder(), r, &k, false); err != nil || k.Until == nil ||
		!time.Time(*k.Until).Equal(time.Date(2030, 1, 2, 13, 4, 5, 5e8, time.UTC)) {
		t.Errorf("until = %v, %v", k.Until, err)
	}
}

// A hostile body never takes the message down: whatever its start holds, decoding it into
// a create answers a sentence, and an unknown field it reports is named in it.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{`{"port":[3000]}`, `{"services":[{"name":"a","comand":[]}]}`, `{"env":{"a":{"b":[`, `[[[{}]]]`, `{"services":[[{"x":1}]]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		err := decode(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(in)), &createBody{}, true)
		var ae *apiError
		if err != nil && (!errors.As(err, &ae) || ae.message == "") {
			t.Fatalf("%q: %v", in, err)
		}
	})
}
