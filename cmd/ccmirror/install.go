package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

// installOptions is everything `ccmirror install` takes.
type installOptions struct {
	Args  []string
	Trust trustFlags
	JSON  bool
	staging.InstallOptions
}

func installCommand(e *env) *cli.Command {
	o := &installOptions{}
	return &cli.Command{
		Name:      "install",
		Usage:     "verify a bundle and stage it for CycleCloud, atomically",
		UsageText: "ccmirror install --allowed-signers FILE [--root DIR] [--state-dir DIR] [--owner U:G] [--builder B] [--dry-run] [--force] [--json] BUNDLE\n\nexample: ccmirror install --allowed-signers /etc/ccmirror/allowed_signers slurm-2.5.0.tar",
		Description: "Stages ROOT/work/staging/projects/NAME/VERSION and NAME/blobs: blobs first, the version folder last,\n" +
			"owned by --owner. Nothing is written when any check fails. BUNDLE may be a file, a split bundle's\n" +
			"first part or part list, or an Azure blob URL.",
		Flags: append(o.Trust.flags("DANGEROUS, labs only: accept unsigned or untrusted bundles (hashes are still checked)"),
			rootFlag(&o.Root),
			stateDirFlag(&o.StateDir),
			&cli.StringFlag{Name: "owner", Value: staging.DefaultOwner, Destination: &o.Owner, Usage: "`USER:GROUP` (names or numeric ids) of everything installed"},
			&cli.StringFlag{Name: "builder", Value: "auto", Destination: &o.Builder, Usage: "`BUILDER`: auto (cyclecloud when on PATH, else native), cyclecloud or native"},
			&cli.BoolFlag{Name: "dry-run", Destination: &o.DryRun, Usage: "print the exact plan and change nothing"},
			&cli.BoolFlag{Name: "force", Destination: &o.Force, Usage: "replace staged content that differs from the bundle"},
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print the report as JSON on stdout"},
			&cli.DurationFlag{Name: "lock-wait", Value: staging.DefaultLockWait, Destination: &o.LockWait, Usage: "`DURATION` to wait for another ccmirror holding the staging lock (e.g. 30s, 5m)"},
		),
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runInstall(c.Context, e, o)
		},
	}
}

func runInstall(ctx context.Context, e *env, o *installOptions) error {
	arg, err := oneArg("install", "BUNDLE", o.Args)
	if err != nil {
		return err
	}
	switch o.Builder {
	case "", staging.BuilderAuto, staging.BuilderCycleCloud, staging.BuilderNative: // "": auto
	default:
		return usagef("install: --builder must be auto, cyclecloud or native, not %q", o.Builder)
	}
	e.doing("install "+arg, "nothing half-staged is left; rerun install")
	if o.Verify, err = o.Trust.load("install", e); err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = e.logger(o.JSON)
	}
	if o.Notice == nil {
		o.Notice = e.notice
	}
	b, err := openBundle(ctx, e, arg, o.Verify, o.JSON)
	if err != nil {
		return fmt.Errorf("install %s: %w", arg, err)
	}
	rep, err := staging.Install(ctx, b, filepath.Base(arg), o.InstallOptions)
	err = b.Finish(err)
	if o.JSON && rep != nil {
		if jerr := staging.WriteJSON(e.stdout, rep); err == nil {
			err = jerr
		}
	} else if rep != nil && (err == nil || rep.DryRun) {
		e.writeReport(rep.WriteText)
	}
	if err != nil {
		return fmt.Errorf("install %s: %w", arg, err)
	}
	return nil
}
