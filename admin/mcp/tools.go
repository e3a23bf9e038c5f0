package mcp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/sandboxd/sandboxd/admin/client"
)

// The tools. Each validates nothing the API validates: the API answers bad input with a
// sentence naming the field, which the model reads as the tool's error.

type createIn struct {
	ID    string            `json:"id,omitempty" jsonschema:"the sandbox id (1-40 lowercase letters, digits and inner dashes); default a new one"`
	Image string            `json:"image,omitempty" jsonschema:"the image; default the server's"`
	Ports []int             `json:"ports,omitempty" jsonschema:"ports your app will serve, to get preview URLs for, like [3000]"`
	Env   map[string]string `json:"env,omitempty" jsonschema:"environment variables of every process in the sandbox"`
}

type sandboxOut struct {
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Image       string            `json:"image"`
	Ports       []int             `json:"ports"`
	PreviewURLs map[string]string `json:"preview_urls"`
}

func outOf(sb client.Sandbox) sandboxOut {
	return sandboxOut{ID: sb.ID, Status: sb.Status, Image: sb.Image, Ports: sb.Ports, PreviewURLs: sb.PreviewURLs}
}

type idIn struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox's id"`
}

type execIn struct {
	SandboxID      string            `json:"sandbox_id" jsonschema:"the sandbox's id"`
	Command        string            `json:"command" jsonschema:"a shell command line, run with sh -c as the sandbox user"`
	Cwd            string            `json:"cwd,omitempty" jsonschema:"directory relative to the home /home/sandbox; default the home"`
	Env            map[string]string `json:"env,omitempty" jsonschema:"extra environment variables"`
	TimeoutSeconds int               `json:"timeout_seconds,omitempty" jsonschema:"kill the command after this many seconds; default the server's"`
}

type execOut struct {
	ExitCode  int    `json:"exit_code"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	TimedOut  bool   `json:"timed_out"`
	Truncated bool   `json:"truncated"`
}

type pathIn struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox's id"`
	Path      string `json:"path" jsonschema:"relative to the home /home/sandbox, like workspace/app/index.html"`
}

type readOut struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	Content   string `json:"content" jsonschema:"the text, or base64 when encoding says so"`
	Encoding  string `json:"encoding" jsonschema:"utf-8 or base64"`
	Truncated bool   `json:"truncated" jsonschema:"the file is longer than what is returned"`
}

type writeIn struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox's id"`
	Path      string `json:"path" jsonschema:"relative to the home /home/sandbox; parents are made"`
	Content   string `json:"content" jsonschema:"the file's text (or base64 with encoding base64)"`
	Encoding  string `json:"encoding,omitempty" jsonschema:"base64 for binary content; default text"`
	Append    bool   `json:"append,omitempty" jsonschema:"append instead of replacing"`
	Mode      string `json:"mode,omitempty" jsonschema:"octal permissions like 0755"`
}

type listIn struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox's id"`
	Path      string `json:"path,omitempty" jsonschema:"the directory, relative to the home; default the home"`
	Recursive bool   `json:"recursive,omitempty" jsonschema:"list the whole tree (node_modules, .git and caches are not descended)"`
}

