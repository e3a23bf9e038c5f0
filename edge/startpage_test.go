package edge

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLogTail(t *testing.T) {
	t.Parallel()
	many := func(n int) []byte {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, "line %d\n", i)
		}
		return []byte(b.String())
	}
	tests := []struct {
		name    string
		tail    string
		cut     bool
		secrets []string
		want    []string
	}{
		{"plain", "a\nb\n", false, nil, []string{"a", "b"}},
		{"no final newline", "a\nb", false, nil, []string{"a", "b"}},
		{"empty", "", false, nil, nil},
		{"secret", "token=sk-live-1234 ok\n", false, []string{"sk-live-1234"}, []string{"token=[redacted] ok"}},
		{"secret twice", "sk-live-1234sk-live-1234\n", false, []string{"sk-live-1234"}, []string{"[redacted][redacted]"}},
		{"longest secret first", "pw hunter2hunter2\n", false, []string{"hunter2", "hunter2hunter2"}, []string{"pw [redacted]"}},
		{"secret of several lines", "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----\n", false,
			[]string{"-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----"}, []string{"[redacted]", "[redacted]", "[redacted]"}},
		{"secret in colour", "key \x1b[1;31mswordfish\x1b[0m\n", false, []string{"swordfish"}, []string{"key [redacted]"}},
		{"short values stay", "port 1 on dev\n", false, []string{"1", "dev"}, []string{"port 1 on dev"}},
		{"cut tail drops its partial first line", "cret-value\nnext\n", true, []string{"a-secret-value"}, []string{"next"}},
		{"cut tail without a newline", "cret-value and more", true, []string{"a-secret-value"}, nil},
		{"progress bar", "[1/3]\r[2/3]\r[3/3] done\n", false, nil, []string{"[3/3] done"}},
		{"control characters", "a\x00b\x07c\td\x7fe\u0085f\x1b]0;title\x07g\n", false, nil, []string{"abc\tdefg"}},
		{"invalid UTF-8", "caf\xe9\n", false, nil, []string{"caf\uFFFD"}},
		{"html is left for the page to escape", "<script>x</script>\n", false, nil, []string{"<script>x</script>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := logTail([]byte(tc.tail), tc.cut, tc.secrets)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("logTail(%q) = %q, want %q", tc.tail, got, tc.want)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		got := logTail(many(1000), false, nil)
		if len(got) != logTailLines || got[0] != fmt.Sprintf("line %d", 1000-logTailLines+1) || got[len(got)-1] != "line 1000" {
			t.Fatalf("%d lines, %q ... %q; want the last %d", len(got), got[0], got[len(got)-1], logTailLines)
		}
		long := strings.Repeat("é", logLineBytes) + "\n" // two bytes a rune: cut inside one
		got = logTail([]byte(long), false, nil)
		if len(got) != 1 || len(got[0]) > logLineBytes+len("…") || !strings.HasSuffix(got[0], "…") ||
			!strings.HasPrefix(got[0], "éé") || strings.ContainsRune(got[0], '\uFFFD') {
			t.Fatalf("a long line came back as %d bytes: %q", len(got[0]), got[0])
		}
	})
}

// The page escapes everything it shows, names the log, reloads itself, and carries no
// secret even when a log line held one next to markup.
func TestStartingPageContent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	info := ServiceInfo{Name: "web", Declared: true, State: "starting", StartedAt: now.Add(-3 * time.Second),
		Restarts: 2, LastExit: "code 1", Log: ".sandboxd/logs/web.log"}
	tail := "npm install\n<img src=x onerror=alert(1)> & \"quotes\"\nDATABASE_URL=postgres://u:pa55word@db/x\n"
	v := serviceView{ServiceInfo: info, lines: logTail([]byte(tail), false, []string{"postgres://u:pa55word@db/x"})}
	page := startingPage("sb1", 4000, v, now, time.Minute)
	for _, want := range []string{
		"The app is starting",
		"Service web of sandbox sb1 started 3s ago and does not listen on port 4000 yet.",
		"web: starting · up 3s · 2 restarts · last exit code 1",
		"<code>~/.sandboxd/logs/web.log</code>",
		"npm install\n&lt;img src=x onerror=alert(1)&gt; &amp; &#34;quotes&#34;\nDATABASE_URL=[redacted]</pre>",
		"location.reload()", "if(n-f<60000)", // reloads, for a minute at most
		"503 starting",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	for _, never := range []string{"<img", "pa55word"} {
		if strings.Contains(page, never) {
			t.Errorf("the page shows %q:\n%s", never, page)
		}
	}
	t.Run("nothing known", func(t *testing.T) {
		page := startingPage("sb1", 3000, serviceView{}, now, time.Minute)
		if !strings.Contains(page, "Sandbox sb1 is starting; nothing listens on port 3000 yet.") || strings.Contains(page, "<pre>") {
			t.Errorf("page without a service:\n%s", page)
		}
	})
	t.Run("markup in a name", func(t *testing.T) {
		v := serviceView{ServiceInfo: ServiceInfo{Name: "<b>x</b>", State: "backoff", Log: ".sandboxd/logs/<b>x</b>.log"}}
		if page := startingPage("sb1", 3000, v, now, time.Minute); strings.Contains(page, "<b>") {
			t.Errorf("a name's markup reached the page:\n%s", page)
		}
	})
}

// A burst of pages for one port reads the service once; a second later it is read again,
// and the cache stays bounded however many ports are asked about.
func TestServiceCache(t *testing.T) {
	t.Parallel()
	var c serviceCache
	var reads atomic.Int32
	reading, release := make(chan struct{}, 1), make(chan struct{})
	fetch := func() serviceView {
		reads.Add(1)
		select {
		case reading <- struct{}{}:
		default:
		}
		<-release
		return serviceView{ServiceInfo: ServiceInfo{Name: "web"}}
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if v := c.view("sb1", 3000, now, fetch); v.Name != "web" {
				t.Errorf("view %+v", v)
			}
		})
	}
	<-reading // the first caller reads; the others wait for it, or come after and reuse it
	close(release)
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Fatalf("%d reads for one burst", n)
	}
	c.view("sb1", 3000, now.Add(serviceTTL/2), fetch)
	if n := reads.Load(); n != 1 {
		t.Fatalf("a fresh view was read again (%d reads)", n)
	}
	c.view("sb1", 3000, now.Add(serviceTTL), fetch)
	if n := reads.Load(); n != 2 {
		t.Fatalf("an expired view was not read again (%d reads)", n)
	}
	for p := range 2 * serviceCacheMax {
		c.view("sb2", p, now.Add(serviceTTL), fetch)
	}
	if n := len(c.m); n > serviceCacheMax {
		t.Fatalf("%d views kept, more than %d", n, serviceCacheMax)
	}
}
