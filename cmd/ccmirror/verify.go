package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
)

func verifyCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a bundle's signature and every hash in one streaming pass",
		UsageText: "ccmirror verify --allowed-signers FILE BUNDLE\n\nexample: ccmirror verify --allowed-signers /etc/ccmirror/allowed_signers slurm-2.5.0.tar",
		Description: "BUNDLE may be a file, the first part (.001) or part list (.parts) of a split bundle, or a blob URL.\n" +
			"Unsigned or badly signed bundles fail (exit 4), unless --insecure-skip-signature (hashes only, labs).",
		Flags: []cli.Flag{
			allowedSignersFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout"},
			&cli.BoolFlag{Name: "insecure-skip-signature", Usage: "DANGEROUS, labs only: check only the hashes of an unsigned or untrusted bundle"},
		},
		Action: func(c *cli.Context) error {
			arg, err := oneArg(c, "BUNDLE")
			if err != nil {
				return err
			}
			insecure := c.Bool("insecure-skip-signature")
			if c.String("allowed-signers") == "" && !insecure {
				return usagef("verify: --allowed-signers FILE (or CCMIRROR_ALLOWED_SIGNERS) is required")
			}
			o, err := trustOptions(c.String("allowed-signers"), insecure)
			if err != nil {
				return err
			}
			if insecure {
				fmt.Fprintln(e.stderr, "WARNING: --insecure-skip-signature: the bundle's signature is NOT checked; anyone could have made it")
			}
			r, err := openBundle(c.Context, arg, o)
			if err != nil {
				return fmt.Errorf("verify %s: %w", arg, err)
			}
			rep, err := staging.Verify(c.Context, r, o)
			if err = finishBundle(arg, r, err); err != nil {
				return fmt.Errorf("verify %s: %w", arg, err)
			}
			if c.Bool("json") {
				return staging.WriteJSON(e.stdout, rep)
			}
			fmt.Fprintf(e.stdout, "%s: OK\n", arg)
			return rep.WriteText(e.stdout)
		},
	}
}
