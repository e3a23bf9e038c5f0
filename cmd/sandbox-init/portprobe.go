package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// tcpListenState is TCP_LISTEN as /proc/net/tcp prints it.
const tcpListenState = "0A"

// listeningPorts returns the TCP ports with a socket in LISTEN state in this
// network namespace, on any address, from /proc/net/tcp and tcp6. Reading
// the kernel's table tells "starting" from "running" without connecting to
// the service (a dev server may log, or count, every connection). ok is
// false when neither table could be read.
func listeningPorts() (ports map[int]bool, ok bool) {
	ports = make(map[int]bool)
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		ok = true
		parseListening(data, ports)
	}
	return ports, ok
}

// parseListening adds the listening ports of a /proc/net/tcp table to ports.
// A line reads "sl local_address rem_address st ...", with the local address
// as HEXIP:HEXPORT.
func parseListening(table []byte, ports map[int]bool) {
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != tcpListenState {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
			ports[int(p)] = true
		}
	}
}
