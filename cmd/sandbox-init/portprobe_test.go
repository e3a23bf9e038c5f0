package main

import (
	"net"
	"testing"
)

func TestParseListening(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0FA0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0BB8 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 20 4 30 10 -1
`
	ports := map[int]bool{}
	parseListening([]byte(table), ports)
	if !ports[4000] || !ports[8080] || ports[3000] || len(ports) != 2 {
		t.Fatalf("ports = %v, want 4000 and 8080 (3000 is an established connection)", ports)
	}
}

func TestListeningPortsSeesALocalListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ports, ok := listeningPorts()
	if !ok {
		t.Skip("no /proc/net/tcp")
	}
	if port := ln.Addr().(*net.TCPAddr).Port; !ports[port] {
		t.Fatalf("port %d not found listening", port)
	}
}
