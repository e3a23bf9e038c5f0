package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/spf13/cobra"
)

// preview and version.

type previewJSON struct {
	Port      int        `json:"port"`
	URL       string     `json:"url"`
	TokenURL  string     `json:"token_url,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (c *cli) previewCmd() *cobra.Command {
	var token bool
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "preview ID [PORT]",
		Short: "Print a sandbox's preview URLs; --token adds a URL that opens a private port",
		Long: `Print the preview URL of each declared port, or of PORT.

With --token (PORT required) it also mints a preview token and prints a URL carrying it,
which opens a private port's preview in a browser until it expires (--ttl).`,
		Args:              rangeArgs(1, 2, "ID", "PORT"),
		ValidArgsFunction: c.firstID,
		RunE: func(cmd *cobra.Command, args []string) error {
			port := 0
			if len(args) == 2 {
				p, err := strconv.Atoi(args[1])
				if err != nil || p < 1 || p > 65535 {
					return usagef("PORT must be a number from 1 to 65535; got %q", args[1])
				}
				port = p
			}
			if token && port == 0 {
				return usagef("--token needs the PORT to open")
			}
			sb, err := c.client.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			ports := slices.Clone(sb.Ports)
			slices.Sort(ports)
			if port != 0 {
				if !slices.Contains(ports, port) {
					return fmt.Errorf("sandbox %s does not declare port %d (its ports: %s); declare it when creating the sandbox", sb.ID, port, orNone(ints(ports)))
				}
				ports = []int{port}
			}
			var out []previewJSON
			for _, p := range ports {
				out = append(out, previewJSON{Port: p, URL: sb.PreviewURL(p)})
			}
			if token {
				pt, err := c.client.PreviewToken(cmd.Context(), sb.ID, port, ttl)
				if errors.Is(err, client.ErrNoRoute) {
					return fmt.Errorf("this sandboxd has no preview tokens (it has no route POST /v1/sandboxes/{id}/preview-tokens): its previews are public, open %s", out[0].URL)
				}
				if err != nil {
					return err
				}
				out[0].TokenURL, out[0].ExpiresAt = pt.URL, &pt.ExpiresAt
			}
			if c.json {
				if out == nil {
					out = []previewJSON{}
				}
				if port != 0 {
					return printJSON(c.env.stdout, out[0])
				}
				return printJSON(c.env.stdout, out)
			}
			if len(out) == 0 {
				_, err := fmt.Fprintf(c.env.stdout, "sandbox %s declares no ports: create it with --port to preview one\n", sb.ID)
				return err
			}
			for _, p := range out {
				fmt.Fprintln(c.env.stdout, p.URL)
				if p.TokenURL != "" {
					fmt.Fprintf(c.env.stdout, "%s (opens the private port until %s)\n", p.TokenURL, p.ExpiresAt.UTC().Format(time.RFC3339))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&token, "token", false, "also print a URL with a preview token, for a private port")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the token URL works (default: the server's)")
	return cmd
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version and the server's",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, err := c.client.ServerVersion(cmd.Context())
			if c.json {
				v := map[string]string{"client": buildVersion()}
				if err == nil {
					v["server"] = server
				}
				printJSON(c.env.stdout, v)
			} else {
				fmt.Fprintln(c.env.stdout, "client:", buildVersion())
				if err == nil {
					fmt.Fprintln(c.env.stdout, "server:", server)
				}
			}
			if err != nil {
				return fmt.Errorf("server %s: %w", c.client.BaseURL(), err)
			}
			return nil
		},
	}
}