type entryOut struct {
	Path string `json:"path"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

type listOut struct {
	Path      string     `json:"path"`
	Entries   []entryOut `json:"entries"`
	Truncated bool       `json:"truncated"`
}

type previewIn struct {
	SandboxID  string `json:"sandbox_id" jsonschema:"the sandbox's id"`
	Port       int    `json:"port" jsonschema:"a port the sandbox declares"`
	Token      bool   `json:"token,omitempty" jsonschema:"also mint a URL carrying a preview token, for a private port"`
	TTLSeconds int    `json:"ttl_seconds,omitempty" jsonschema:"how long the token URL works; default the server's"`
}

type previewOut struct {
	URL       string `json:"url"`
	TokenURL  string `json:"token_url,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

type taskIn struct {
	SandboxID      string            `json:"sandbox_id" jsonschema:"the sandbox's id"`
	Prompt         string            `json:"prompt" jsonschema:"what the agent should do"`
	Agent          string            `json:"agent,omitempty" jsonschema:"opencode (default) or claude"`
	Model          string            `json:"model,omitempty" jsonschema:"the agent's model"`
	Env            map[string]string `json:"env,omitempty" jsonschema:"environment for the agent, like its provider key"`
	TimeoutSeconds int               `json:"timeout_seconds,omitempty" jsonschema:"cancel the task after this many seconds"`
}

type taskOut struct {
	TaskID        string              `json:"task_id"`
	Status        string              `json:"status"`
	FailureReason string              `json:"failure_reason,omitempty"`
	Error         string              `json:"error,omitempty"`
	FinalMessage  string              `json:"final_message"`
	FilesChanged  []client.FileChange `json:"files_changed"`
	DurationMS    int64               `json:"duration_ms"`
	InputTokens   int64               `json:"input_tokens"`
	OutputTokens  int64               `json:"output_tokens"`
}

func (s *Server) addTools(srv *mcp.Server) {
	mcp.AddTool(srv, &mcp.Tool{Name: "create_sandbox", Description: "Create a sandbox: an isolated Linux container with a persistent home. Answers its id and the preview URL of each port."},
		func(ctx context.Context, req *mcp.CallToolRequest, in createIn) (*mcp.CallToolResult, sandboxOut, error) {
			sb, err := s.caller(req).Create(ctx, client.CreateRequest{ID: in.ID, Image: in.Image, Ports: in.Ports, Env: in.Env})
			return nil, outOf(sb), err
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "exec", Description: "Run a shell command in a sandbox (started first if it sleeps) and answer its output and exit code."},
		func(ctx context.Context, req *mcp.CallToolRequest, in execIn) (*mcp.CallToolResult, execOut, error) {
			if strings.TrimSpace(in.Command) == "" {
				return nil, execOut{}, errors.New("command is empty: give a shell command line, like \"ls -la\"")
			}
			r, err := s.caller(req).Exec(ctx, in.SandboxID, client.ExecRequest{Cmd: []string{"sh", "-c", in.Command},
				Cwd: in.Cwd, Env: in.Env, Timeout: time.Duration(in.TimeoutSeconds) * time.Second})
			return nil, execOut{ExitCode: r.ExitCode, Stdout: r.Stdout, Stderr: r.Stderr, TimedOut: r.TimedOut, Truncated: r.Truncated}, err
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "read_file", Description: "Read a file of a sandbox (works while it sleeps). Text comes as is, other bytes as base64; at most 1 MiB is returned."},
		s.readFile)
	mcp.AddTool(srv, &mcp.Tool{Name: "write_file", Description: "Write a file in a sandbox (atomic; parent directories are made; works while it sleeps)."},
		func(ctx context.Context, req *mcp.CallToolRequest, in writeIn) (*mcp.CallToolResult, client.WriteResult, error) {
			var content io.Reader = strings.NewReader(in.Content)
			switch strings.ToLower(in.Encoding) {
			case "", "text", "utf-8", "utf8":
			case "base64":
				b, err := base64.StdEncoding.DecodeString(in.Content)
				if err != nil {
					return nil, client.WriteResult{}, fmt.Errorf("content is not valid base64: %w", err)
				}
				content = strings.NewReader(string(b))
			default:
				return nil, client.WriteResult{}, fmt.Errorf("encoding %q is not supported: use base64 or leave it out for text", in.Encoding)
			}
			wr, err := s.caller(req).WriteFile(ctx, in.SandboxID, in.Path, content, client.WriteOptions{Append: in.Append, Mode: in.Mode})
			return nil, wr, err
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "list_files", Description: "List a directory of a sandbox (works while it sleeps)."},
		func(ctx context.Context, req *mcp.CallToolRequest, in listIn) (*mcp.CallToolResult, listOut, error) {
			l, err := s.caller(req).ListFiles(ctx, in.SandboxID, in.Path, client.ListFilesOptions{Recursive: in.Recursive, Limit: 5000})
			out := listOut{Path: l.Path, Truncated: l.Truncated, Entries: make([]entryOut, len(l.Entries))}
			for i, e := range l.Entries {
				out.Entries[i] = entryOut{Path: e.Path, Type: e.Type, Size: e.Size}
			}
			return nil, out, err
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "preview_url", Description: "The URL where a sandbox's port is served, to open in a browser; with token, also a URL that opens a private port for a while."},
		func(ctx context.Context, req *mcp.CallToolRequest, in previewIn) (*mcp.CallToolResult, previewOut, error) {
			return s.previewURL(ctx, req, in)
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "run_task", Description: "Ask a coding agent (opencode or claude) to do something in a sandbox and wait until it ends; progress notifications follow its steps."},
		func(ctx context.Context, req *mcp.CallToolRequest, in taskIn) (*mcp.CallToolResult, taskOut, error) {
			return s.runTask(ctx, req, in)
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "stop_sandbox", Description: "Stop a sandbox to free its memory; its files stay, and its next use starts it again."},
		func(ctx context.Context, req *mcp.CallToolRequest, in idIn) (*mcp.CallToolResult, sandboxOut, error) {
			sb, err := s.caller(req).Stop(ctx, in.SandboxID)
			return nil, outOf(sb), err
		})
}

// caller is the admin API as the caller of req.
func (s *Server) caller(req *mcp.CallToolRequest) *client.Client {
	if req.Extra == nil {
		return s.apiFor(nil)
	}
	return s.apiFor(req.Extra.Header)
}

func (s *Server) readFile(ctx context.Context, req *mcp.CallToolRequest, in pathIn) (*mcp.CallToolResult, readOut, error) {
	f, err := s.caller(req).ReadFile(ctx, in.SandboxID, in.Path)
	if err != nil {
		return nil, readOut{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, s.maxFile()+1))
	if err != nil {
		return nil, readOut{}, fmt.Errorf("read %s: %w", in.Path, err)
	}
	out := readOut{Path: in.Path, Size: f.Size, Truncated: int64(len(b)) > s.maxFile()}
	if out.Truncated {
		b = b[:s.maxFile()]
		// Text cut inside a character is still text: cut before that character.
		for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
			if utf8.RuneStart(b[len(b)-i]) {
				if !utf8.FullRune(b[len(b)-i:]) {
					b = b[:len(b)-i]
				}
				break
			}
		}
	}
	if out.Size < 0 {
		out.Size = int64(len(b))
	}
	if utf8.Valid(b) {
		out.Content, out.Encoding = string(b), "utf-8"
	} else {
		out.Content, out.Encoding = base64.StdEncoding.EncodeToString(b), "base64"
	}
	return nil, out, nil
}

