package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/transport/split"
)

// splitOptions is everything `ccmirror split` takes.
type splitOptions struct {
	Args []string
	Size string
	Sign signFlags
	Dir  string
}

func splitCommand(e *env) *cli.Command {
	o := &splitOptions{}
	return &cli.Command{
		Name:      "split",
		Usage:     "cut a bundle into numbered parts plus a signed part list, for removable media",
		UsageText: "ccmirror split --size 4095M --sign-key FILE BUNDLE\n\nexample: ccmirror split --size 4095M --sign-key ~/.ssh/ccmirror slurm-2.5.0.tar",
		Description: "Writes BUNDLE.001, BUNDLE.002, … and BUNDLE.parts (+ .sig). 'cat BUNDLE.0*' is the original bundle;\n" +
			"install and verify take BUNDLE.001 or BUNDLE.parts directly. FAT32 holds at most 4095M per file.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "size", Value: "4095M", Destination: &o.Size, Usage: "part `SIZE` (K, M, G, T are powers of 1024)"}},
			append(o.Sign.flags("OpenSSH private key `FILE` to sign the part list with", "write an unsigned part list"),
				&cli.StringFlag{Name: "dir", Destination: &o.Dir, Usage: "output `DIR` (default: beside the bundle)"})...),
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runSplit(c.Context, e, o)
		},
	}
}

func runSplit(ctx context.Context, e *env, o *splitOptions) error {
	arg, err := oneArg("split", "BUNDLE", o.Args)
	if err != nil {
		return err
	}
	size, err := split.ParseSize(o.Size)
	if err != nil {
		return usagef("split: --size: %v", err)
	}
	if err := checkBundleHead(arg); err != nil {
		return wrapOnce("split", arg, err)
	}
	dir, what := o.Dir, "--dir"
	if dir == "" {
		dir, what = filepath.Dir(arg), "the bundle's directory"
	}
	if err := checkDir("split", what, dir); err != nil {
		return err
	}
	signer, err := o.Sign.load("split")
	if err != nil {
		return err
	}
	l, err := split.Split(ctx, arg, o.Dir, size, signer)
	if err != nil {
		return wrapOnce("split", arg, err)
	}
	for _, p := range l.Parts {
		fmt.Fprintf(e.stdout, "%s  %s  %s\n", p.SHA256, p.Name, text.HumanBytes(p.Size))
	}
	fmt.Fprintf(e.stdout, "%d parts and %s written\n", l.Count, split.ListName(l.Bundle))
	return nil
}

// joinOptions is everything `ccmirror join` takes.
type joinOptions struct {
	Args   []string
	Output string
	Trust  trustFlags
}

func joinCommand(e *env) *cli.Command {
	o := &joinOptions{}
	return &cli.Command{
		Name:      "join",
		Usage:     "check and join a split bundle's parts back into one file",
		UsageText: "ccmirror join --allowed-signers FILE BUNDLE.parts -o BUNDLE\n\nexample: ccmirror join --allowed-signers /etc/ccmirror/allowed_signers slurm-2.5.0.tar.001 -o slurm-2.5.0.tar",
		Flags: append(o.Trust.flags("accept an unsigned or untrusted part list"),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Destination: &o.Output, Usage: "bundle `FILE` to write"}),
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runJoin(c.Context, e, o)
		},
	}
}

func runJoin(ctx context.Context, e *env, o *joinOptions) error {
	arg, err := oneArg("join", "PARTS", o.Args)
	if err != nil {
		return err
	}
	if o.Output == "" {
		return usagef("join: -o FILE is required")
	}
	if err := checkOutput("join", o.Output); err != nil {
		return err
	}
	vo, err := o.Trust.load("join", e)
	if err != nil {
		return err
	}
	if err := split.Join(ctx, arg, o.Output, partListVerifier(vo)); err != nil {
		return wrapOnce("join", arg, err)
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", o.Output)
	return nil
}
