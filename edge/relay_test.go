package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeRelay answers like sandbox-init's relay: "RELAY <port>" → OK and an echo of what
// follows, or ERR for the ports in refuse.
func fakeRelay(t *testing.T, refuse string) (port int, asked chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	asked = make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				line, _ := br.ReadString('\n')
				asked <- strings.TrimSpace(line)
				if strings.HasSuffix(strings.TrimSpace(line), refuse) {
					io.WriteString(c, "ERR port "+refuse+": connection refused\n")
					return
				}
				io.WriteString(c, "OK\n")
				io.Copy(c, br)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, asked
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

func TestDialerFallsBackToRelay(t *testing.T) {
	port := closedPort(t)
	relay, asked := fakeRelay(t, "none")
	d := Dialer{RelayPort: relay}
	c, err := d.DialContext(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("dial through the relay: %v", err)
	}
	defer c.Close()
	if got := <-asked; got != "RELAY "+strconv.Itoa(port) {
		t.Fatalf("relay asked %q", got)
	}
	io.WriteString(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("bytes through the relay: %q %v", line, err)
	}
}

func TestDialerRelayRefusal(t *testing.T) {
	port := closedPort(t)
	relay, _ := fakeRelay(t, strconv.Itoa(port))
	_, err := (&Dialer{RelayPort: relay}).DialContext(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want the original refusal", err)
	}
	// Without a relay at all the refusal stands too.
	_, err = (&Dialer{RelayPort: closedPort(t)}).DialContext(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("no relay: err = %v", err)
	}
}
