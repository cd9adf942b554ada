package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/staging"
)

// statusOptions is everything `ccmirror status` takes.
type statusOptions struct {
	Args     []string
	Root     string
	StateDir string
	Deep     bool
	JSON     bool
}

func statusCommand(e *env) *cli.Command {
	o := &statusOptions{}
	return &cli.Command{
		Name:  "status",
		Usage: "list staged project versions: complete or not, ownership, which bundle installed them",
		UsageText: "ccmirror status [--root DIR] [--state-dir DIR] [--deep] [--json]\n\n" +
			"Files unchanged since a status that hashed them (same device, inode, size, mtime and ctime, remembered\n" +
			"in the state folder) are not read again; --deep re-hashes everything.\n\n" +
			"Exits 4 when any version has a problem, a version folder has no project.ini, or an install was\n" +
			"interrupted (the report is printed, --json included, all the same); 0 when all is well.\n\n" +
			"example: ccmirror status --json",
		Flags: []cli.Flag{
			rootFlag(&o.Root),
			stateDirFlag(&o.StateDir),
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout", Destination: &o.JSON},
			&cli.BoolFlag{Name: "deep", Usage: "re-hash every staged file instead of trusting the hash cache", Destination: &o.Deep},
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
	rep, err := staging.StatusWith(staging.StatusOptions{Root: o.Root, StateDir: o.StateDir, Deep: o.Deep})
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if o.JSON {
		err = staging.WriteJSON(e.stdout, rep)
	} else {
		err = e.writeReport(rep.WriteText)
	}
	if err != nil {
		return err
	}
	if t := rep.Trouble(); t != "" {
		return fmt.Errorf("status: %s: %w", t, errStatusTrouble)
	}
	return nil
}

// errStatusTrouble marks a status run that found something staged
// incomplete, wrong or half-installed: exit 4, as a failed check.
var errStatusTrouble = fmt.Errorf("staged content failed its check: %w", errclass.ErrVerify)
