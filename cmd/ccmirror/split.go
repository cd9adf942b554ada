package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/split"
)

func splitCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "split",
		Usage:     "cut a bundle into numbered parts plus a signed part list, for removable media",
		UsageText: "ccmirror split --size 4095M --sign-key FILE BUNDLE\n\nexample: ccmirror split --size 4095M --sign-key ~/.ssh/ccmirror slurm-2.5.0.tar",
		Description: "Writes BUNDLE.001, BUNDLE.002, … and BUNDLE.parts (+ .sig). 'cat BUNDLE.0*' is the original bundle;\n" +
			"install and verify take BUNDLE.001 or BUNDLE.parts directly. FAT32 holds at most 4095M per file.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "size", Value: "4095M", Usage: "part `SIZE` (K, M, G, T are powers of 1024)"},
			&cli.StringFlag{Name: "sign-key", EnvVars: []string{"CCMIRROR_SIGN_KEY"}, Usage: "OpenSSH private key `FILE` to sign the part list with"},
			&cli.BoolFlag{Name: "unsigned", Usage: "write an unsigned part list"},
			&cli.StringFlag{Name: "dir", Usage: "output `DIR` (default: beside the bundle)"},
		},
		Action: func(c *cli.Context) error {
			arg, err := oneArg(c, "BUNDLE")
			if err != nil {
				return err
			}
			size, err := split.ParseSize(c.String("size"))
			if err != nil {
				return usagef("split: --size: %v", err)
			}
			if err := checkBundleHead(arg); err != nil {
				return wrapOnce("split", arg, err)
			}
			dir, what := c.String("dir"), "--dir"
			if dir == "" {
				dir, what = filepath.Dir(arg), "the bundle's directory"
			}
			if err := checkDir("split", what, dir); err != nil {
				return err
			}
			signer, err := loadSigner(c.String("sign-key"), c.Bool("unsigned"), "split")
			if err != nil {
				return err
			}
			l, err := split.Split(c.Context, arg, c.String("dir"), size, signer)
			if err != nil {
				return wrapOnce("split", arg, err)
			}
			for _, p := range l.Parts {
				fmt.Fprintf(e.stdout, "%s  %s  %s\n", p.SHA256, p.Name, humanBytes(p.Size))
			}
			fmt.Fprintf(e.stdout, "%d parts and %s written\n", l.Count, split.ListName(l.Bundle))
			return nil
		},
	}
}

func joinCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "join",
		Usage:     "check and join a split bundle's parts back into one file",
		UsageText: "ccmirror join --allowed-signers FILE BUNDLE.parts -o BUNDLE\n\nexample: ccmirror join --allowed-signers /etc/ccmirror/allowed_signers slurm-2.5.0.tar.001 -o slurm-2.5.0.tar",
		Flags: []cli.Flag{
			allowedSignersFlag(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle `FILE` to write"},
			&cli.BoolFlag{Name: "insecure-skip-signature", Usage: "accept an unsigned or untrusted part list"},
		},
		Action: func(c *cli.Context) error {
			arg, err := oneArg(c, "PARTS")
			if err != nil {
				return err
			}
			out := c.String("output")
			if out == "" {
				return usagef("join: -o FILE is required")
			}
			if err := checkOutput("join", out); err != nil {
				return err
			}
			var verify func(msg, sig []byte) error
			if !c.Bool("insecure-skip-signature") {
				if c.String("allowed-signers") == "" {
					return usagef("join: --allowed-signers FILE (or CCMIRROR_ALLOWED_SIGNERS) is required")
				}
				o, err := trustOptions(c.String("allowed-signers"), false)
				if err != nil {
					return err
				}
				verify = func(msg, sig []byte) error {
					_, err := o.Allowed.Verify(msg, sig, manifest.Namespace, time.Now())
					return err
				}
			}
			if err := split.Join(c.Context, arg, out, verify); err != nil {
				return wrapOnce("join", arg, err)
			}
			fmt.Fprintf(e.stdout, "wrote %s\n", out)
			return nil
		},
	}
}
