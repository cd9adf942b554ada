package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

func inspectCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show what a bundle holds, reading only its head (nothing is verified)",
		UsageText: "ccmirror inspect [--json] BUNDLE\n\nexample: ccmirror inspect slurm-2.5.0.tar",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout"},
		},
		Action: func(c *cli.Context) error {
			arg, err := oneArg(c, "BUNDLE")
			if err != nil {
				return err
			}
			// The head of a split bundle is in its first part; a part
			// list is not checked here, as inspect verifies nothing.
			r, err := openBundle(c.Context, arg, staging.VerifyOptions{InsecureSkipSignature: true})
			if err != nil {
				return fmt.Errorf("inspect %s: %w", arg, err)
			}
			defer r.Close()
			rep, err := staging.Inspect(r)
			if err != nil {
				return fmt.Errorf("inspect %s: %w", arg, err)
			}
			if c.Bool("json") {
				return staging.WriteJSON(e.stdout, rep)
			}
			return rep.WriteText(e.stdout)
		},
	}
}
