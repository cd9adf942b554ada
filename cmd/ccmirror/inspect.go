package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

// inspectOptions is everything `ccmirror inspect` takes.
type inspectOptions struct {
	Args []string
	JSON bool
}

func inspectCommand(e *env) *cli.Command {
	o := &inspectOptions{}
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show what a bundle holds, reading only its head (nothing is verified)",
		UsageText: "ccmirror inspect [--json] BUNDLE\n\nexample: ccmirror inspect slurm-2.5.0.tar",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout", Destination: &o.JSON},
		},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runInspect(c.Context, e, o)
		},
	}
}

func runInspect(ctx context.Context, e *env, o *inspectOptions) error {
	arg, err := oneArg("inspect", "BUNDLE", o.Args)
	if err != nil {
		return err
	}
	// The head of a split bundle is in its first part; a part list is not
	// checked here, as inspect verifies nothing.
	b, err := openBundle(ctx, e, arg, staging.VerifyOptions{InsecureSkipSignature: true}, true)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", arg, err)
	}
	defer b.Close()
	rep, err := staging.Inspect(b)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", arg, err)
	}
	if o.JSON {
		return staging.WriteJSON(e.stdout, rep)
	}
	return rep.WriteText(e.stdout)
}
