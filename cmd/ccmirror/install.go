package main

import (
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

// installOptions is everything `ccmirror install` takes.
type installOptions struct {
	Bundle         string
	AllowedSigners string
	Insecure       bool
	JSON           bool
	staging.InstallOptions
}

func installCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "install",
		Usage:     "verify a bundle and stage it for CycleCloud, atomically",
		UsageText: "ccmirror install --allowed-signers FILE [--root DIR] [--state-dir DIR] [--owner U:G] [--builder B] [--dry-run] [--force] [--json] BUNDLE\n\nexample: ccmirror install --allowed-signers /etc/ccmirror/allowed_signers slurm-2.5.0.tar",
		Description: "Stages ROOT/work/staging/projects/NAME/VERSION and NAME/blobs: blobs first, the version folder last,\n" +
			"owned by --owner. Nothing is written when any check fails. BUNDLE may be a file, a split bundle's\n" +
			"first part or part list, or an Azure blob URL.",
		Flags: []cli.Flag{
			allowedSignersFlag(),
			rootFlag(),
			stateDirFlag(),
			&cli.StringFlag{Name: "owner", Value: staging.DefaultOwner, Usage: "`USER:GROUP` (names or numeric ids) of everything installed"},
			&cli.StringFlag{Name: "builder", Value: "auto", Usage: "`BUILDER`: auto (cyclecloud when on PATH, else native), cyclecloud or native"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the exact plan and change nothing"},
			&cli.BoolFlag{Name: "force", Usage: "replace staged content that differs from the bundle"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout"},
			&cli.BoolFlag{Name: "insecure-skip-signature", Usage: "DANGEROUS, labs only: accept unsigned or untrusted bundles (hashes are still checked)"},
			&cli.DurationFlag{Name: "lock-wait", Value: staging.DefaultLockWait, Usage: "`DURATION` to wait for another ccmirror holding the staging lock (e.g. 30s, 5m)"},
		},
		Action: func(c *cli.Context) error {
			arg, err := oneArg(c, "BUNDLE")
			if err != nil {
				return err
			}
			o := &installOptions{
				Bundle:         arg,
				AllowedSigners: c.String("allowed-signers"),
				Insecure:       c.Bool("insecure-skip-signature"),
				JSON:           c.Bool("json"),
				InstallOptions: staging.InstallOptions{
					Root:     c.String("root"),
					StateDir: c.String("state-dir"),
					Owner:    c.String("owner"),
					Builder:  c.String("builder"),
					DryRun:   c.Bool("dry-run"),
					Force:    c.Bool("force"),
					LockWait: c.Duration("lock-wait"),
					Log:      e.logger(c, c.Bool("json")),
				},
			}
			return runInstall(c, e, o)
		},
	}
}

func runInstall(c *cli.Context, e *env, o *installOptions) error {
	switch o.Builder {
	case "auto", "cyclecloud", "native":
	default:
		return usagef("install: --builder must be auto, cyclecloud or native, not %q", o.Builder)
	}
	if o.AllowedSigners == "" && !o.Insecure {
		return usagef("install: --allowed-signers FILE (or CCMIRROR_ALLOWED_SIGNERS) is required")
	}
	if o.Insecure {
		fmt.Fprintln(e.stderr, "WARNING: --insecure-skip-signature: the bundle's signature is NOT checked; anyone could have made it")
	}
	vo, err := trustOptions(o.AllowedSigners, o.Insecure)
	if err != nil {
		return err
	}
	o.Verify = vo
	r, err := openBundle(c.Context, o.Bundle, vo)
	if err != nil {
		return fmt.Errorf("install %s: %w", o.Bundle, err)
	}
	rep, err := staging.Install(c.Context, r, filepath.Base(o.Bundle), o.InstallOptions)
	err = finishBundle(o.Bundle, r, err)
	if o.JSON && rep != nil {
		if jerr := staging.WriteJSON(e.stdout, rep); err == nil {
			err = jerr
		}
	} else if rep != nil && (err == nil || rep.DryRun) {
		rep.WriteText(e.stdout)
	}
	if err != nil {
		return fmt.Errorf("install %s: %w", o.Bundle, err)
	}
	return nil
}
