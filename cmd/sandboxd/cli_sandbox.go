package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/spf13/cobra"
)

// Commands that make and show sandboxes: ls, create, get (cli_lifecycle.go has the rest).

// completeIDs completes a sandbox id from the API's list (quietly nothing when the API
// cannot be reached: a completion never prints an error).
func (c *cli) completeIDs(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if c.client == nil && c.connect() != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	list, err := c.client.ListAll(ctx, client.ListOptions{Limit: 1000}, 1000)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, sb := range list {
		if strings.HasPrefix(sb.ID, toComplete) && !slices.Contains(args, sb.ID) {
			out = append(out, sb.ID+"\t"+sb.Status)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// firstID completes only the first argument with an id.
func (c *cli) firstID(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	return c.completeIDs(cmd, args, toComplete)
}

func (c *cli) lsCmd() *cobra.Command {
	var status string
	var labels []string
	var limit int
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List sandboxes",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := keyValues("label", labels)
			if err != nil {
				return err
			}
			list, err := c.client.ListAll(cmd.Context(), client.ListOptions{Status: status, Labels: l, Limit: min(max(limit, 1), 1000)}, limit)
			if err != nil {
				return err
			}
			if c.json {
				if list == nil {
					list = []client.Sandbox{}
				}
				return printJSON(c.env.stdout, list)
			}
			t := newTable(c.env.stdout, "ID", "STATUS", "IMAGE", "PORTS", "CREATED", "LAST ACTIVE")
			now := c.now()
			for _, sb := range list {
				t.row(sb.ID, sb.Status, sb.Image, ints(sb.Ports), ago(sb.CreatedAt, now), ago(sb.LastActiveAt, now))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only sandboxes in this state (running, stopped, ...)")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "only sandboxes with this label, KEY=VALUE (repeatable)")
	cmd.Flags().IntVar(&limit, "limit", 10000, "at most this many")
	return cmd
}

func (c *cli) createCmd() *cobra.Command {
	var req client.CreateRequest
	var file string
	var env, labels []string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "create [flags]",
		Short: "Create a sandbox",
		Example: `  sandboxd create --id demo --port 3000
  sandboxd create -f body.json      # the API's create body; flags override it
  ID=$(sandboxd create -q)`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			body := client.CreateRequest{}
			if file != "" {
				if err := readJSONFile(file, c.env.stdin, &body); err != nil {
					return err
				}
			}
			merge(&body, req, cmd)
			var err error
			if cmd.Flags().Changed("env") {
				if body.Env, err = keyValues("env", env); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("label") {
				if body.Labels, err = keyValues("label", labels); err != nil {
					return err
				}
			}
			sb, err := c.client.Create(cmd.Context(), body)
			if err != nil {
				return err
			}
			switch {
			case c.json:
				return printJSON(c.env.stdout, sb)
			case quiet:
				_, err := fmt.Fprintln(c.env.stdout, sb.ID)
				return err
			}
			return c.printSandbox(sb)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read the create body (JSON) from this file, - for stdin")
	f.StringVar(&req.ID, "id", "", "the sandbox's id (default: a new ULID)")
	f.StringVar(&req.Image, "image", "", "image (default: the server's)")
	f.IntSliceVarP(&req.Ports, "port", "p", nil, "port to preview (repeatable, or 3000,5173)")
	f.StringArrayVarP(&env, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringArrayVar(&labels, "label", nil, "label KEY=VALUE (repeatable)")
	f.StringVar(&req.Memory, "memory", "", `memory limit, like "2G"`)
	f.Float64Var(&req.CPUs, "cpus", 0, "CPUs, like 1.5")
	f.StringVar(&req.IdleTimeout, "idle-timeout", "", `pause after this long idle, like "30m"`)
	f.StringVar(&req.IdlePolicy, "idle-policy", "", "sleep or always_on")
	f.StringVar(&req.HostHeader, "host-header", "", "Host the app sees: preview or localhost")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the id")
	return cmd
}

// merge copies into dst the fields of src whose flags were given.
func merge(dst *client.CreateRequest, src client.CreateRequest, cmd *cobra.Command) {
	set := cmd.Flags().Changed
	if set("id") {
		dst.ID = src.ID
	}
	if set("image") {
		dst.Image = src.Image
	}
	if set("port") {
		dst.Ports = src.Ports
	}
	if set("memory") {
		dst.Memory = src.Memory
	}
	if set("cpus") {
		dst.CPUs = src.CPUs
	}
	if set("idle-timeout") {
		dst.IdleTimeout = src.IdleTimeout
	}
	if set("idle-policy") {
		dst.IdlePolicy = src.IdlePolicy
	}
	if set("host-header") {
		dst.HostHeader = src.HostHeader
	}
}

// readJSONFile decodes the JSON file name ("-" is stdin) into v, refusing unknown fields.
func readJSONFile(name string, stdin io.Reader, v any) error {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (c *cli) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "get ID",
		Aliases:           []string{"inspect"},
		Short:             "Show a sandbox",
		Args:              exactArgs("ID"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			sb, err := c.client.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(c.env.stdout, sb)
			}
			return c.printSandbox(sb)
		},
	}
}

// printSandbox shows a sandbox as "field: value" lines.
func (c *cli) printSandbox(sb client.Sandbox) error {
	now := c.now()
	f := newFields(c.env.stdout)
	f.add("id", sb.ID)
	f.add("status", sb.Status)
	f.add("error", sb.Error)
	f.add("image", sb.Image)
	ports := slices.Clone(sb.Ports)
	slices.Sort(ports)
	for _, p := range ports {
		f.add("preview "+strconv.Itoa(p), sb.PreviewURL(p))
	}
	for _, s := range sb.Services {
		line := strings.Join(s.Cmd, " ")
		if s.Port > 0 {
			line += " (port " + strconv.Itoa(s.Port) + ")"
		}
		f.add("service "+s.Name, line)
	}
	if len(sb.EnvKeys) > 0 {
		f.add("env", strings.Join(sb.EnvKeys, ", "))
	}
	keys := make([]string, 0, len(sb.Labels))
	for k := range sb.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f.add("label "+k, sb.Labels[k])
	}
	if sb.Memory > 0 {
		f.add("memory", humanBytes(sb.Memory))
	}
	if sb.CPUs > 0 {
		f.add("cpus", strconv.FormatFloat(sb.CPUs, 'f', -1, 64))
	}
	idle := sb.IdlePolicy
	if sb.IdleTimeout != "" {
		idle = "after " + sb.IdleTimeout + " (" + sb.IdlePolicy + ")"
	}
	f.add("idle", idle)
	f.add("ip", sb.IP)
	f.add("created", stamp(sb.CreatedAt, now))
	f.add("last active", stamp(sb.LastActiveAt, now))
	if sb.KeepaliveUntil != nil {
		f.add("kept awake until", stamp(*sb.KeepaliveUntil, now))
	}
	if sb.WakeMS > 0 {
		f.add("started in", millis(sb.WakeMS))
	}
	return f.flush()
}
