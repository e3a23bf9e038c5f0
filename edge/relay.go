package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/internal/initproto"
)

// Dialer connects to a port of a sandbox. A dev server that listens only on 127.0.0.1 or
// ::1 inside the sandbox (Vite's default) refuses connections to the container IP; then the
// Dialer asks sandbox-init's relay, which listens on RelayPort of the container IP, to
// connect to the loopback port for it, with the handshake of initproto: one request line,
// one answer line, then the bytes flow. The app needs no flag and sees an ordinary
// loopback connection.
type Dialer struct {
	// Timeout bounds each connect, and the relay's answer. Zero means 5s.
	Timeout time.Duration
	// RelayPort is sandbox-init's relay port (initproto.RelayPort); 0 disables the
	// fallback.
	RelayPort int
}

// DialContext connects to addr ("ip:port"), falling back to the relay when the port refuses.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	nd := net.Dialer{Timeout: timeout}
	c, err := nd.DialContext(ctx, network, addr)
	if err == nil || d.RelayPort == 0 || !errors.Is(err, syscall.ECONNREFUSED) {
		return c, err
	}
	host, portText, splitErr := net.SplitHostPort(addr)
	port, atoiErr := strconv.Atoi(portText)
	if splitErr != nil || atoiErr != nil || port == d.RelayPort {
		return nil, err
	}
	rc, rerr := nd.DialContext(ctx, network, net.JoinHostPort(host, strconv.Itoa(d.RelayPort)))
	if rerr != nil {
		return nil, err // no relay (an image run without sandbox-init): the port is closed
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(time.Now().Add(timeout)) {
		rc.SetDeadline(dl)
	} else {
		rc.SetDeadline(time.Now().Add(timeout))
	}
	if _, werr := io.WriteString(rc, initproto.RelayRequest(port)); werr != nil {
		rc.Close()
		return nil, err
	}
	// Read the answer a byte at a time: anything after the newline is the app's and must
	// stay in the connection.
	line, rerr := readLine(rc, initproto.RelayMaxAnswer)
	if rerr == nil {
		rerr = initproto.ParseRelayAnswer(line)
	}
	if rerr != nil {
		rc.Close()
		var refused *initproto.RelayError
		if errors.As(rerr, &refused) {
			return nil, fmt.Errorf("%w (relay: %s)", err, refused.Reason)
		}
		return nil, err
	}
	rc.SetDeadline(time.Time{})
	return rc, nil
}

func readLine(c net.Conn, max int) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < max {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return strings.TrimSuffix(string(b), "\r"), nil
		}
		b = append(b, one[0])
	}
	return string(b), errors.New("relay answer too long")
}
