package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

// statusOptions is everything `ccmirror status` takes.
type statusOptions struct {
	Args []string
	Root string
	JSON bool
}

func statusCommand(e *env) *cli.Command {
	o := &statusOptions{}
	return &cli.Command{
		Name:      "status",
		Usage:     "list staged project versions: complete or not, ownership, which bundle installed them",
		UsageText: "ccmirror status [--root DIR] [--json]\n\nexample: ccmirror status --json",
		Flags: []cli.Flag{
			rootFlag(&o.Root),
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout", Destination: &o.JSON},
		},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runStatus(c.Context, e, o)
		},
	}
}

func runStatus(_ context.Context, e *env, o *statusOptions) error {
	if len(o.Args) != 0 {
		return usagef("status: takes no arguments (see 'ccmirror status --help')")
	}
	rep, err := staging.Status(o.Root)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if o.JSON {
		return staging.WriteJSON(e.stdout, rep)
	}
	return rep.WriteText(e.stdout)
}
