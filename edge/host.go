package edge

import "strings"

// previewLabel sits between a sandbox's label and the operator's domain.
const previewLabel = ".preview."

// ParseHost reads a preview host as sent in a Host header, in either of its two forms:
// s-<id>-<port>.preview.<domain> (sandboxd's) or <port>-<id>.preview.<domain> (E2B's,
// which its SDKs build from a sandbox's domain). Any letter case (id comes back
// lowercased), an optional :port suffix, an optional trailing dot on the name. The id
// matches ^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$ and may contain '-', so the port is what
// follows the last '-' of the first form and precedes the first '-' of the second: decimal
// 1..65535 without sign or leading zero. The forms cannot be confused, since a port never
// starts with 's'. Anything else, IP literals included, is not a preview host.
func ParseHost(host, domain string) (id string, port int, ok bool) {
	host, ok = stripPort(host)
	if !ok {
		return "", 0, false
	}
	host = strings.TrimSuffix(host, ".")
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" {
		return "", 0, false
	}
	// host = label previewLabel domain
	n := len(host) - len(domain) - len(previewLabel)
	if n < len("1-a") ||
		!equalFoldASCII(host[n+len(previewLabel):], domain) ||
		!equalFoldASCII(host[n:n+len(previewLabel)], previewLabel) {
		return "", 0, false
	}
	label := host[:n]
	var rawID string
	if lowerByte(label[0]) == 's' && label[1] == '-' {
		label = label[2:]
		i := strings.LastIndexByte(label, '-')
		if i < 0 {
			return "", 0, false
		}
		port, ok = parsePort(label[i+1:])
		rawID = label[:i]
	} else {
		i := strings.IndexByte(label, '-')
		if i < 0 {
			return "", 0, false
		}
		port, ok = parsePort(label[:i])
		rawID = label[i+1:]
	}
	if !ok || !validID(rawID) {
		return "", 0, false
	}
	return lowerASCII(rawID), port, true
}

// hostHint says what a preview host looks like, for a host on the preview domain that
// ParseHost refused ("s-demo.preview.localhost" lacks the port), or "" for a host that is
// not ours. The example reuses the id and port of the host when they are well formed;
// nothing else of the host is echoed.
func hostHint(host, domain string) string {
	host, ok := stripPort(host)
	domain = strings.TrimSuffix(domain, ".")
	if !ok || domain == "" {
		return ""
	}
	host = strings.TrimSuffix(host, ".")
	if !equalFoldASCII(host, domain) && (len(host) <= len(domain) ||
		host[len(host)-len(domain)-1] != '.' || !equalFoldASCII(host[len(host)-len(domain):], domain)) {
		return ""
	}
	id, port, bad := "abc123", "3000", ""
	first, _, _ := strings.Cut(host, ".")
	if len(first) > 2 && lowerByte(first[0]) == 's' && first[1] == '-' {
		label := first[2:]
		if i := strings.LastIndexByte(label, '-'); i > 0 {
			if p, ok := parsePort(label[i+1:]); ok {
				label, port = label[:i], itoa(p) // "s-demo-3000.localhost": the .preview is missing
			} else if digits(label[i+1:]) {
				label, bad = label[:i], label[i+1:] // "s-demo-99999": a number, but not a port
			}
		}
		if validID(label) {
			id = lowerASCII(label)
		}
	}
	domain = lowerASCII(domain)
	hint := "a preview host is s-<id>-<port>.preview." + domain + ", like s-" + id + "-" + port + ".preview." + domain
	if bad != "" && len(bad) <= 8 {
		hint = bad + " is not a port (1 to 65535, no leading zero); " + hint
	}
	return hint
}

// digits reports whether s is one or more decimal digits.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// stripPort removes a ":port" suffix. Bracketed IPv6 literals and names
// with colons left are refused rather than misread.
func stripPort(host string) (string, bool) {
	if strings.HasPrefix(host, "[") {
		return "", false
	}
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host, true
	}
	for _, c := range []byte(host[i+1:]) {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	host = host[:i]
	if strings.IndexByte(host, ':') >= 0 {
		return "", false
	}
	return host, true
}

// parsePort reads 1..65535 in canonical decimal.
func parsePort(s string) (int, bool) {
	if len(s) == 0 || len(s) > 5 || s[0] == '0' {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

// validID reports whether s, lowercased, matches
// ^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 40 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		c = lowerByte(c)
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// equalFoldASCII compares ASCII case-insensitively. Unlike strings.EqualFold
// it does not fold Unicode (the Kelvin sign is not a 'k' in a host name).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerByte(a[i]) != lowerByte(b[i]) {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// lowerASCII lowercases s, allocating only when s has an upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
