package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/previewtoken"
)

// clock is a settable time for token expiry.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) set(s *Server)           { s.Now = c.now }

// seenRequest is what the app saw of one request.
type seenRequest struct {
	Header http.Header
	Query  string
	Path   string
}

// recorder is an app that answers "ok" and keeps what it saw.
type recorder struct {
	mu   sync.Mutex
	last seenRequest
	hits int
}

func (a *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.last = seenRequest{Header: r.Header.Clone(), Query: r.URL.RawQuery, Path: r.URL.Path}
	a.hits++
	a.mu.Unlock()
	io.WriteString(w, "ok")
}

func (a *recorder) seen() (seenRequest, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last, a.hits
}

// private declares id private on loopback with key, in state.
func (h *harness) private(id string, state State, key []byte, ports ...int) {
	h.table.Set(Route{ID: id, State: state, Addr: loopback, Ports: ports, Private: true, Key: key})
}

func newKey(t testing.TB) []byte {
	t.Helper()
	k, err := previewtoken.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(key []byte, id string, port int, exp time.Time, embed bool) string {
	return previewtoken.Sign(key, id, previewtoken.Claims{Port: port, Expires: exp, Embed: embed})
}

// do sends one request through the edge and returns the answer with its body.
func (h *harness) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: h.client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPrivateAccess(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, clk.set)
	app := &recorder{}
	_, port := h.backend(app)
	key, otherKey := newKey(t), newKey(t)
	h.private("priv", Running, key, port)
	valid := sign(key, "priv", port, clk.now().Add(time.Hour), false)
	bad := sign(otherKey, "priv", port, clk.now().Add(time.Hour), false)

	cases := []struct {
		name   string
		header http.Header
		query  string
		method string
		status int
	}{
		{"nothing", nil, "", "GET", 401},
		{"header", http.Header{TokenHeader: {valid}}, "", "GET", 200},
		{"cookie", http.Header{"Cookie": {cookieName + "=" + valid}}, "", "GET", 200},
		{"__Host- cookie", http.Header{"Cookie": {secureCookieName + "=" + valid}}, "", "GET", 200},
		{"cookie among the app's", http.Header{"Cookie": {"a=1; " + cookieName + "=" + valid + "; b=2"}}, "", "GET", 200},
		{"a planted cookie before ours", http.Header{"Cookie": {cookieName + "=" + bad + "; " + cookieName + "=" + valid}}, "", "GET", 200},
		{"link on a POST", nil, TokenParam + "=" + valid, "POST", 200},
		{"signed with another key (revoked)", http.Header{TokenHeader: {bad}}, "", "GET", 401},
		{"for another port", http.Header{TokenHeader: {sign(key, "priv", port+1, clk.now().Add(time.Hour), false)}}, "", "GET", 401},
		{"for another sandbox", http.Header{TokenHeader: {sign(key, "other", port, clk.now().Add(time.Hour), false)}}, "", "GET", 401},
		{"expired", http.Header{TokenHeader: {sign(key, "priv", port, clk.now(), false)}}, "", "GET", 401},
		{"in Authorization, which is the app's", http.Header{"Authorization": {"Bearer " + valid}}, "", "GET", 401},
		{"garbage", http.Header{TokenHeader: {"x"}, "Cookie": {cookieName + "=%%%"}}, TokenParam + "=", "GET", 401},
		{"a ninth cookie is not tried", http.Header{"Cookie": {strings.Repeat(cookieName+"="+bad+"; ", maxTokenCookies) + cookieName + "=" + valid}}, "", "GET", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, before := app.seen()
			req, _ := http.NewRequest(c.method, previewURL("priv", port, "/p?"+c.query), nil)
			for k, v := range c.header {
				req.Header[k] = v
			}
			resp, body := h.do(t, req)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			_, after := app.seen()
			if reached := after > before; reached != (c.status == 200) {
				t.Fatalf("the app was reached: %v, with status %d", reached, c.status)
			}
			if c.status == 401 {
				var v struct {
					Error struct{ Code, Message string }
				}
				if json.Unmarshal([]byte(body), &v) != nil || v.Error.Code != "unauthorized" || !strings.Contains(v.Error.Message, "missing, expired or revoked") {
					t.Fatalf("401 body %q", body)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			}
		})
	}

	t.Run("a navigation gets the HTML page", func(t *testing.T) {
		for _, hdr := range []http.Header{{"Sec-Fetch-Mode": {"navigate"}, "Accept": {"*/*"}}, {"Accept": {"text/html"}}} {
			req, _ := http.NewRequest("GET", previewURL("priv", port, "/"), nil)
			req.Header = hdr
			resp, body := h.do(t, req)
			if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(body, "Preview link missing or expired") {
				t.Fatalf("%v: %d %s %q", hdr, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
		}
	})
	t.Run("expires by the clock", func(t *testing.T) {
		tok := sign(key, "priv", port, clk.now().Add(time.Minute), false)
		get := func() int {
			req, _ := http.NewRequest("GET", previewURL("priv", port, "/"), nil)
			req.Header.Set(TokenHeader, tok)
			resp, _ := h.do(t, req)
			return resp.StatusCode
		}
		if got := get(); got != 200 {
			t.Fatalf("before expiry: %d", got)
		}
		clk.advance(time.Minute)
		if got := get(); got != 401 {
			t.Fatalf("at expiry: %d", got)
		}
	})
}

// Every credential is stripped before the app sees the request, on a public port too;
// the app's own cookies and parameters stay as they were.
func TestCredentialsStripped(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, clk.set)
	app := &recorder{}
	_, port := h.backend(app)
	key := newKey(t)
	tok := sign(key, "sb", port, clk.now().Add(time.Hour), false)
	for _, private := range []bool{true, false} {
		t.Run("private="+strconv.FormatBool(private), func(t *testing.T) {
			h.table.Set(Route{ID: "sb", State: Running, Addr: loopback, Ports: []int{port}, Private: private, Key: key})
			req, _ := http.NewRequest("POST", previewURL("sb", port, "/p?a=1&"+TokenParam+"="+tok+"&b=2"), strings.NewReader("x"))
			req.Header.Set(TokenHeader, tok)
			req.Header.Add("Cookie", "a=1; "+cookieName+"="+tok+"; "+secureCookieName+"="+tok+"; b=2")
			req.Header.Add("Cookie", cookieName+"="+tok)
			req.Header.Set("Authorization", "Bearer app-secret")
			resp, body := h.do(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen, _ := app.seen()
			if seen.Query != "a=1&b=2" {
				t.Errorf("the app saw the query %q", seen.Query)
			}
			if got := seen.Header.Values("Cookie"); len(got) != 1 || got[0] != "a=1; b=2" {
				t.Errorf("the app saw cookies %q, want only its own", got)
			}
			if got := seen.Header.Get(TokenHeader); got != "" {
				t.Errorf("the app saw %s: %q", TokenHeader, got)
			}
			if got := seen.Header.Get("Authorization"); got != "Bearer app-secret" {
				t.Errorf("the app's Authorization became %q", got)
			}
		})
	}
}

func TestStripHelpers(t *testing.T) {
	t.Parallel()
	queries := map[string]string{
		"":                         "",
		"a=1":                      "a=1",
		TokenParam + "=x":          "",
		"a=1&" + TokenParam + "=x": "a=1",
		TokenParam + "=x&a=%2F&" + TokenParam + "=y&b": "a=%2F&b",
		"my" + TokenParam + "=x":                       "my" + TokenParam + "=x",
		"sandboxd%5Ftoken=x":                           "sandboxd%5Ftoken=x", // not our name: not a credential either
	}
	for in, want := range queries {
		if got := withoutToken(in); got != want {
			t.Errorf("withoutToken(%q) = %q, want %q", in, got, want)
		}
	}
	cookies := []struct{ in, want []string }{
		{[]string{"a=1"}, []string{"a=1"}},
		{[]string{cookieName + "=x"}, []string{}},
		{[]string{"a=1;" + cookieName + "=x;b=2", "c=3"}, []string{"a=1; b=2", "c=3"}},
		{[]string{"my" + cookieName + "=1; " + secureCookieName + "=x"}, []string{"my" + cookieName + "=1"}},
	}
	for _, c := range cookies {
		if got := withoutTokenCookies(c.in); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("withoutTokenCookies(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// An unauthenticated request to a sleeping private sandbox answers 401 without waking it;
// a token wakes it.
func TestPrivateNeverWakes(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, clk.set)
	app := &recorder{}
	_, port := h.backend(app)
	key := newKey(t)
	h.private("sleepy", Asleep, key, port)
	for _, hdr := range []http.Header{{}, {"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, {TokenHeader: {sign(newKey(t), "sleepy", port, clk.now().Add(time.Hour), false)}}} {
		req, _ := http.NewRequest("GET", previewURL("sleepy", port, "/"), nil)
		req.Header = hdr
		if resp, _ := h.do(t, req); resp.StatusCode != 401 {
			t.Fatalf("%v: status %d", hdr, resp.StatusCode)
		}
	}
	t.Run("an undeclared port of a private sandbox says no more than 401", func(t *testing.T) {
		req, _ := http.NewRequest("GET", previewURL("sleepy", port+1, "/"), nil)
		if resp, _ := h.do(t, req); resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	if n := h.waker.calls.Load(); n != 0 {
		t.Fatalf("wake calls = %d, want 0", n)
	}
	if _, hits := app.seen(); hits != 0 {
		t.Fatalf("the app was reached %d times", hits)
	}
	req, _ := http.NewRequest("GET", previewURL("sleepy", port, "/"), nil)
	req.Header.Set(TokenHeader, sign(key, "sleepy", port, clk.now().Add(time.Hour), false))
	if resp, body := h.do(t, req); resp.StatusCode != 200 || body != "ok" || h.waker.calls.Load() != 1 {
		t.Fatalf("with a token: %d %q, %d wakes", resp.StatusCode, body, h.waker.calls.Load())
	}
}

// A token revoked while its request waits for the wake is refused when the wake ends.
func TestRevokedDuringWake(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, clk.set)
	app := &recorder{}
	_, port := h.backend(app)
	key := newKey(t)
	h.private("sb", Asleep, key, port)
	woke := make(chan struct{})
	release := make(chan struct{})
	h.waker.wake = func(_ context.Context, _ string, p int) (netip.AddrPort, error) {
		close(woke)
		<-release
		return netip.AddrPortFrom(loopback, uint16(p)), nil
	}
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", previewURL("sb", port, "/"), nil)
		req.Header.Set(TokenHeader, sign(key, "sb", port, clk.now().Add(time.Hour), false))
		resp, err := h.client.Do(req) // not h.do: a Fatal from this goroutine would hang the test
		if err != nil {
			t.Error(err)
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-woke
	h.table.Set(Route{ID: "sb", State: Running, Addr: loopback, Ports: []int{port}, Private: true, Key: newKey(t)})
	close(release)
	if got := <-done; got != 401 {
		t.Fatalf("status %d, want 401", got)
	}
	if _, hits := app.seen(); hits != 0 {
		t.Fatal("the app was reached")
	}
}

func TestPortAccessOverrides(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	app := &recorder{}
	_, p1 := h.backend(app)
	_, p2 := h.backend(app)
	h.table.Set(Route{ID: "a", State: Running, Addr: loopback, Ports: []int{p1, p2}, Private: true, PortPrivate: map[int]bool{p2: false}})
	h.table.Set(Route{ID: "b", State: Running, Addr: loopback, Ports: []int{p1, p2}, PortPrivate: map[int]bool{p2: true}})
	for _, c := range []struct {
		id   string
		port int
		want int
	}{{"a", p1, 401}, {"a", p2, 200}, {"b", p1, 200}, {"b", p2, 401}} {
		req, _ := http.NewRequest("GET", previewURL(c.id, c.port, "/"), nil)
		if resp, _ := h.do(t, req); resp.StatusCode != c.want {
			t.Errorf("%s:%d = %d, want %d", c.id, c.port, resp.StatusCode, c.want)
		}
	}
}

// A browser opening a link gets a host-only cookie and a 303 to the URL without the token;
// the cookie opens the app on that host and is never sent to another sandbox's host.
func TestLinkTradesForCookie(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, clk.set)
	app := &recorder{}
	_, port := h.backend(app)
	key := newKey(t)
	h.private("a", Running, key, port)
	h.private("b", Running, newKey(t), port)
	tok := sign(key, "a", port, clk.now().Add(time.Hour), false)
	link := previewURL("a", port, "/x/y?q=1&"+TokenParam+"="+tok+"&r=%2F")

	req, _ := http.NewRequest("GET", link, nil)
	resp, _ := h.do(t, req)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Location"), previewURL("a", port, "/x/y?q=1&r=%2F"); got != want {
		t.Fatalf("Location %q, want %q", got, want)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("303 headers %v", resp.Header)
	}
	set := resp.Header.Values("Set-Cookie")
	if len(set) != 1 {
		t.Fatalf("Set-Cookie %q", set)
	}
	attrs := cookieAttrs(set[0])
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"} {
		if !attrs[want] {
			t.Errorf("cookie %q lacks %s", set[0], want)
		}
	}
	for _, never := range []string{"Domain", "Secure", "Partitioned"} {
		if attrs[never] {
			t.Errorf("cookie %q has %s over plain HTTP", set[0], never)
		}
	}
	if _, hits := app.seen(); hits != 0 {
		t.Fatal("the link itself reached the app")
	}

	// Now as a browser: a cookie jar that follows the redirect.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: h.client.Transport, Jar: jar}
	get := func(u string) (int, string) {
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(link); code != 200 || body != "ok" {
		t.Fatalf("following the link: %d %q", code, body)
	}
	seen, _ := app.seen()
	if seen.Path != "/x/y" || seen.Query != "q=1&r=%2F" || seen.Header.Get("Cookie") != "" {
		t.Fatalf("the app saw %s?%s with cookies %q", seen.Path, seen.Query, seen.Header.Get("Cookie"))
	}
	if code, _ := get(previewURL("a", port, "/later")); code != 200 {
		t.Fatalf("the cookie alone: %d", code)
	}
	other, _ := url.Parse(previewURL("b", port, "/"))
	if cs := jar.Cookies(other); len(cs) != 0 {
		t.Fatalf("the jar sends %v to another sandbox's host", cs)
	}
	if code, _ := get(other.String()); code != 401 {
		t.Fatalf("another sandbox's host: %d, want 401", code)
	}
	t.Run("an invalid link is 401 and sets nothing", func(t *testing.T) {
		req, _ := http.NewRequest("GET", previewURL("b", port, "/?"+TokenParam+"="+tok), nil)
		resp, _ := h.do(t, req)
		if resp.StatusCode != 401 || len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	})
	t.Run("a link with a path that looks like another host stays on this one", func(t *testing.T) {
		conn, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET //evil.example/?%s=%s HTTP/1.1\r\nHost: %s\r\n\r\n", TokenParam, tok, previewHost("a", port))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err == nil && loc.Path != "//evil.example/" {
			t.Errorf("Location path %q, want the request's", loc.Path)
		}
		if resp.StatusCode != 303 || err != nil || loc.Host != previewHost("a", port) {
			t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// cookieAttrs splits a Set-Cookie value into its attributes: "Name" alone for flags and
// Domain, "Name=value" for the others.
func cookieAttrs(v string) map[string]bool {
	m := map[string]bool{}
	for i, part := range strings.Split(v, ";") {
		part = strings.TrimSpace(part)
		if i == 0 {
			continue
		}
		m[part] = true
		if name, _, ok := strings.Cut(part, "="); ok {
			m[name] = true
		}
	}
	return m
}

func TestEmbedCookieOverHTTP(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		domain string
		want   []string
		never  []string
	}{
		// No TLS: SameSite=None needs Secure, which only *.localhost honours over HTTP.
		{testDomain, []string{"SameSite=Lax", "HttpOnly"}, []string{"Secure", "Partitioned", "SameSite=None"}},
		{"localhost", []string{"SameSite=None", "Secure", "Partitioned", "HttpOnly"}, []string{"SameSite=Lax", "Domain"}},
	} {
		t.Run(c.domain, func(t *testing.T) {
			clk := newClock()
			srv := NewServer(c.domain, NewTable(), nil, nil)
			srv.Now = clk.now
			key := newKey(t)
			srv.table.Set(Route{ID: "a", State: Running, Addr: loopback, Ports: []int{3000}, Private: true, Key: key})
			tok := sign(key, "a", 3000, clk.now().Add(time.Hour), true)
			req := httptest.NewRequest("GET", "http://s-a-3000.preview."+c.domain+"/?"+TokenParam+"="+tok, nil)
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
			set := w.Header().Get("Set-Cookie")
			if w.Code != 303 || set == "" {
				t.Fatalf("%d %q", w.Code, set)
			}
			attrs := cookieAttrs(set)
			for _, a := range c.want {
				if !attrs[a] {
					t.Errorf("%q lacks %s", set, a)
				}
			}
			for _, a := range c.never {
				if attrs[a] {
					t.Errorf("%q has %s", set, a)
				}
			}
		})
	}
}
