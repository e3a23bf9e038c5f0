package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/admin/client"
	"github.com/spf13/cobra"
)

// Commands on existing sandboxes: rm, purge, start, stop, keepalive; and images.

// eachID runs op on every id and reports each; the first failure fails the command
// after the others were tried.
func (c *cli) eachID(ctx context.Context, ids []string, op func(ctx context.Context, id string) (any, string, error)) error {
	var results []any
	var firstErr error
	for _, id := range ids {
		v, line, err := op(ctx, id)
		if err != nil {
			if len(ids) > 1 {
				fmt.Fprintf(c.env.stderr, "sandboxd: %s: %s\n", id, flatten(err.Error()))
				if firstErr == nil {
					firstErr = exitError{1}
				}
				continue
			}
			return err
		}
		if c.json {
			results = append(results, v)
			continue
		}
		fmt.Fprintln(c.env.stdout, line)
	}
	if c.json {
		if len(ids) == 1 && len(results) == 1 {
			printJSON(c.env.stdout, results[0])
		} else if len(results) > 0 {
			printJSON(c.env.stdout, results)
		}
	}
	return firstErr
}

func (c *cli) rmCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "rm ID...",
		Aliases:           []string{"delete"},
		Short:             "Remove sandboxes (their workspaces stay; purge removes them)",
		Args:              rangeArgs(1, -1, "ID"),
		ValidArgsFunction: c.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachID(cmd.Context(), args, func(ctx context.Context, id string) (any, string, error) {
				err := c.client.Delete(ctx, id)
				return map[string]any{"deleted": true, "id": id}, "deleted " + id + " (its workspace stays: sandboxd purge " + id + " removes it)", err
			})
		},
	}
}

func (c *cli) purgeCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "purge ID...",
		Short:             "Remove sandboxes and their workspaces",
		Args:              rangeArgs(1, -1, "ID"),
		ValidArgsFunction: c.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachID(cmd.Context(), args, func(ctx context.Context, id string) (any, string, error) {
				err := c.client.Purge(ctx, id)
				return map[string]any{"purged": true, "id": id}, "purged " + id + " and its workspace", err
			})
		},
	}
}

func (c *cli) startCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "start ID...",
		Short:             "Start sandboxes and wait until they run",
		Args:              rangeArgs(1, -1, "ID"),
		ValidArgsFunction: c.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachID(cmd.Context(), args, func(ctx context.Context, id string) (any, string, error) {
				sb, err := c.client.Start(ctx, id)
				return sb, fmt.Sprintf("started %s in %s", id, millis(sb.WakeMS)), err
			})
		},
	}
}

func (c *cli) pauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "pause ID...",
		Short:             "Pause sandboxes: processes and memory kept, CPU freed (start or any use resumes them)",
		Args:              rangeArgs(1, -1, "ID"),
		ValidArgsFunction: c.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachID(cmd.Context(), args, func(ctx context.Context, id string) (any, string, error) {
				sb, err := c.client.Pause(ctx, id)
				return sb, "paused " + id, err
			})
		},
	}
}

func (c *cli) stopCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "stop ID...",
		Short:             "Stop sandboxes (their next use starts them again)",
		Args:              rangeArgs(1, -1, "ID"),
		ValidArgsFunction: c.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.eachID(cmd.Context(), args, func(ctx context.Context, id string) (any, string, error) {
				sb, err := c.client.Stop(ctx, id)
				return sb, "stopped " + id, err
			})
		},
	}
}

func (c *cli) keepaliveCmd() *cobra.Command {
	var d time.Duration
	cmd := &cobra.Command{
		Use:               "keepalive ID...",
		Short:             "Keep sandboxes awake (woken if stopped), now or --for a while",
		Args:              rangeArgs(1, -1, "ID"),
		ValidArgsFunction: c.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if d < 0 {
				return usagef("--for must be positive, like 1h; got %s", d)
			}
			return c.eachID(cmd.Context(), args, func(ctx context.Context, id string) (any, string, error) {
				sb, err := c.client.Keepalive(ctx, id, d)
				line := id + " is awake and marked active"
				if sb.KeepaliveUntil != nil {
					line = id + " is kept awake until " + stamp(*sb.KeepaliveUntil, c.now())
				}
				return sb, line, err
			})
		},
	}
	cmd.Flags().DurationVar(&d, "for", 0, "keep it awake this long, like 1h (at most 24h)")
	return cmd
}

func (c *cli) imagesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List the default image and the images sandboxes use, with their agents",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := c.client.Images(cmd.Context())
			if err != nil {
				return err
			}
			if c.json {
				if list == nil {
					list = []client.Image{}
				}
				return printJSON(c.env.stdout, list)
			}
			t := newTable(c.env.stdout, "IMAGE", "DEFAULT", "PRESENT", "AGENTS", "MISSING")
			for _, im := range list {
				agents, missing := strings.Join(im.Agents, ","), strings.Join(im.Missing, ",")
				if !im.AgentsKnown {
					agents, missing = "unknown", "unknown"
				}
				t.row(im.Image, yesNo(im.Default), yesNo(im.Present), agents, missing)
			}
			return t.flush()
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
