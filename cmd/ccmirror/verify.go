package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

// verifyOptions is everything `ccmirror verify` takes.
type verifyOptions struct {
	Args  []string
	Trust trustFlags
	JSON  bool
}

func verifyCommand(e *env) *cli.Command {
	o := &verifyOptions{}
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a bundle's signature and every hash in one streaming pass",
		UsageText: "ccmirror verify --allowed-signers FILE BUNDLE\n\nexample: ccmirror verify --allowed-signers /etc/ccmirror/allowed_signers slurm-2.5.0.tar",
		Description: "BUNDLE may be a file, the first part (.001) or part list (.parts) of a split bundle, or a blob URL.\n" +
			"Unsigned or badly signed bundles fail (exit 4), unless --insecure-skip-signature (hashes only, labs).",
		Flags: append(o.Trust.flags("DANGEROUS, labs only: check only the hashes of an unsigned or untrusted bundle"),
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout", Destination: &o.JSON}),
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runVerify(c.Context, e, o)
		},
	}
}

func runVerify(ctx context.Context, e *env, o *verifyOptions) error {
	arg, err := oneArg("verify", "BUNDLE", o.Args)
	if err != nil {
		return err
	}
	e.doing("verify "+arg, "rerun checks it again from the start")
	vo, err := o.Trust.load("verify", e)
	if err != nil {
		return err
	}
	b, err := openBundle(ctx, e, arg, vo, o.JSON)
	if err != nil {
		return fmt.Errorf("verify %s: %w", arg, err)
	}
	// A split bundle's reader proves each part against the signed list:
	// the bundle's sha256 comes from it, not from hashing every byte again.
	vo.BundleSHA256 = b.SHA256
	rep, err := staging.Verify(ctx, b, vo)
	if err = b.Finish(err); err != nil {
		return fmt.Errorf("verify %s: %w", arg, err)
	}
	if o.JSON {
		return staging.WriteJSON(e.stdout, rep)
	}
	fmt.Fprintf(e.stdout, "%s: OK\n", arg)
	return e.writeReport(rep.WriteText)
}
