package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/transport"
	"github.com/ccmirror/ccmirror/transport/blob"
)

// pushOptions is everything `ccmirror push` takes.
type pushOptions struct {
	Args        []string
	Concurrency int
	JSON        bool
	Quiet       bool
}

func pushCommand(e *env) *cli.Command {
	o := &pushOptions{}
	return &cli.Command{
		Name:      "push",
		Usage:     "upload a bundle to Azure Blob Storage",
		UsageText: "ccmirror push [flags] BUNDLE URL\n\nexample: ccmirror push slurm-2.5.0.tar https://ACCOUNT.blob.core.windows.net/ccmirror/",
		Description: "URL is a container or prefix (ending in /) or a blob URL. Credentials, in order: a SAS token in\n" +
			"the URL, AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, else the Azure default chain\n" +
			"(managed identity). The container is created when missing; the blob appears only when complete.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "concurrency", Value: blob.DefaultConcurrency, Destination: &o.Concurrency, Usage: "`N` blocks uploaded at once"},
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print a JSON summary on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Destination: &o.Quiet, Usage: "print only warnings and errors"},
		},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runPush(c.Context, e, o)
		},
	}
}

func runPush(ctx context.Context, e *env, o *pushOptions) error {
	if len(o.Args) != 2 {
		return usagef("push: want BUNDLE and URL, got %d arguments (see 'ccmirror push --help')", len(o.Args))
	}
	if o.Concurrency < 1 {
		return usagef("push: --concurrency must be at least 1, got %d", o.Concurrency)
	}
	if err := transport.CheckBlobURL(o.Args[1]); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	res, err := blob.Push(ctx, o.Args[0], o.Args[1], blob.Options{
		Log:         e.logger(o.Quiet || o.JSON),
		Concurrency: o.Concurrency,
	})
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(e.stdout, res)
	}
	what := "uploaded"
	if res.Skipped {
		what = "already there, unchanged"
	}
	fmt.Fprintf(e.stdout, "%s: %s (%s, sha256 %s)\n", res.URL, what, text.HumanBytes(res.Size), res.SHA256)
	return nil
}
