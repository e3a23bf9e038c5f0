package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sandboxd/sandboxd/internal/testutil"
)

// bearerTransport adds a bearer token to every request.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.base.RoundTrip(r)
}

// mcpSession connects the go-sdk's own client to sandboxd's /mcp with token.
func mcpSession(t *testing.T, d *daemon, token string, progress func(*mcp.ProgressNotificationClientRequest)) (*mcp.ClientSession, error) {
	_, vt := validatingClient(t)
	hc := &http.Client{Transport: bearerTransport{token: token, base: vt}}
	c := mcp.NewClient(&mcp.Implementation{Name: "sandboxd-test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			if progress != nil {
				progress(req)
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: d.API + "/mcp", HTTPClient: hc, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// callTool calls a tool and decodes its structured result into out; a tool error is
// returned as its text.
func callTool(t *testing.T, s *mcp.ClientSession, name string, args map[string]any, meta mcp.Meta, out any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args, Meta: meta})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		var msg []string
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				msg = append(msg, tc.Text)
			}
		}
		return strings.Join(msg, " ")
	}
	if out != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: result %s: %v", name, b, err)
		}
	}
	return ""
}

// The go-sdk's own client drives the MCP server: it lists the tools, creates a sandbox,
// runs a command, writes and reads a file, gets a preview URL that serves, runs an agent
// with progress, and stops the sandbox. Without a valid token nothing is served.
func TestMCP(t *testing.T) {
	t.Parallel()
	d := cliDaemon(t)

	// Refused without a token, or with a wrong one: the API's own auth guards /mcp.
	for _, token := range []string{"", "wrong"} {
		if _, err := mcpSession(t, d, token, nil); err == nil {
			t.Fatalf("an MCP client with token %q was served", token)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, d.API+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "unauthorized") {
		t.Fatalf("tools/list without a token: %d %s", resp.StatusCode, body)
	}

	var mu sync.Mutex
	var progress []string
	s, err := mcpSession(t, d, cliToken, func(p *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		progress = append(progress, p.Params.Message)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	want := []string{"create_sandbox", "exec", "list_files", "preview_url", "read_file", "run_task", "stop_sandbox", "write_file"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools %v, want %v", names, want)
	}

	var sb struct {
		ID          string
		Status      string
		PreviewURLs map[string]string `json:"preview_urls"`
	}
	if msg := callTool(t, s, "create_sandbox", map[string]any{"id": "mcp", "ports": []int{3000},
		"env": map[string]string{"ANTHROPIC_API_KEY": providerKey}}, nil, &sb); msg != "" {
		t.Fatal(msg)
	}
	if sb.ID != "mcp" || sb.Status != "running" || sb.PreviewURLs["3000"] == "" {
		t.Fatalf("create_sandbox: %+v", sb)
	}

	var ex struct {
		ExitCode int `json:"exit_code"`
		Stdout   string
	}
	if msg := callTool(t, s, "exec", map[string]any{"sandbox_id": "mcp", "command": "echo hi from $(whoami); exit 4"}, nil, &ex); msg != "" {
		t.Fatal(msg)
	}
	if ex.ExitCode != 4 || ex.Stdout != "hi from sandbox\n" {
		t.Fatalf("exec: %+v", ex)
	}
	if msg := callTool(t, s, "exec", map[string]any{"sandbox_id": "nope", "command": "true"}, nil, nil); !strings.Contains(msg, "not found") {
		t.Fatalf("exec in a missing sandbox: %q", msg)
	}

	if msg := callTool(t, s, "write_file", map[string]any{"sandbox_id": "mcp", "path": "workspace/app/note.txt", "content": "written by mcp\n"}, nil, nil); msg != "" {
		t.Fatal(msg)
	}
	var rf struct{ Content, Encoding string }
	if msg := callTool(t, s, "read_file", map[string]any{"sandbox_id": "mcp", "path": "workspace/app/note.txt"}, nil, &rf); msg != "" {
		t.Fatal(msg)
	}
	if rf.Content != "written by mcp\n" || rf.Encoding != "utf-8" {
		t.Fatalf("read_file: %+v", rf)
	}
	var lf struct{ Entries []struct{ Path string } }
	if msg := callTool(t, s, "list_files", map[string]any{"sandbox_id": "mcp", "path": "workspace/app"}, nil, &lf); msg != "" {
		t.Fatal(msg)
	}
	if !slices.ContainsFunc(lf.Entries, func(e struct{ Path string }) bool { return e.Path == "workspace/app/note.txt" }) {
		t.Fatalf("list_files: %+v", lf)
	}
	if msg := callTool(t, s, "read_file", map[string]any{"sandbox_id": "mcp", "path": "../../etc/passwd"}, nil, nil); msg == "" {
		t.Fatal("read_file outside the home answered")
	}

	var pv struct{ URL string }
	if msg := callTool(t, s, "preview_url", map[string]any{"sandbox_id": "mcp", "port": 3000}, nil, &pv); msg != "" {
		t.Fatal(msg)
	}
	if pv.URL != sb.PreviewURLs["3000"] {
		t.Fatalf("preview_url %q, the sandbox says %q", pv.URL, sb.PreviewURLs["3000"])
	}
	mustPreview(t, d, "mcp", 3000, "/", "hello from")

	var task struct {
		Status       string
		FilesChanged []struct{ Path string } `json:"files_changed"`
	}
	if msg := callTool(t, s, "run_task", map[string]any{"sandbox_id": "mcp", "prompt": "make a todo list", "agent": "claude"},
		mcp.Meta{"progressToken": "task-1"}, &task); msg != "" {
		t.Fatal(msg)
	}
	// The client hands notifications to its handler on its own goroutine: the last may
	// come after the call's result.
	var got []string
	testutil.Eventually(t, 10*time.Second, "the progress notification of the task's end", func() bool {
		mu.Lock()
		defer mu.Unlock()
		got = slices.Clone(progress)
		return len(got) > 0 && got[len(got)-1] == "done"
	})
	if task.Status != "succeeded" || len(task.FilesChanged) == 0 || len(got) < 4 ||
		!slices.ContainsFunc(got, func(m string) bool { return strings.HasPrefix(m, "tool write") }) {
		t.Fatalf("run_task: %+v, progress %q", task, got)
	}
	if msg := callTool(t, s, "run_task", map[string]any{"sandbox_id": "mcp", "prompt": "please fail", "agent": "opencode"}, nil, nil); !strings.Contains(msg, "agent_error") {
		t.Fatalf("a failing task: %q", msg)
	}

	if msg := callTool(t, s, "stop_sandbox", map[string]any{"sandbox_id": "mcp"}, nil, &sb); msg != "" {
		t.Fatal(msg)
	}
	if sb.Status != "stopped" {
		t.Fatalf("stop_sandbox: %+v", sb)
	}
}
