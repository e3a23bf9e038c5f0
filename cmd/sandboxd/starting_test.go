package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A browser's navigation, as Chrome sends it when a person opens a preview.
var navigation = http.Header{
	"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}, "Sec-Fetch-Site": {"none"},
	"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}, "User-Agent": {"Mozilla/5.0 (X11; Linux x86_64)"},
}

// Issue 14: a dev server that takes 5 s to listen, woken by a navigation. The navigation
// gets the starting page at once, with the service's log and no env value in it; the page's
// reloads get it again until the app answers, then the app. A plain GET sent at the same
// time is held and gets the app.
func TestStartingPageThenApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.start()
	const sandboxSecret, serviceSecret = "sandbox-secret-b8f2", "sk-service-secret-77e1"
	mustCreate(t, d, map[string]any{"id": "slow", "env": map[string]string{"DB_PASSWORD": sandboxSecret},
		"services": []any{map[string]any{"name": "web", "port": 4000,
			"cmd": []string{"sh", "-c", `echo "booting with $API_KEY and $DB_PASSWORD"; sleep 5; exec devserver`},
			"env": map[string]string{"PORT": "4000", "API_KEY": serviceSecret}}}})
	if code := call(t, "POST", d.API+"/v1/sandboxes/slow/stop", nil, nil); code != http.StatusOK {
		t.Fatalf("stop: %d", code)
	}

	type answer struct {
		code int
		body string
		err  error
	}
	held := make(chan answer, 1)
	go func() { // a program: no browser headers
		req, _ := http.NewRequest("GET", "http://"+d.HTTP+"/", nil)
		req.Host = "s-slow-4000.preview.localhost"
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			held <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		held <- answer{code: res.StatusCode, body: string(b)}
	}()

	// The browser: the page, and its reloads (one a second, as its script does) until the
	// app answers.
	pages, sawLog := 0, false
	for deadline := time.Now().Add(45 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatalf("the app did not answer a navigation within 45s after %d starting pages\n%s", pages, d.logs)
		}
		res, body := preview(t, d, "slow", 4000, "GET", "/", "", navigation)
		if strings.Contains(body, sandboxSecret) || strings.Contains(body, serviceSecret) {
			t.Fatalf("the page shows an env value:\n%s", body)
		}
		if res.StatusCode == http.StatusOK {
			if body != "hello from slow" {
				t.Fatalf("the app answered %q", body)
			}
			break
		}
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("X-Sandboxd-State") != "starting" ||
			!strings.Contains(body, "The app is starting") || !strings.Contains(body, "~/.sandboxd/logs/web.log") ||
			!strings.Contains(body, "location.reload()") {
			t.Fatalf("navigation %d: %d %v\n%s", pages+1, res.StatusCode, res.Header, body)
		}
		pages++
		sawLog = sawLog || strings.Contains(body, "booting with [redacted] and [redacted]")
		time.Sleep(time.Second) // the page's own reload interval, not an ordering
	}
	if pages == 0 || !sawLog {
		t.Errorf("%d starting pages before the app, the service's log line in one of them: %v", pages, sawLog)
	}
	a := <-held
	if a.err != nil || a.code != http.StatusOK || a.body != "hello from slow" {
		t.Fatalf("the program's request: %d %q %v, want the app", a.code, a.body, a.err)
	}
}
