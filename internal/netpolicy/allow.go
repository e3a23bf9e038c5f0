package netpolicy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Bounds of an allowlist, so a policy stays cheap to hold, match and show.
const (
	MaxEntries  = 256 // entries in one sandbox's list
	MaxEntryLen = 253 // the longest DNS name
)

// Normalize checks an allowlist and returns it in canonical form: names in lower case
// without a trailing dot, a bare address as a one-address CIDR (1.2.3.4 → 1.2.3.4/32),
// duplicates dropped. An entry is a name (registry.npmjs.org), a wildcard of its
// subdomains (*.github.com, which does not match github.com itself) or a CIDR
// (10.1.2.0/24). field names the list in errors, like "network.allow": a bad entry's error
// says which one and why, in words a user can act on.
func Normalize(field string, entries []string) ([]string, error) {
	if len(entries) > MaxEntries {
		return nil, fmt.Errorf("%s has %d entries; at most %d are allowed", field, len(entries), MaxEntries)
	}
	out := make([]string, 0, len(entries))
	seen := map[string]bool{}
	for i, e := range entries {
		n, err := normalizeEntry(e)
		if err != nil {
			return nil, fmt.Errorf("%s[%d] %s", field, i, err)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func normalizeEntry(e string) (string, error) {
	q := fmt.Sprintf("%q", e)
	if len(e) > 64 {
		q = fmt.Sprintf("%q…", e[:64])
	}
	switch {
	case e == "":
		return "", fmt.Errorf("is empty: give a host name like registry.npmjs.org, a wildcard like *.github.com, or a CIDR like 10.1.2.0/24")
	case len(e) > MaxEntryLen:
		return "", fmt.Errorf("%s is %d characters; at most %d are allowed", q, len(e), MaxEntryLen)
	case e == "*" || e == "*.*" || e == "**":
		return "", fmt.Errorf(`%s would allow every host: use "egress":"open" for that`, q)
	case strings.Contains(e, "://"):
		return "", fmt.Errorf("%s is a URL: give the host only, like %s", q, hostOfURL(e))
	}
	if a, err := netip.ParseAddr(e); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("%s has a zone: give a plain address or CIDR", q)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()).String(), nil
	}
	if before, _, ok := strings.Cut(e, "/"); ok {
		if _, err := netip.ParseAddr(before); err != nil {
			return "", fmt.Errorf("%s has a path: give the host only, like %s", q, before)
		}
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return "", fmt.Errorf("%s is not a valid CIDR: want an address, a slash and a prefix length, like 10.1.2.0/24", q)
		}
		if p.Addr().Is4In6() || p.Addr().Zone() != "" {
			return "", fmt.Errorf("%s is not a valid CIDR: give IPv4 ranges in IPv4 form, like 10.1.2.0/24", q)
		}
		if m := p.Masked(); m != p {
			return "", fmt.Errorf("%s is not a valid CIDR: it has address bits set past /%d; did you mean %s?", q, p.Bits(), m)
		}
		return p.String(), nil
	}
	if strings.Contains(e, ":") {
		host, _, _ := strings.Cut(e, ":")
		return "", fmt.Errorf("%s has a port: give the host only, like %s (every port of a listed host is allowed)", q, host)
	}
	name := strings.ToLower(e)
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		rest = strings.TrimSuffix(rest, ".")
		if rest == "" {
			return "", fmt.Errorf("%s needs a domain after the *., like *.github.com", q)
		}
		if err := checkName(rest); err != nil {
			return "", fmt.Errorf("%s is not a valid wildcard: %v", q, err)
		}
		return "*." + rest, nil
	}
	name = strings.TrimSuffix(name, ".")
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("%s is not a valid host name: %v", q, err)
	}
	return name, nil
}

// checkName checks a lower-case DNS name: dot-separated labels of 1-63 letters, digits,
// '-' and '_', no label starting or ending with '-', and a last label that is not all
// digits (which resolvers may read as an address: 0x7f.1, 127.1).
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("it is empty")
	}
	if len(name) > MaxEntryLen {
		return fmt.Errorf("it is longer than %d characters", MaxEntryLen)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return fmt.Errorf("it has an empty label (two dots, or a leading dot)")
		case len(l) > 63:
			return fmt.Errorf("the label %q is longer than 63 characters", l)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("the label %q starts or ends with '-'", l)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				if r == '*' {
					return fmt.Errorf("* is allowed only as the whole first label, like *.github.com")
				}
				return fmt.Errorf("%q is not allowed in a host name", r)
			}
		}
	}
	if last := labels[len(labels)-1]; numeric(last) {
		return fmt.Errorf("its last label %q reads as a number, which resolvers may take for an address", last)
	}
	return nil
}

// numeric reports a label that an address parser reads as a number: decimal digits, or 0x
// and hex digits (WHATWG's URL host parser does; so does inet_aton).
func numeric(l string) bool {
	if h, ok := strings.CutPrefix(l, "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(l, "0123456789") == ""
}

// hostOfURL is the host of a URL-looking entry, for the hint of its error.
func hostOfURL(e string) string {
	_, rest, _ := strings.Cut(e, "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if h, _, ok := strings.Cut(rest, ":"); ok && !strings.HasPrefix(rest, "[") {
		rest = h
	}
	if rest == "" {
		return "example.com"
	}
	return rest
}

// Allowlist is a compiled allowlist. The zero Allowlist allows nothing. It is read-only
// once made, so safe for concurrent use.
type Allowlist struct {
	entries  []string
	exact    map[string]bool
	suffixes []string // ".github.com" for *.github.com
	prefixes []netip.Prefix
}

// Compile builds an Allowlist from normalized lists (Normalize); the lists are joined, in
// order, duplicates dropped. An entry that does not normalize is skipped: callers pass
// lists they validated.
func Compile(lists ...[]string) *Allowlist {
	a := &Allowlist{exact: map[string]bool{}}
	seen := map[string]bool{}
	for _, list := range lists {
		for _, e := range list {
			n, err := normalizeEntry(e)
			if err != nil || seen[n] {
				continue
			}
			seen[n] = true
			a.entries = append(a.entries, n)
			switch {
			case strings.HasPrefix(n, "*."):
				a.suffixes = append(a.suffixes, n[1:])
			case strings.Contains(n, "/"):
				a.prefixes = append(a.prefixes, netip.MustParsePrefix(n))
			default:
				a.exact[n] = true
			}
		}
	}
	return a
}

// Entries returns the list's entries in order. The slice must not be modified.
func (a *Allowlist) Entries() []string { return a.entries }

// AllowsName reports whether a canonical name (CanonicalHost) is listed, exactly or
// under a wildcard.
func (a *Allowlist) AllowsName(name string) bool {
	if a.exact[name] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// Covers reports whether a listed CIDR covers ip.
func (a *Allowlist) Covers(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// CanonicalHost reads the host of a request (a CONNECT authority's or a URL's, without the
// port): an address, in brackets or not, comes back as ip; a name comes back in lower case
// without its trailing dot, checked as Normalize checks a listed one.
func CanonicalHost(host string) (name string, ip netip.Addr, err error) {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, perr := netip.ParseAddr(h); perr == nil {
		if a.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("%q has a zone", host)
		}
		return "", a.Unmap(), nil
	}
	name = strings.TrimSuffix(strings.ToLower(host), ".")
	if err := checkName(name); err != nil {
		return "", netip.Addr{}, fmt.Errorf("%q is not a valid host name: %v", host, err)
	}
	return name, netip.Addr{}, nil
}
