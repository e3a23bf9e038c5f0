package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

// tokenJSON is the answer of POST .../preview-tokens.
type tokenJSON struct {
	Token     string    `json:"token"`
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func mint(t *testing.T, d *daemon, id string, body string) tokenJSON {
	t.Helper()
	var tok tokenJSON
	if code := call(t, "POST", d.API+"/v1/sandboxes/"+id+"/preview-tokens", body, &tok); code != http.StatusCreated {
		t.Fatalf("mint %s: %d", body, code)
	}
	return tok
}

// browser is an HTTP client that keeps cookies like a browser and sends every request to
// sandboxd's edge, whatever the host. follow=false returns redirects instead.
func browser(d *daemon, jar http.CookieJar, follow bool) *http.Client {
	c := &http.Client{Jar: jar, Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", d.HTTP)
		},
	}}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// Private previews against the real engine, with SANDBOXD_PREVIEW_ACCESS=private: a link
// turns into a host-only cookie that opens the app, WebSockets and SSE; no credential
// reaches the app; another sandbox's host answers 401 and its sleeping container is never
// started; expired and revoked tokens answer 401.
func TestPrivatePreviews(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.vars["SANDBOXD_PREVIEW_ACCESS"] = "private"
	d := e.start()
	mustCreate(t, d, map[string]any{"id": "priv", "ports": []int{3000}}) // private by the operator's default
	otherCreated := time.Now()
	mustCreate(t, d, map[string]any{"id": "other", "ports": []int{3000}})
	if code := call(t, "POST", d.API+"/v1/sandboxes/other/stop", nil, nil); code != 200 {
		t.Fatalf("stop other: %d", code)
	}
	asleep := time.Now()
	host := "s-priv-3000.preview.localhost"

	t.Run("without a token: 401, HTML for a browser, JSON for a program", func(t *testing.T) {
		checkAnswer(t, d, host, 401, "unauthorized", "missing, expired or revoked")
	})

	jar, _ := cookiejar.New(nil)
	tok := mint(t, d, "priv", `{"port":3000,"ttl":"1h"}`)
	if !strings.HasPrefix(tok.URL, "http://"+host+":") || !strings.Contains(tok.URL, "/?sandboxd_token="+tok.Token) {
		t.Fatalf("token url %q", tok.URL)
	}
	t.Run("the link gives a 303 and a host-only HttpOnly cookie", func(t *testing.T) {
		resp, err := browser(d, jar, false).Get(tok.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		link, _ := url.Parse(tok.URL)
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "http://"+link.Host+"/" {
			t.Fatalf("%d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		set := resp.Header.Get("Set-Cookie")
		for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
			if !strings.Contains(set, want) {
				t.Errorf("cookie %q lacks %s", set, want)
			}
		}
		if strings.Contains(set, "Domain") {
			t.Errorf("cookie %q names a Domain: it would reach other sandboxes", set)
		}
		resp, err = browser(d, jar, true).Get(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b := readAll(resp); resp.StatusCode != 200 || b != "hello from priv" {
			t.Fatalf("the app through the cookie: %d %q", resp.StatusCode, b)
		}
	})
	t.Run("the app never sees the token, the header or the cookie", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+host+"/echo?keep=1&sandboxd_token="+tok.Token, strings.NewReader("body"))
		req.Header.Set("X-Sandboxd-Preview-Token", tok.Token)
		req.Header.Set("Cookie", "app=1")
		resp, err := browser(d, jar, true).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b := readAll(resp); resp.StatusCode != 200 || b != "body" {
			t.Fatalf("POST /echo: %d %q", resp.StatusCode, b)
		}
		if got := resp.Header.Get("X-Echo-Path"); got != "/echo?keep=1" {
			t.Errorf("the app saw the path %q", got)
		}
		if got := resp.Header.Get("X-Echo-Cookie"); got != "app=1" {
			t.Errorf("the app saw the cookies %q, want only its own", got)
		}
		if got := resp.Header.Get("X-Echo-Header-Names"); got == "" || strings.Contains(got, "Preview-Token") {
			t.Errorf("the app saw the headers %q", got)
		}
	})
	t.Run("SSE opens with the cookie", func(t *testing.T) {
		resp, err := browser(d, jar, true).Get("http://" + host + "/sse?n=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b := readAll(resp); resp.StatusCode != 200 || !strings.Contains(b, "data: tick 1") {
			t.Fatalf("SSE: %d %q", resp.StatusCode, b)
		}
	})

	dialer := func(jar http.CookieJar) *websocket.Dialer {
		return &websocket.Dialer{Jar: jar, HandshakeTimeout: time.Minute, NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", d.HTTP)
		}}
	}
	ws, _, err := dialer(jar).Dial("ws://"+host+"/ws", nil)
	if err != nil {
		t.Fatalf("WebSocket with the cookie: %v", err)
	}
	defer ws.Close()
	wsEcho(t, ws, "over a private preview")
	if _, resp, err := dialer(nil).Dial("ws://"+host+"/ws", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("WebSocket without the cookie: %v %v, want 401", err, resp)
	}

	t.Run("another sandbox's host gets no cookie, answers 401 and stays asleep", func(t *testing.T) {
		other, _ := url.Parse("http://s-other-3000.preview.localhost/")
		if cs := jar.Cookies(other); len(cs) != 0 {
			t.Fatalf("the jar would send %v to another sandbox", cs)
		}
		resp, err := browser(d, jar, true).Get(other.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("another sandbox's host: %d, want 401", resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", other.String(), nil)
		req.Header.Set("X-Sandboxd-Preview-Token", tok.Token) // priv's token is not other's
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		resp, err = browser(d, nil, true).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(resp); resp.StatusCode != 401 || !strings.Contains(b, "<h1>Preview link missing or expired</h1>") {
			t.Fatalf("priv's token on other's host: %d %q", resp.StatusCode, b)
		}
		if sb, _ := getSandbox(t, d, "other"); sb.Status != "stopped" {
			t.Fatalf("other is %s", sb.Status)
		}
		if n := e.containerStarts(t, "other", otherCreated, asleep); n != 1 { // the count works
			t.Fatalf("other's create counted %d starts, want 1", n)
		}
		if n := e.containerStarts(t, "other", asleep, time.Now()); n != 0 {
			t.Fatalf("unauthenticated requests started other's container %d times", n)
		}
	})

	t.Run("an expired token answers 401", func(t *testing.T) {
		short := mint(t, d, "priv", `{"port":3000,"ttl":"2s"}`)
		get := func() int {
			req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
			req.Header.Set("X-Sandboxd-Preview-Token", short.Token)
			resp, err := browser(d, nil, true).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := get(); code != 200 && time.Now().Before(short.ExpiresAt) {
			t.Fatalf("before it expires: %d", code)
		}
		testutil.Eventually(t, 10*time.Second, "the token expires", func() bool {
			code := get()
			if code != 200 && time.Now().Before(short.ExpiresAt) {
				t.Fatalf("%d before %s", code, short.ExpiresAt)
			}
			return code == 401
		})
	})

	t.Run("revoke ends the token, the cookie and the WebSocket", func(t *testing.T) {
		if code := call(t, "POST", d.API+"/v1/sandboxes/priv/preview-tokens/revoke", nil, nil); code != 200 {
			t.Fatalf("revoke: %d", code)
		}
		resp, err := browser(d, jar, true).Get("http://" + host + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("the cookie after the revoke: %d", resp.StatusCode)
		}
		ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		ws.WriteMessage(websocket.TextMessage, []byte("still there?"))
		if _, _, err := ws.ReadMessage(); err == nil {
			t.Fatal("the WebSocket opened with the revoked cookie still echoes")
		}
		fresh := mint(t, d, "priv", `{"port":3000}`)
		req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
		req.Header.Set("X-Sandboxd-Preview-Token", fresh.Token)
		resp, err = browser(d, nil, true).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a token minted after the revoke: %d", resp.StatusCode)
		}
	})

	t.Run("made public, it opens without a token", func(t *testing.T) {
		var sb struct {
			Previews struct {
				Access string            `json:"access"`
				Ports  map[string]string `json:"ports"`
			} `json:"previews"`
		}
		if code := call(t, "PUT", d.API+"/v1/sandboxes/priv/previews", `{"access":"private","ports":{"3000":"public"}}`, &sb); code != 200 ||
			sb.Previews.Access != "private" || sb.Previews.Ports["3000"] != "public" {
			t.Fatalf("PUT previews: %d %+v", code, sb)
		}
		resp, body := preview(t, d, "priv", 3000, "GET", "/", "", nil)
		if resp.StatusCode != 200 || body != "hello from priv" {
			t.Fatalf("public port: %d %q", resp.StatusCode, body)
		}
	})
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
