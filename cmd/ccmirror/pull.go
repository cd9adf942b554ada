package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/transport"
	"github.com/ccmirror/ccmirror/transport/blob"
)

// pullOptions is everything `ccmirror pull` takes.
type pullOptions struct {
	Args   []string
	Output string
	// Trust is --allowed-signers only: pull checks the hashes without it
	// and says so (trustFlags.loadOptional).
	Trust trustFlags
	JSON  bool
	Quiet bool
	// Concurrency is --concurrency: ranged GETs in flight at once.
	Concurrency int
}

// maxPullConcurrency bounds --concurrency.
const maxPullConcurrency = 64

func pullCommand(e *env) *cli.Command {
	o := &pullOptions{Concurrency: blob.DefaultPullConcurrency}
	return &cli.Command{
		Name:      "pull",
		Usage:     "download a bundle from Azure Blob Storage, resuming, and verify it",
		UsageText: "ccmirror pull [--allowed-signers FILE] URL -o FILE\n\nexample: ccmirror pull --allowed-signers /etc/ccmirror/allowed_signers https://ACCOUNT.blob.core.windows.net/ccmirror/slurm-2.5.0.tar -o slurm-2.5.0.tar",
		Description: "An interrupted pull resumes where it stopped. The bundle is verified before pull reports success;\n" +
			"without --allowed-signers only its hashes are checked and pull says so. A bundle that fails is removed.",
		Flags: []cli.Flag{
			allowedSignersFlag(&o.Trust.AllowedSigners),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Destination: &o.Output, Usage: "local `FILE` to write"},
			&cli.IntFlag{Name: "concurrency", Value: blob.DefaultPullConcurrency, Destination: &o.Concurrency,
				Usage: fmt.Sprintf("download `N` ranges of the blob at once (1 to %d; 1 is one GET at a time)", maxPullConcurrency)},
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print a JSON summary on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Destination: &o.Quiet, Usage: "print only warnings and errors"},
		},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runPull(c.Context, e, o)
		},
	}
}

func runPull(ctx context.Context, e *env, o *pullOptions) error {
	url, err := oneArg("pull", "URL", o.Args)
	if err != nil {
		return err
	}
	out := o.Output
	if out == "" {
		return usagef("pull: -o FILE is required")
	}
	if o.Concurrency < 1 || o.Concurrency > maxPullConcurrency {
		return usagef("pull: --concurrency %d: must be 1 to %d", o.Concurrency, maxPullConcurrency)
	}
	if err := transport.CheckBlobURL(url); err != nil {
		return fmt.Errorf("pull: %w", err)
	}
	if err := checkOutput("pull", out); err != nil {
		return err
	}
	vo, err := o.Trust.loadOptional()
	if err != nil {
		return err
	}
	e.doing("pull "+blob.Redact(url), "rerun resumes the download")
	// The bundle is verified as it arrives: the download feeds the
	// verifier in order, and the file gets its name only when both agree.
	var rep *staging.VerifyReport
	// When the blob records the sha256 of the bundle's SHA256SUMS, that and
	// the payload hashes prove the content: each byte is hashed once.
	check := func(r io.Reader, wantSHA256 bool) (blob.Checked, error) {
		b, err := transport.FromReader(out, r, -1)
		if err != nil {
			return blob.Checked{}, err
		}
		o := vo
		o.SkipBundleSHA256 = !wantSHA256
		rep, err = staging.Verify(ctx, b, o)
		if err = b.Finish(err); err != nil {
			return blob.Checked{}, err
		}
		return blob.Checked{SHA256: rep.BundleSHA256, HeadSHA256: rep.HeadSHA256}, nil
	}
	res, err := blob.Pull(ctx, url, out, blob.Options{Log: e.logger(o.Quiet || o.JSON), Check: check, Concurrency: o.Concurrency})
	var ce *blob.CheckError
	if errors.As(err, &ce) {
		return fmt.Errorf("pull %s: %s removed: %w", ce.URL, out, ce.Err)
	}
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(e.stdout, struct {
			Pull   *blob.PullResult      `json:"pull"`
			Verify *staging.VerifyReport `json:"verify"`
		}{res, rep})
	}
	how := "signature and hashes verified"
	if vo.Allowed == nil {
		how = "hashes verified; signature NOT checked (no --allowed-signers)"
	}
	resumed := ""
	if res.ResumedFrom > 0 {
		resumed = fmt.Sprintf(", resumed at %s", text.HumanBytes(res.ResumedFrom))
	}
	fmt.Fprintf(e.stdout, "%s: %s (%s%s), %s\n", out, text.HumanBytes(res.Size), res.URL, resumed, how)
	return nil
}
