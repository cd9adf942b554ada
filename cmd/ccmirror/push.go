package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/mirror/blobstore"
)

func pushCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "upload a bundle to Azure Blob Storage",
		UsageText: "ccmirror push [flags] BUNDLE URL\n\nexample: ccmirror push slurm-2.5.0.tar https://ACCOUNT.blob.core.windows.net/ccmirror/",
		Description: "URL is a container or prefix (ending in /) or a blob URL. Credentials, in order: a SAS token in\n" +
			"the URL, AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, else the Azure default chain\n" +
			"(managed identity). The container is created when missing; the blob appears only when complete.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "concurrency", Value: blobstore.DefaultConcurrency, Usage: "`N` blocks uploaded at once"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON summary on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only warnings and errors"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usagef("push: want BUNDLE and URL, got %d arguments (see 'ccmirror push --help')", c.NArg())
			}
			if n := c.Int("concurrency"); n < 1 {
				return usagef("push: --concurrency must be at least 1, got %d", n)
			}
			res, err := blobstore.Push(c.Context, c.Args().Get(0), c.Args().Get(1), blobstore.Options{
				Log:         e.logger(c, c.Bool("quiet") || c.Bool("json")),
				Concurrency: c.Int("concurrency"),
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(e.stdout, res)
			}
			what := "uploaded"
			if res.Skipped {
				what = "already there, unchanged"
			}
			fmt.Fprintf(e.stdout, "%s: %s (%s, sha256 %s)\n", res.URL, what, humanBytes(res.Size), res.SHA256)
			return nil
		},
	}
}
