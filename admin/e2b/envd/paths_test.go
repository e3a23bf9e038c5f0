package envd

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestResolveAndShow(t *testing.T) {
	cases := []struct{ in, want, shown string }{
		{"", "/home/sandbox", "/home/user"},
		{"~", "/home/sandbox", "/home/user"},
		{"~/a/b", "/home/sandbox/a/b", "/home/user/a/b"},
		{"a/../b", "/home/sandbox/b", "/home/user/b"},
		{"/home/user", "/home/sandbox", "/home/user"},
		{"/home/user/x", "/home/sandbox/x", "/home/user/x"},
		{"/home/username", "/home/username", "/home/username"},
		{"/tmp/../etc", "/etc", "/etc"},
		{"/home/sandbox/x", "/home/sandbox/x", "/home/user/x"},
	}
	for _, c := range cases {
		got, err := resolve(c.in)
		if err != nil || got != c.want || show(got) != c.shown {
			t.Errorf("resolve(%q) = %q, %v (shown %q); want %q shown %q", c.in, got, err, show(got), c.want, c.shown)
		}
	}
	for _, bad := range []string{"~root/x", "a\x00b"} {
		if _, err := resolve(bad); err == nil {
			t.Errorf("resolve(%q) took it", bad)
		}
	}
}

func TestUsers(t *testing.T) {
	for _, ok := range []string{"", "user", "sandbox"} {
		if err := checkUser(ok); err != nil {
			t.Errorf("checkUser(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"root", "nobody"} {
		if err := checkUser(bad); err == nil {
			t.Errorf("checkUser(%q) took it", bad)
		}
	}
}

// TestFrameReader: the framed content ends with the end frame only when the source ended
// well; a failing or too long source sends no end frame.
func TestFrameReader(t *testing.T) {
	b, err := io.ReadAll(&frameReader{src: strings.NewReader("hello"), left: 10})
	if err != nil || !bytes.Equal(b, []byte("\x00\x00\x00\x05hello\x00\x00\x00\x00")) {
		t.Fatalf("framed %q, %v", b, err)
	}
	b, err = io.ReadAll(&frameReader{src: strings.NewReader(""), left: 10})
	if err != nil || !bytes.Equal(b, []byte{0, 0, 0, 0}) {
		t.Fatalf("empty: %q, %v", b, err)
	}
	boom := errors.New("boom")
	fr := &frameReader{src: io.MultiReader(strings.NewReader("part"), errReader{boom}), left: 10}
	b, err = io.ReadAll(fr)
	if !errors.Is(err, boom) || bytes.HasSuffix(b, []byte{0, 0, 0, 0}) {
		t.Fatalf("failing source: %q, %v", b, err)
	}
	fr = &frameReader{src: strings.NewReader("toolong"), left: 3}
	if _, err := io.ReadAll(fr); !errors.Is(err, errTooLarge) {
		t.Fatalf("too long: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestCORS: a preflight is answered for any origin without a token; a page's real request
// still needs the token, and may read the answer.
func TestCORS(t *testing.T) {
	h := New(testKey, nil, nil, nil)
	pre := httptest.NewRequest("OPTIONS", "/process.Process/Start", nil)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "Content-Type, X-Access-Token, E2b-Sandbox-Id, Connect-Timeout-Ms")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, pre)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "x-access-token") {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	req := httptest.NewRequest("POST", "/process.Process/List", strings.NewReader("{}"))
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set(HeaderSandboxID, "abc")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 401 || w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Access-Control-Expose-Headers") == "" {
		t.Fatalf("page without token: %d %v", w.Code, w.Header())
	}
}
