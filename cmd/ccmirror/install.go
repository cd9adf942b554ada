package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/scan"
	"github.com/ccmirror/ccmirror/staging"
)

// installOptions is everything `ccmirror install` takes.
type installOptions struct {
	Args  []string
	Trust trustFlags
	JSON  bool
	Quiet bool
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
			"first part or part list, or an Azure blob URL.\n\n" +
			"The staging tree belongs to cycle_server and is treated as hostile: every folder on the way is opened on a\n" +
			"handle without following symlinks, and a symlink where a folder belongs is refused. ccmirror's own lock,\n" +
			"journals, temporary folders and records live in the state folder, which only root may write (and every\n" +
			"parent of it); a state folder anyone else can change is refused. Modes are policy: blobs 0644, files 0755\n" +
			"or 0644, folders 0755, whatever the bundle's tar headers say.",
		Flags: append(o.Trust.flags("DANGEROUS, labs only: accept unsigned or untrusted bundles (hashes are still checked)"),
			rootFlag(&o.Root),
			stateDirFlag(&o.StateDir),
			&cli.StringFlag{Name: "owner", Value: staging.DefaultOwner, Destination: &o.Owner, Usage: "`USER:GROUP` (names or numeric ids) of everything installed"},
			&cli.StringFlag{Name: "builder", Value: "auto", Destination: &o.Builder, Usage: "`BUILDER`: auto (cyclecloud when on PATH, else native), cyclecloud or native"},
			&cli.BoolFlag{Name: "dry-run", Destination: &o.DryRun, Usage: "print the exact plan and change nothing"},
			&cli.BoolFlag{Name: "force", Destination: &o.Force, Usage: "replace staged content that differs from the bundle"},
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print the report as JSON on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Destination: &o.Quiet, Usage: "print only warnings and errors"},
			&cli.DurationFlag{Name: "lock-wait", Value: staging.DefaultLockWait, Destination: &o.LockWait, Usage: "`DURATION` to wait for another ccmirror holding the staging lock (e.g. 30s, 5m)"},
			timeoutFlag(&o.BuildTimeout, "each `cyclecloud project build`"),
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
	var ready []readiness
	if err == nil && rep != nil && !rep.DryRun {
		ready = installReadiness(ctx, e, rep)
	}
	if o.JSON && rep != nil {
		if jerr := staging.WriteJSON(e.stdout, struct {
			*staging.InstallReport
			Readiness []readiness `json:"readiness"`
		}{rep, nonNil(ready)}); err == nil {
			err = jerr
		}
	} else if rep != nil && (err == nil || rep.DryRun) && !o.Quiet {
		// Under --quiet the warnings still print: install logs them.
		e.writeReport(rep.WriteText)
		printReadiness(e, ready)
	}
	if err != nil {
		return fmt.Errorf("install %s: %w", arg, err)
	}
	return nil
}

// installReadiness scans what the install just staged (scan.ScanRoot on
// the installed project versions: their node-side files and archive blobs
// in the staging tree, read safely; the bundle is not read again), so a
// blob the server already held counts as present. A failed scan is a
// warning: the install itself succeeded.
func installReadiness(ctx context.Context, e *env, rep *staging.InstallReport) []readiness {
	var filters []string
	for _, p := range rep.Projects {
		filters = append(filters, p.Name+"@"+p.Version)
	}
	if len(filters) == 0 {
		return nil
	}
	sr, err := scan.ScanRoot(ctx, rep.Root, scan.RootOptions{Filters: filters})
	if err != nil {
		e.warn(fmt.Sprintf("readiness scan of what was staged failed (%v); run ccmirror scan --root %s", err, rep.Root))
		return nil
	}
	return readinessOf(sr, "ccmirror scan --root "+rep.Root+" "+strings.Join(filters, " "))
}
