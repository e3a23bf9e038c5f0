// Package mcp is sandboxd's MCP server: tools that let a coding agent create sandboxes,
// run commands, read and write files, get preview URLs and run agent tasks, over the
// Model Context Protocol's streamable HTTP transport (the official Go SDK).
//
// Every tool call is made as a call of the admin API, through its own http.Handler in
// this process, with the bearer token of the MCP request that carried it. So a tool can
// do exactly what its caller's token can on the REST API, no more: the same
// authentication, the same checks of every field, the same audit, and whatever scoping
// the API applies to a token applies here by construction. The server is stateless: it
// keeps nothing per client between requests, so no client can grow its memory.
package mcp

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sandboxd/sandboxd/admin/client"
)

// Server is the MCP endpoint. Construct with New and serve it behind the API's
// authentication (admin.Server.MCP does).
type Server struct {
	api     http.Handler
	log     *slog.Logger
	handler http.Handler
	// MaxFileBytes caps what read_file returns to the model; zero means 1 MiB.
	MaxFileBytes int64
}

// New returns the MCP server whose tools call api, the admin API's whole handler (auth
// included), as version. A nil log discards.
func New(api http.Handler, version string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{api: api, log: log}
	srv := mcp.NewServer(&mcp.Implementation{Name: "sandboxd", Title: "sandboxd", Version: version}, &mcp.ServerOptions{
		Instructions: "Sandboxes are isolated Linux containers with a persistent home, /home/sandbox; " +
			"file paths are relative to it (the app lives in workspace/app). Create a sandbox with the ports " +
			"your app will serve, run commands in it, and open preview_url to see a port.",
	})
	s.addTools(srv)
	s.handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Stateless:    true,
		JSONResponse: false, // SSE, so run_task's progress reaches the client while it runs
		Logger:       log,
		// The API's own auth already refuses what this guards against (a DNS-rebinding
		// page): without tokens it answers only loopback Host names, and with tokens a page
		// has none. Left on, it would refuse a token holder who names the host otherwise.
		DisableLocalhostProtection: true,
	})
	return s
}

// ServeHTTP serves the MCP streamable HTTP transport.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// apiFor is a client of the admin API that calls it in this process with the bearer
// token of the MCP request (header h).
func (s *Server) apiFor(h http.Header) *client.Client {
	token := ""
	if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		token = strings.TrimSpace(a[7:])
	}
	// "localhost": the API without tokens answers only loopback names.
	c, _ := client.New("http://localhost", token)
	c.HTTPClient = &http.Client{Transport: handlerTransport{h: s.api}}
	c.UserAgent = "sandboxd-mcp"
	return c
}

func (s *Server) maxFile() int64 {
	if s.MaxFileBytes > 0 {
		return s.MaxFileBytes
	}
	return 1 << 20
}