func (s *Server) previewURL(ctx context.Context, req *mcp.CallToolRequest, in previewIn) (*mcp.CallToolResult, previewOut, error) {
	api := s.caller(req)
	sb, err := api.Get(ctx, in.SandboxID)
	if err != nil {
		return nil, previewOut{}, err
	}
	u := sb.PreviewURL(in.Port)
	if u == "" {
		return nil, previewOut{}, fmt.Errorf("sandbox %s does not declare port %d; its ports are %v (declare ports when creating it)", sb.ID, in.Port, sb.Ports)
	}
	out := previewOut{URL: u}
	if in.Token {
		pt, err := api.PreviewToken(ctx, sb.ID, in.Port, time.Duration(in.TTLSeconds)*time.Second)
		if errors.Is(err, client.ErrNoRoute) {
			return nil, out, errors.New("this sandboxd has no preview tokens: its previews are public, open " + u)
		}
		if err != nil {
			return nil, previewOut{}, err
		}
		out.TokenURL, out.ExpiresAt = pt.URL, pt.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return nil, out, nil
}

// runTask starts the task and follows its events to the end, each one a progress
// notification when the caller asked for progress. A call the client cancels cancels the
// task: nobody is left to read its result.
func (s *Server) runTask(ctx context.Context, req *mcp.CallToolRequest, in taskIn) (*mcp.CallToolResult, taskOut, error) {
	api := s.caller(req)
	tr := client.TaskRequest{Prompt: in.Prompt, Agent: in.Agent, Model: in.Model, Env: in.Env}
	if in.TimeoutSeconds > 0 {
		tr.Timeout = strconv.Itoa(in.TimeoutSeconds) + "s"
	}
	t, err := api.StartTask(ctx, in.SandboxID, tr)
	if err != nil {
		return nil, taskOut{}, err
	}
	token := req.Params.GetProgressToken()
	n := 0
	err = api.TaskEvents(ctx, in.SandboxID, t.ID, 0, func(ev client.TaskEvent) error {
		n++
		if token == nil || req.Session == nil {
			return nil
		}
		msg := progressMessage(ev)
		if msg == "" {
			return nil
		}
		// A notification that cannot be sent (the client went away) does not end the task.
		req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: float64(n), Message: msg})
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			api.CancelTask(cctx, in.SandboxID, t.ID)
			cancel()
		}
		return nil, taskOut{TaskID: t.ID}, err
	}
	got, err := api.Task(ctx, in.SandboxID, t.ID)
	if err != nil {
		return nil, taskOut{TaskID: t.ID}, err
	}
	out := taskOut{TaskID: got.ID, Status: got.Status, FailureReason: got.FailureReason, Error: got.Error, FinalMessage: got.FinalMessage,
		FilesChanged: got.FilesChanged, DurationMS: got.DurationMS, InputTokens: got.Usage.InputTokens, OutputTokens: got.Usage.OutputTokens}
	if out.FilesChanged == nil {
		out.FilesChanged = []client.FileChange{}
	}
	if got.Status != "succeeded" {
		// The model hears the failure as the tool's error, with what the agent said.
		return nil, out, fmt.Errorf("task %s %s: %s %s", got.ID, got.Status, got.FailureReason, got.Error)
	}
	return nil, out, nil
}

// progressMessage is one line for an event, or "" for events that say nothing to a person.
func progressMessage(ev client.TaskEvent) string {
	if ev.Type == "done" {
		return "done"
	}
	a, err := ev.Agent()
	if err != nil {
		return ""
	}
	clip := func(s string) string {
		if r := []rune(s); len(r) > 200 {
			return string(r[:199]) + "…"
		}
		return s
	}
	switch ev.Type {
	case "message":
		return clip(a.Text)
	case "tool":
		return strings.TrimSpace("tool " + a.Tool + " " + a.Input + " " + a.Status)
	case "file_changed":
		return "changed " + a.Path
	case "error":
		return "error: " + clip(a.Text)
	case "status":
		return strings.TrimSpace(a.Phase + " " + clip(a.Text))
	}
	return ""
}
