package edge

import (
	"net/http"
	"strings"
)

// maxTokenCookies bounds the cookies of our name one request may make the edge verify:
// a sibling host may plant cookies on the parent domain (cookie tossing), and each costs
// an HMAC.
const maxTokenCookies = 8

// linkToken returns the value of the first TokenParam in a raw query, or "". The name
// must be spelled exactly; a percent-encoded one is not ours (and not stripped either).
func linkToken(raw string) string {
	if !strings.Contains(raw, TokenParam) {
		return ""
	}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if k, v, _ := strings.Cut(pair, "="); k == TokenParam {
			return v
		}
	}
	return ""
}

// withoutToken returns a raw query without its TokenParam pairs, the others untouched.
func withoutToken(raw string) string {
	if !strings.Contains(raw, TokenParam) {
		return raw
	}
	var b strings.Builder
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if k, _, _ := strings.Cut(pair, "="); k == TokenParam {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	return b.String()
}

// tokenCookies reports whether ok accepts the value of one of our cookies among the Cookie
// header's values; at most maxTokenCookies are tried.
func tokenCookies(values []string, ok func(string) bool) bool {
	tried := 0
	for _, line := range values {
		if !strings.Contains(line, cookieName) {
			continue
		}
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			name, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if name != cookieName && name != secureCookieName {
				continue
			}
			if tried++; tried > maxTokenCookies {
				return false
			}
			if ok(strings.Trim(v, `"`)) {
				return true
			}
		}
	}
	return false
}

// stripCredentials removes every preview credential from a request on its way to the app:
// the header, our cookies (the app's own stay as they were) and the link's parameter.
func stripCredentials(out *http.Request) {
	h := out.Header
	delete(h, TokenHeader)
	if vs := h["Cookie"]; len(vs) > 0 {
		h["Cookie"] = withoutTokenCookies(vs)
		if len(h["Cookie"]) == 0 {
			delete(h, "Cookie")
		}
	}
	out.URL.RawQuery = withoutToken(out.URL.RawQuery)
}

// withoutTokenCookies returns the Cookie header's values without our cookies; a value left
// empty is dropped. Values without our name are kept byte for byte.
func withoutTokenCookies(values []string) []string {
	mine := false
	for _, v := range values {
		if strings.Contains(v, cookieName) {
			mine = true
			break
		}
	}
	if !mine {
		return values
	}
	out := make([]string, 0, len(values))
	for _, line := range values {
		if !strings.Contains(line, cookieName) {
			out = append(out, line)
			continue
		}
		var kept []string
		for line != "" {
			var pair string
			pair, line, _ = strings.Cut(line, ";")
			pair = strings.TrimSpace(pair)
			if name, _, _ := strings.Cut(pair, "="); pair == "" || name == cookieName || name == secureCookieName {
				continue
			}
			kept = append(kept, pair)
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, "; "))
		}
	}
	return out
}
