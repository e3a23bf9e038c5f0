// Package httpguard refuses the requests a browser makes on behalf of another site. The
// admin API and the E2B listener are for programs, and a page must not drive either with
// the browser of someone who can reach it; both share these rules so they cannot drift.
package httpguard

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// RefuseBrowser says why a request that a browser made on behalf of another site is
// refused, or "" to let it through. Programs send no Origin and no Sec-Fetch-Site.
// loopbackOnly is set when the API has no tokens and listens on loopback: a Host that is
// not a loopback name is then refused, for a DNS-rebound name reaches the loopback port
// with the victim's browser as if it were the site's own.
func RefuseBrowser(r *http.Request, loopbackOnly bool) string {
	if loopbackOnly && !LoopbackHost(r.Host) {
		return "Host " + r.Host + " is not a loopback name: the API without tokens answers only localhost"
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return "cross-site browser requests are refused"
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return "cross-origin browser requests are refused"
		}
	} else if o == "null" {
		return "requests from opaque origins are refused"
	}
	return ""
}

// LoopbackHost reports whether hostport (a Host header, with or without a port) names
// the loopback: localhost, a name under .localhost, or a loopback address.
func LoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}
