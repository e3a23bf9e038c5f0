package edge

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sandboxd/sandboxd/internal/testutil"
)

// A WebSocket upgrade to a private port is opened by the cookie or the header, refused
// with 401 without them, and closed when the token is revoked.
func TestPrivateWebSocket(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHarness(t, clk.set)
	_, port := h.backend(echoWS(t))
	key := newKey(t)
	h.private("sb1", Running, key, port)
	tok := sign(key, "sb1", port, clk.now().Add(time.Hour), false)
	wsURL := "ws://" + previewHost("sb1", port) + "/ws"

	dial := func(hdr http.Header) (*websocket.Conn, int) {
		c, res, err := h.wsDialer().Dial(wsURL, hdr)
		if err != nil {
			if res == nil {
				t.Fatalf("dial: %v", err)
			}
			return nil, res.StatusCode
		}
		t.Cleanup(func() { c.Close() })
		return c, res.StatusCode
	}
	echo := func(c *websocket.Conn) error {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			return err
		}
		_, msg, err := c.ReadMessage()
		if err == nil && string(msg) != "hi" {
			t.Fatalf("echo %q", msg)
		}
		return err
	}
	if _, code := dial(nil); code != 401 {
		t.Fatalf("without a token: %d, want 401", code)
	}
	byCookie, code := dial(http.Header{"Cookie": {cookieName + "=" + tok}})
	if code != 101 || echo(byCookie) != nil {
		t.Fatalf("with the cookie: %d", code)
	}
	byHeader, code := dial(http.Header{TokenHeader: {tok}})
	if code != 101 || echo(byHeader) != nil {
		t.Fatalf("with the header: %d", code)
	}

	// Revoke: a new key. The open sockets close; the old cookie is refused.
	h.private("sb1", Running, newKey(t), port)
	for _, c := range []*websocket.Conn{byCookie, byHeader} {
		if err := echo(c); err == nil {
			t.Fatal("a WebSocket of a revoked token still echoes")
		}
	}
	testutil.Eventually(t, 5*time.Second, "no open WebSocket", func() bool { return h.edge.OpenWebSockets() == 0 })
	if _, code := dial(http.Header{"Cookie": {cookieName + "=" + tok}}); code != 401 {
		t.Fatalf("the revoked cookie: %d, want 401", code)
	}

	t.Run("a public port's sockets stay open when another turns private", func(t *testing.T) {
		_, pub := h.backend(echoWS(t))
		h.table.Set(Route{ID: "sb2", State: Running, Addr: loopback, Ports: []int{pub, port}})
		c, res, err := h.wsDialer().Dial("ws://"+previewHost("sb2", pub)+"/ws", nil)
		if err != nil {
			t.Fatalf("dial: %v %v", err, res)
		}
		defer c.Close()
		h.table.Set(Route{ID: "sb2", State: Running, Addr: loopback, Ports: []int{pub, port}, PortPrivate: map[int]bool{port: true}})
		if err := echo(c); err != nil {
			t.Fatalf("the public port's socket: %v", err)
		}
	})

	t.Run("a private port's sockets stay open when another turns private under the same key", func(t *testing.T) {
		_, other := h.backend(echoWS(t))
		key := newKey(t)
		h.table.Set(Route{ID: "sb3", State: Running, Addr: loopback, Ports: []int{port, other}, Key: key,
			PortPrivate: map[int]bool{port: true}})
		tok := sign(key, "sb3", port, clk.now().Add(time.Hour), false)
		c, res, err := h.wsDialer().Dial("ws://"+previewHost("sb3", port)+"/ws", http.Header{TokenHeader: {tok}})
		if err != nil {
			t.Fatalf("dial: %v %v", err, res)
		}
		defer c.Close()
		h.table.Set(Route{ID: "sb3", State: Running, Addr: loopback, Ports: []int{port, other}, Key: key, Private: true})
		if err := echo(c); err != nil {
			t.Fatalf("the socket of a port that was private already, its token still good: %v", err)
		}
	})
}

// Under HTTPS the cookie is Secure and __Host-; an embed token's is SameSite=None and
// Partitioned, so a page in another site's iframe keeps it. A browser-like client then
// reaches the app with it.
func TestEmbedCookieOverHTTPS(t *testing.T) {
	t.Parallel()
	const domain = "embed.test"
	certPEM, keyPEM := selfSigned(t, "*.preview."+domain, "preview."+domain)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certs := &fakeCerts{ready: make(chan struct{}), cert: &pair}
	close(certs.ready)
	e := newTLSEdge(t, domain, certs, nil)
	key := newKey(t)
	e.table.Set(Route{ID: "web", State: Running, Addr: loopback, Ports: []int{e.webPort}, Private: true, Key: key})
	roots := poolOf(t, certPEM)

	for _, c := range []struct {
		embed bool
		want  []string
		never []string
	}{
		{true, []string{"SameSite=None", "Secure", "Partitioned", "HttpOnly", "Path=/"}, []string{"Domain", "SameSite=Lax"}},
		{false, []string{"SameSite=Lax", "Secure", "HttpOnly", "Path=/"}, []string{"Domain", "Partitioned"}},
	} {
		t.Run(map[bool]string{true: "embed", false: "top-level"}[c.embed], func(t *testing.T) {
			tok := sign(key, "web", e.webPort, time.Now().Add(time.Hour), c.embed)
			link := "https://" + e.host() + "/?" + TokenParam + "=" + tok
			resp, err := e.client(roots).Get(link)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			set := resp.Header.Values("Set-Cookie")
			if resp.StatusCode != 303 || len(set) != 1 {
				t.Fatalf("%d, Set-Cookie %q", resp.StatusCode, set)
			}
			if got := resp.Header.Get("Location"); got != "https://"+e.host()+"/" {
				t.Fatalf("Location %q", got)
			}
			attrs := cookieAttrs(set[0])
			if ck, err := http.ParseSetCookie(set[0]); err != nil || ck.Name != secureCookieName {
				t.Fatalf("cookie %q: name %v, want %s", set[0], ck, secureCookieName)
			}
			for _, a := range c.want {
				if !attrs[a] {
					t.Errorf("%q lacks %s", set[0], a)
				}
			}
			for _, a := range c.never {
				if attrs[a] {
					t.Errorf("%q has %s", set[0], a)
				}
			}

			jar, _ := cookiejar.New(nil)
			browser := e.client(roots)
			browser.Jar = jar
			browser.CheckRedirect = nil
			resp, err = browser.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello from web" {
				t.Fatalf("following the link: %d %q", resp.StatusCode, body)
			}
			plain, _ := url.Parse("http://" + e.host() + "/")
			if len(jar.Cookies(plain)) != 0 {
				t.Fatal("the Secure cookie would be sent over plain HTTP")
			}
		})
	}
}
