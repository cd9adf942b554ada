package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "list staged project versions: complete or not, ownership, which bundle installed them",
		UsageText: "ccmirror status [--root DIR] [--json]\n\nexample: ccmirror status --json",
		Flags: []cli.Flag{
			rootFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usagef("status: takes no arguments (see 'ccmirror status --help')")
			}
			root := c.String("root")
			if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
				return fmt.Errorf("status: root %s does not exist or is not a folder (is CycleCloud installed here? pass --root)", root)
			}
			rep, err := staging.Status(root)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return staging.WriteJSON(e.stdout, rep)
			}
			return rep.WriteText(e.stdout)
		},
	}
}
