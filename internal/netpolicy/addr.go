package netpolicy

import "net/netip"

// notPublic are the special-purpose ranges of IANA's IPv4 and IPv6 registries (RFC 6890
// and later) that are not globally reachable, plus the ranges that embed an IPv4 address
// in IPv6 (NAT64, 6to4, Teredo) and could smuggle a private one past the check.
var notPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/127", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
		"2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Public reports whether ip is a globally reachable unicast address: not private,
// loopback, link-local (169.254.169.254, the cloud metadata service, among them),
// documentation, benchmarking, CGNAT, multicast or otherwise reserved. The proxy connects
// to other addresses only when a listed CIDR covers them.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Forbidden reports an address the proxy never connects to, whatever a policy or a listed
// CIDR says: loopback (this host's own services, the admin API among them), unspecified,
// link-local (the cloud metadata service at 169.254.169.254), multicast and broadcast.
// The proxy adds this host's own addresses and the sandbox networks to these.
func Forbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() ||
		ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || ip.Is4() && ip.As4()[0] == 0
}
