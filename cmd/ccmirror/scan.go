package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/scan"
)

// scanOptions is everything `ccmirror scan` takes.
type scanOptions struct {
	Args   []string   // BUNDLE... or, with Root, NAME[@VERSION]...
	Trust  trustFlags // only --allowed-signers: optional, checks the bundles' signatures
	Root   string     // scan the staging tree under this root instead of bundles
	JSON   bool
	Strict bool
}

func scanCommand(e *env) *cli.Command {
	o := &scanOptions{}
	return &cli.Command{
		Name:  "scan",
		Usage: "list what a project's nodes will still reach at boot (URLs, package repos, pip, containers, git, blobs)",
		UsageText: "ccmirror scan [--json] [--strict] [--allowed-signers FILE] BUNDLE...\n" +
			"   ccmirror scan --root DIR [--json] [--strict] [NAME[@VERSION]...]\n\n" +
			"example: ccmirror scan slurm-4.0.9.tar",
		Description: "Reads every node-side file (specs/*/cluster-init/**, specs/*/chef/**) and the scripts inside\n" +
			"tar, tar.gz, tgz and zip blobs, and lists each URL, OS package or repository, pip package,\n" +
			"container image, git clone and jetpack download, with whether the bundle (or the staging\n" +
			"tree) satisfies it, plus the projects the cluster templates include.\n" +
			"--allowed-signers checks each bundle's signature first; without it the report says the bundle\n" +
			"is unverified (hashes are still checked). A staging tree (--root) has no signature to check.\n" +
			"Exit 0 after a scan; with --strict, 1 when anything is unsatisfied or the scan is incomplete.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print the report as JSON on stdout"},
			&cli.BoolFlag{Name: "strict", Destination: &o.Strict, Usage: "exit 1 when any need is unsatisfied or the scan is incomplete (for pipelines)"},
			allowedSignersFlag(&o.Trust.AllowedSigners),
			&cli.StringFlag{Name: "root", Destination: &o.Root,
				Usage: "scan what is staged under `DIR`/work/staging/projects instead of bundles"},
		},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runScan(c.Context, e, o)
		},
	}
}

// runScan scans the bundles or the staging tree o names and prints the
// report. Without --allowed-signers a bundle's signature is not checked
// (its hashes are) and the report says it is unverified.
func runScan(ctx context.Context, e *env, o *scanOptions) error {
	var rep *scan.Report
	var err error
	switch {
	case o.Root != "":
		// --allowed-signers (often set for install through
		// CCMIRROR_ALLOWED_SIGNERS) does not apply: a staging tree has no
		// signature. Its bad-input errors are errclass.ErrUsage (exit 2).
		rep, err = scan.ScanRoot(ctx, o.Root, scan.RootOptions{Filters: o.Args})
	case len(o.Args) == 0:
		return usagef("scan: name at least one BUNDLE, or --root DIR (see 'ccmirror scan --help')")
	default:
		rep, err = scanBundles(ctx, e, o)
	}
	if err != nil {
		return err
	}
	if o.JSON {
		// The JSON contract has no room for these; say them on stderr.
		for _, in := range rep.Inputs {
			fmt.Fprintf(e.stderr, "scan: %s: %s\n", in.Name, in.Trust)
		}
		for _, p := range rep.Projects {
			for _, n := range p.Notes {
				fmt.Fprintf(e.stderr, "scan: %s %s: note: %s\n", p.Name, p.Version, n)
			}
		}
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteText(e.stdout)
	}
	if err != nil {
		return fmt.Errorf("scan: write report: %w", err)
	}
	if o.Strict {
		n := rep.Unsatisfied()
		switch {
		case n > 0:
			return fmt.Errorf("scan: %d unsatisfied (--strict): the nodes would reach outside the bundle or miss a blob at boot", n)
		case rep.Incomplete():
			return errors.New("scan: the scan is incomplete (--strict): see the notes")
		}
	}
	return nil
}

// scanBundles scans every bundle named in o.Args into one report.
func scanBundles(ctx context.Context, e *env, o *scanOptions) (*scan.Report, error) {
	vo, err := o.Trust.loadOptional()
	if err != nil {
		return nil, err
	}
	all := &scan.Report{}
	for _, arg := range o.Args {
		if st, err := os.Stat(arg); err == nil && st.IsDir() {
			return nil, usagef("scan: %s is a folder; to scan a staging tree pass --root %s", arg, arg)
		}
		b, err := openBundle(ctx, e, arg, vo, true)
		if err != nil {
			return nil, wrapOnce("scan", arg, err)
		}
		// ScanBundle's errors name the bundle.
		rep, err := scan.ScanBundle(ctx, b, scan.BundleOptions{Name: arg, Allowed: vo.Allowed})
		if err = b.Finish(err); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		all.Projects = append(all.Projects, rep.Projects...)
		all.Inputs = append(all.Inputs, rep.Inputs...)
	}
	return all, nil
}
