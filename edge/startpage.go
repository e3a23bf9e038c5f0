package edge

import (
	"bytes"
	"html"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The starting page (issue 14): a navigation to an app that does not listen yet, because
// its sandbox is waking or its dev server is still booting, gets this page at once instead
// of being held until the port opens. It says the app is starting, shows the service's
// state and the last lines of its log, and reloads itself; the reload that finds the port
// open gets the app. The log is the sandbox's, shown to whoever may open the preview (the
// access check of a private one runs first), so env values never appear in it.

// Bounds of what the page shows of a log.
const (
	logTailBytes = 16 << 10 // read from the end of the log
	logTailLines = 40       // lines shown, the last ones
	logLineBytes = 300      // a longer line is cut
	// minSecret is the shortest env value that is redacted: a shorter one cannot be a
	// secret worth the name, and replacing every "1" or "dev" would shred the log.
	minSecret = 4
	redacted  = "[redacted]"
)

// startingRetry is the page's Retry-After and how soon it reloads.
const startingRetry = time.Second

// logTail turns the end of a service log into the lines the page shows: whole lines only
// (when the tail was cut, its first line is dropped, so no partial secret shows), what a
// terminal would show of each (the text after its last carriage return, without colour
// codes or control characters), every secret replaced by [redacted], and at most
// logTailLines of at most logLineBytes each. The result is not HTML-escaped yet.
func logTail(tail []byte, cut bool, secrets []string) []string {
	if cut {
		i := bytes.IndexByte(tail, '\n')
		if i < 0 {
			return nil // one line longer than the tail: nothing of it is whole
		}
		tail = tail[i+1:]
	}
	tail = bytes.TrimSuffix(tail, []byte("\n"))
	if len(tail) == 0 {
		return nil
	}
	raw := bytes.Split(tail, []byte("\n"))
	if len(raw) > logTailLines {
		raw = raw[len(raw)-logTailLines:]
	}
	red := redactor(secrets)
	lines := make([]string, len(raw))
	for i, l := range raw {
		lines[i] = cutLine(red.Replace(terminalText(l)), logLineBytes)
	}
	return lines
}

// redactor replaces each secret, as terminalText would leave it, with [redacted]: the
// longest first, so a secret holding another is replaced whole. A value of several lines
// is redacted line by line, as a log shows it.
func redactor(secrets []string) *strings.Replacer {
	seen := map[string]bool{}
	var olds []string
	for _, s := range secrets {
		for _, part := range strings.Split(s, "\n") {
			part = terminalText([]byte(part))
			if len(part) >= minSecret && !seen[part] {
				seen[part] = true
				olds = append(olds, part)
			}
		}
	}
	sort.Slice(olds, func(i, j int) bool { return len(olds[i]) > len(olds[j]) })
	pairs := make([]string, 0, 2*len(olds))
	for _, o := range olds {
		pairs = append(pairs, o, redacted)
	}
	return strings.NewReplacer(pairs...)
}

// terminalText is what a terminal shows of one log line: the text after its last carriage
// return (progress bars redraw a line that way), valid UTF-8, without ANSI escape
// sequences or other control characters (a tab stays).
func terminalText(line []byte) string {
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	var b strings.Builder
	s := strings.ToValidUTF8(string(line), "\uFFFD")
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b: // ESC: skip the sequence it starts
			i = skipEscape(s, i)
			continue
		case c == '\t' || c >= 0x20 && c != 0x7f:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r >= 0x80 && r < 0xa0 { // C1 controls
				i += n
				continue
			}
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		i++ // another control character
	}
	return b.String()
}

// skipEscape returns the index just past the escape sequence that starts at s[i] (ESC):
// a CSI (ESC [ ... final byte), an OSC (ESC ] ... BEL or ESC \), or ESC and one byte.
func skipEscape(s string, i int) int {
	i++
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		for i++; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return i
	case ']':
		for i++; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	}
	return i + 1
}

