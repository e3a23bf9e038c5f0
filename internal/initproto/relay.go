package initproto

import (
	"errors"
	"strconv"
	"strings"
)

// The relay joins connections from sandboxd's edge to servers listening only on the
// container's loopback, which the edge cannot reach. The client connects to RelayPort on
// the container's address and sends one line, "RELAY <port>\n"; sandbox-init dials the
// loopback port and answers "OK\n" before the bytes flow both ways, or "ERR <reason>\n" and
// closes. Both sides read lines a byte at a time, so bytes after the newline stay in the
// connection for the other end.
const (
	// RelayPort is the relay's port in every sandbox; sandboxes cannot declare it.
	RelayPort = 65535
	// RelayMaxRequest bounds the request line, newline included.
	RelayMaxRequest = 32
	// RelayMaxAnswer bounds the answer line, newline included.
	RelayMaxAnswer = 64
	// RelayOK is the answer line (without its newline) when the port was reached.
	RelayOK = "OK"
)

const relayVerb = "RELAY "

// RelayRequest is the request line for port, newline included.
func RelayRequest(port int) string { return relayVerb + strconv.Itoa(port) + "\n" }

// ErrBadRelayRequest is a request line that does not parse.
var ErrBadRelayRequest = errors.New("bad request")

// ErrBadRelayPort is a request for a port that is not plain decimal 1..65535.
var ErrBadRelayPort = errors.New("bad port")

// ParseRelayRequest parses a request line without its newline (a trailing "\r" is
// tolerated). It returns ErrBadRelayRequest or ErrBadRelayPort when it does not parse.
func ParseRelayRequest(line string) (int, error) {
	line = strings.TrimSuffix(line, "\r")
	digits, ok := strings.CutPrefix(line, relayVerb)
	if !ok || digits == "" {
		return 0, ErrBadRelayRequest
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, ErrBadRelayPort
		}
	}
	port, err := strconv.Atoi(digits)
	if err != nil || port < 1 || port > 65535 {
		return 0, ErrBadRelayPort
	}
	return port, nil
}

// RelayRefusal is the answer line, newline included, that refuses a request for reason.
// The reason is kept to one line.
func RelayRefusal(reason string) string {
	reason = strings.NewReplacer("\n", " ", "\r", " ").Replace(reason)
	return "ERR " + reason + "\n"
}

// RelayError is a refusal the relay answered.
type RelayError struct{ Reason string }

func (e *RelayError) Error() string { return "relay: " + e.Reason }

// ParseRelayAnswer reads an answer line without its newline: nil for RelayOK, a
// *RelayError for a refusal, and another error for anything else.
func ParseRelayAnswer(line string) error {
	line = strings.TrimSuffix(line, "\r")
	if line == RelayOK {
		return nil
	}
	if reason, ok := strings.CutPrefix(line, "ERR "); ok {
		return &RelayError{Reason: reason}
	}
	return errors.New("relay: unexpected answer")
}
