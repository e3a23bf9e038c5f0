package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/spf13/cobra"
)

// task run|ls|get|cancel: coding agents in a sandbox.

func (c *cli) taskCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Run coding agents in a sandbox and follow them",
	}
	cmd.AddCommand(c.taskRunCmd(), c.taskLsCmd(), c.taskGetCmd(), c.taskCancelCmd())
	return cmd
}

func (c *cli) taskRunCmd() *cobra.Command {
	var req client.TaskRequest
	var env []string
	var timeout time.Duration
	var follow bool
	cmd := &cobra.Command{
		Use:   "run ID PROMPT...",
		Short: "Start an agent on a prompt; --follow shows its progress and exits non-zero if it fails",
		Example: `  sandboxd task run demo --agent claude -e ANTHROPIC_API_KEY=$KEY --follow \
      "create a Vite app that shows a todo list and run it on port 3000"`,
		Args:              rangeArgs(2, -1, "ID", "PROMPT"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if req.Env, err = keyValues("env", env); err != nil {
				return err
			}
			if timeout > 0 {
				req.Timeout = timeout.String()
			}
			req.Prompt = strings.Join(args[1:], " ")
			t, err := c.client.StartTask(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if !follow {
				if c.json {
					return printJSON(c.env.stdout, t)
				}
				_, err := fmt.Fprintf(c.env.stdout, "started task %s (%s) in %s\n", t.ID, t.Agent, args[0])
				return err
			}
			if !c.json {
				fmt.Fprintf(c.env.stdout, "task %s (%s) in %s\n", t.ID, t.Agent, args[0])
			}
			return c.followTask(cmd.Context(), args[0], t.ID)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Agent, "agent", "", "opencode (default) or claude")
	f.StringVar(&req.Model, "model", "", "the agent's model")
	f.DurationVar(&timeout, "timeout", 0, "cancel the task after this long (default: the server's)")
	f.StringArrayVarP(&env, "env", "e", nil, "environment variable for the agent KEY=VALUE, like a provider key (repeatable)")
	f.BoolVarP(&follow, "follow", "f", false, "show the agent's events live; exit 1 if the task fails")
	return cmd
}

// followTask prints the task's events as they come and fails when the task does.
func (c *cli) followTask(ctx context.Context, id, taskID string) error {
	var result client.Task
	err := c.client.TaskEvents(ctx, id, taskID, 0, func(ev client.TaskEvent) error {
		if ev.Type == "done" {
			json.Unmarshal(ev.Data, &result)
		}
		if c.json {
			return printEventJSON(c.env.stdout, ev)
		}
		return c.printEvent(ev)
	})
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(c.env.stderr, "\nsandboxd: stopped following; the task goes on (sandboxd task cancel %s %s ends it)\n", id, taskID)
		return err
	}
	if err != nil {
		return err
	}
	if result.Status == "" {
		// The stream ended without its done event (it was resumed past it): ask.
		if result, err = c.client.Task(ctx, id, taskID); err != nil {
			return err
		}
	}
	if result.Status == "succeeded" {
		return nil
	}
	msg := "task " + taskID + " " + result.Status
	if result.FailureReason != "" {
		msg += ": " + result.FailureReason
	}
	if result.Error != "" {
		msg += ": " + result.Error
	}
	fmt.Fprintln(c.env.stderr, "sandboxd:", flatten(msg))
	return exitError{1}
}

func printEventJSON(w io.Writer, ev client.TaskEvent) error {
	b, err := json.Marshal(map[string]any{"seq": ev.Seq, "type": ev.Type, "data": ev.Data})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// printEvent writes one event as a line for people.
func (c *cli) printEvent(ev client.TaskEvent) error {
	w := c.env.stdout
	if ev.Type == "done" {
		var r client.Task
		json.Unmarshal(ev.Data, &r)
		line := "done: " + r.Status
		if r.FailureReason != "" {
			line += " (" + strings.TrimSuffix(r.FailureReason+", "+r.FailureKind, ", ") + ")"
		}
		line += " in " + millis(r.DurationMS)
		if len(r.FilesChanged) > 0 {
			line += fmt.Sprintf(", %d files changed", len(r.FilesChanged))
		}
		_, err := fmt.Fprintln(w, line)
		return err
	}
	a, err := ev.Agent()
	if err != nil {
		return nil // not ours to judge: show what can be shown
	}
	var line string
	switch ev.Type {
	case "status":
		line = "status: " + strings.TrimSpace(a.Phase+" "+a.Text)
		if a.Phase != "" && strings.HasPrefix(a.Text, a.Phase) {
			line = "status: " + a.Text // the detail names its phase already
		}
	case "message":
		role := a.Role
		if role == "" {
			role = "assistant"
		}
		line = role + ": " + a.Text
	case "tool":
		line = strings.TrimSpace("tool: " + a.Tool + " " + a.Input)
		if a.Status != "" {
			line += " (" + a.Status + ")"
		}
		if a.Status == "error" && a.Text != "" {
			line += ": " + a.Text
		}
	case "file_changed":
		line = "file changed: " + a.Path
	case "subagent_started", "subagent_progress", "subagent_finished":
		line = strings.TrimSpace(strings.TrimPrefix(ev.Type, "subagent_") + " " + a.Status + ": " + a.Text)
	case "permission_denied":
		line = strings.TrimSpace("denied: " + a.Tool + " " + a.Input + ": " + a.Text)
	case "warning":
		line = "warning" + parens(a.Reason) + ": " + a.Text
	case "log":
		line = "log: " + a.Text
	case "usage":
		if a.Usage == nil {
			return nil
		}
		line = fmt.Sprintf("tokens: %d in, %d out", a.Usage.InputTokens, a.Usage.OutputTokens)
		if a.Usage.CostUSD > 0 {
			line += fmt.Sprintf(", $%.4f", a.Usage.CostUSD)
		}
	case "error":
		line = "error" + parens(a.Reason) + ": " + a.Text
	default:
		return nil // raw: the CLI's own lines, for --json readers
	}
	if a.Subagent != nil { // a subagent's work, indented under its name
		name := a.Subagent.Type
		if name == "" {
			name = "subagent"
		}
		line = "  [" + name + "] " + line
	}
	_, err = fmt.Fprintln(w, strings.TrimRight(line, "\n"))
	return err
}

func (c *cli) taskLsCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "ls ID",
		Short:             "List a sandbox's tasks",
		Args:              exactArgs("ID"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			list, err := c.client.Tasks(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json {
				if list == nil {
					list = []client.Task{}
				}
				return printJSON(c.env.stdout, list)
			}
			t := newTable(c.env.stdout, "ID", "STATUS", "AGENT", "CREATED", "DURATION", "PROMPT")
			now := c.now()
			for _, tk := range list {
				t.row(tk.ID, tk.Status, tk.Agent, ago(tk.CreatedAt, now), millis(tk.DurationMS), clip(tk.Prompt, 40))
			}
			return t.flush()
		},
	}
}

// clip shortens s to n runes on one line.
func clip(s string, n int) string {
	s = flatten(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (c *cli) taskGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "get ID TASK",
		Short:             "Show a task and its result",
		Args:              exactArgs("ID", "TASK"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := c.client.Task(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.env.stdout, t)
			}
			return c.printTask(t)
		},
	}
}

