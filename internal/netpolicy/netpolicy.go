// Package netpolicy is the contract of a sandbox's network policy (issue 15), shared by
// lifecycle, which validates and stores it, the egress proxy (edge/egress), which enforces
// it, and admin, which shows it: the three egress modes, the allowlist's syntax and
// matching, and which addresses count as public. Standard library only.
package netpolicy

import (
	"strings"
	"time"
)

// The egress modes of a sandbox.
const (
	// None: no route out. The egress proxy refuses every request of the sandbox.
	None = "none"
	// Proxy: no route out but the egress proxy, which allows only the listed names and
	// addresses.
	Proxy = "proxy"
	// Open: the sandbox's own route out, as before issue 15; the proxy allows any address
	// that is neither this host nor a sandbox.
	Open = "open"
)

// Modes lists the modes, for messages.
var Modes = []string{None, Proxy, Open}

// ValidMode reports whether m is one of the modes.
func ValidMode(m string) bool { return m == None || m == Proxy || m == Open }

// ModeList is the modes as a message names them: "none", "proxy" or "open".
func ModeList() string {
	q := make([]string, len(Modes))
	for i, m := range Modes {
		q[i] = `"` + m + `"`
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// Denial is one refused request of a sandbox, as the API shows it in
// "network":{"denied_recent":[...]}.
type Denial struct {
	At     time.Time `json:"at"`
	Host   string    `json:"host"`   // the host the sandbox asked for, with its port
	Reason string    `json:"reason"` // a Reason* code
}

// Why the egress proxy refused a request. They are the reason label of its metrics too,
// so the set stays small.
const (
	ReasonNone      = "egress_none" // the sandbox's mode is none
	ReasonNotListed = "not_listed"  // the name is not in the allowlist
	ReasonLiteral   = "ip_literal"  // an IP address no listed CIDR covers
	ReasonAddress   = "address"     // the name resolves only to addresses the policy refuses
	ReasonLimit     = "limit"       // too many connections at once
	ReasonBad       = "bad_request" // not a request the proxy serves (https in absolute form, a bad host)
	ReasonUnknown   = "not_sandbox" // the source is no running sandbox
)