// cutLine cuts s to at most n bytes, on a rune boundary, marking the cut with "…".
func cutLine(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// startingPage is the HTML of the starting page of id's port: what is starting, the
// service's state, the log lines, and the script that reloads it. reloadFor bounds the
// reloading: a tab left open on an app that never listens stops after it, so it does not
// wake the sandbox forever.
func startingPage(id string, port int, v serviceView, now time.Time, reloadFor time.Duration) string {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width,initial-scale=1"><title>Starting…</title>` +
		`<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;min-height:100vh;display:grid;place-items:center;background:#f6f7f9;color:#1f2328}` +
		`main{max-width:46rem;width:100%;box-sizing:border-box;padding:2rem}h1{font-size:1.3rem;margin:0 0 .5rem}` +
		`code{color:#57606a;font-size:.85rem}pre{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.75rem;` +
		`overflow:auto;font-size:.8rem;line-height:1.4;max-height:60vh;white-space:pre-wrap;word-break:break-all}</style></head><body><main>`)
	b.WriteString(`<h1>The app is starting</h1><p>`)
	b.WriteString(html.EscapeString(startingMessage(id, port, v, now)))
	b.WriteString(` This page reloads every second and shows the app as soon as it answers.</p>`)
	if st := stateLine(v.ServiceInfo, now); st != "" {
		b.WriteString(`<p><code>` + html.EscapeString(st) + `</code></p>`)
	}
	if v.Log != "" {
		b.WriteString(`<p>The end of its log, <code>~/` + html.EscapeString(v.Log) + `</code>:</p><pre>`)
		if len(v.lines) == 0 {
			b.WriteString(`(nothing yet)`)
		}
		for i, l := range v.lines {
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(html.EscapeString(l))
		}
		b.WriteString(`</pre>`)
	}
	b.WriteString(`<p id="stale" hidden>It has not answered for a while, so this page stopped reloading. ` +
		`<a href="">Reload</a> to keep waiting.</p><noscript><p>Reload this page to check again.</p></noscript>` +
		`<p><code>503 starting</code></p></main>`)
	// The reloads of one start share a first time, in sessionStorage; a page seen more
	// than a few seconds after the last one begins a new start. Where storage is refused
	// (a sandboxed frame) the page reloads without the bound.
	ms := strconv.FormatInt(startingRetry.Milliseconds(), 10)
	b.WriteString(`<script>(function(){function r(){setTimeout(function(){location.reload()},` + ms + `)}` +
		`try{var k="sandboxd-starting:"+location.href,n=Date.now(),v=(sessionStorage.getItem(k)||"0,0").split(","),f=+v[0];` +
		`if(n-(+v[1])>5000)f=n;if(n-f<` + strconv.FormatInt(reloadFor.Milliseconds(), 10) + `){sessionStorage.setItem(k,f+","+n);r()}` +
		`else{sessionStorage.removeItem(k);document.getElementById("stale").hidden=false}}catch(e){r()}})()</script>`)
	b.WriteString("</body></html>\n")
	return b.String()
}

// startingMessage says what is starting.
func startingMessage(id string, port int, v serviceView, now time.Time) string {
	switch {
	case v.Name == "":
		return "Sandbox " + id + " is starting; nothing listens on port " + itoa(port) + " yet."
	case v.State == "backoff":
		return "Service " + v.Name + " of sandbox " + id + " exited and is being restarted; port " + itoa(port) + " does not answer yet."
	case !v.StartedAt.IsZero() && now.Sub(v.StartedAt) >= 0:
		return "Service " + v.Name + " of sandbox " + id + " started " + ago(now.Sub(v.StartedAt)) +
			" ago and does not listen on port " + itoa(port) + " yet."
	}
	return "Sandbox " + id + " is starting service " + v.Name + "; port " + itoa(port) + " does not answer yet."
}

// stateLine is the service's state in one line: "web: starting · 2 restarts · last exit
// code 1".
func stateLine(s ServiceInfo, now time.Time) string {
	if s.Name == "" || s.State == "" {
		return ""
	}
	parts := []string{s.Name + ": " + s.State}
	if !s.StartedAt.IsZero() && s.State != "backoff" && now.Sub(s.StartedAt) >= 0 {
		parts = append(parts, "up "+ago(now.Sub(s.StartedAt)))
	}
	if s.Restarts > 0 {
		parts = append(parts, strconv.Itoa(s.Restarts)+" restarts")
	}
	if s.LastExit != "" {
		parts = append(parts, "last exit "+s.LastExit)
	}
	if s.Error != "" {
		parts = append(parts, s.Error)
	}
	return strings.Join(parts, " · ")
}

// ago is d for people: "12s", "3m".
func ago(d time.Duration) string {
	if d < time.Minute {
		return strconv.Itoa(int(d/time.Second)) + "s"
	}
	return strconv.Itoa(int(d/time.Minute)) + "m"
}

// writeStarting answers r with the starting page: 503, which is what it is (crawlers and
// monitors read it as "try again"; browsers render the page all the same), Retry-After 1
// and X-Sandboxd-State: starting.
func (s *Server) writeStarting(w http.ResponseWriter, r *http.Request, id string, port int, v serviceView) {
	if rb := bodyOf(r); rb != nil {
		rb.start() // as write does: the server reads the unread body after this, bounded
	}
	if s.OnStatus != nil {
		s.OnStatus(http.StatusServiceUnavailable)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Retry-After", strconv.Itoa(int(startingRetry/time.Second)))
	h.Set("X-Sandboxd-State", "starting")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(startingPage(id, port, v, s.now(), s.wakeTimeout())))
}