func (c *cli) printTask(t client.Task) error {
	now := c.now()
	f := newFields(c.env.stdout)
	f.add("id", t.ID)
	f.add("sandbox", t.SandboxID)
	f.add("agent", t.Agent)
	f.add("model", t.Model)
	f.add("status", t.Status)
	f.add("failure", t.FailureReason)
	f.add("error", t.Error)
	f.add("prompt", clip(t.Prompt, 200))
	f.add("created", stamp(t.CreatedAt, now))
	if t.FinishedAt != nil {
		f.add("finished", stamp(*t.FinishedAt, now))
	}
	f.add("duration", millis(t.DurationMS))
	if t.ExitCode != nil {
		f.add("exit code", fmt.Sprint(*t.ExitCode))
	}
	u := t.Usage
	if u.InputTokens+u.OutputTokens > 0 {
		line := fmt.Sprintf("%d in, %d out", u.InputTokens, u.OutputTokens)
		if u.CostUSD > 0 {
			line += fmt.Sprintf(", $%.4f", u.CostUSD)
		}
		f.add("tokens", line)
	}
	for _, fc := range t.FilesChanged {
		f.add("file "+fc.Change, fc.Path)
	}
	f.add("final message", clip(t.FinalMessage, 500))
	return f.flush()
}

func (c *cli) taskCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "cancel ID TASK",
		Short:             "Cancel a running task (its agent is killed)",
		Args:              exactArgs("ID", "TASK"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := c.client.CancelTask(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.env.stdout, t)
			}
			_, err = fmt.Fprintf(c.env.stdout, "task %s is %s\n", t.ID, t.Status)
			return err
		},
	}
}

// parens is " (s)", or "" for an empty s.
func parens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
