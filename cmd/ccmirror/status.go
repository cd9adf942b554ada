package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "list staged project versions: complete or not, ownership, which bundle installed them",
		UsageText: "ccmirror status [--root DIR] [--state-dir DIR] [--json]\n\nexample: ccmirror status --json",
		Flags: []cli.Flag{
			rootFlag(),
			stateDirFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("status: takes no arguments (see 'ccmirror status --help')")
			}
			rep, err := staging.StatusWith(staging.StatusOptions{Root: c.String("root"), StateDir: c.String("state-dir")})
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			if c.Bool("json") {
				return staging.WriteJSON(e.stdout, rep)
			}
			return rep.WriteText(e.stdout)
		},
	}
}
