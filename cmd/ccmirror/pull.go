package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/mirror/blobstore"
	"github.com/ccmirror/ccmirror/staging"
)

func pullCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "download a bundle from Azure Blob Storage, resuming, and verify it",
		UsageText: "ccmirror pull [--allowed-signers FILE] URL -o FILE\n\nexample: ccmirror pull --allowed-signers /etc/ccmirror/allowed_signers https://ACCOUNT.blob.core.windows.net/ccmirror/slurm-2.5.0.tar -o slurm-2.5.0.tar",
		Description: "An interrupted pull resumes where it stopped. The bundle is verified before pull reports success;\n" +
			"without --allowed-signers only its hashes are checked and pull says so. A bundle that fails is removed.",
		Flags: []cli.Flag{
			allowedSignersFlag(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "local `FILE` to write"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON summary on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only warnings and errors"},
		},
		Action: func(c *cli.Context) error {
			url, err := oneArg(c, "URL")
			if err != nil {
				return err
			}
			out := c.String("output")
			if out == "" {
				return usagef("pull: -o FILE is required")
			}
			if err := checkOutput("pull", out); err != nil {
				return err
			}
			allowed := c.String("allowed-signers")
			vo, err := trustOptions(allowed, allowed == "")
			if err != nil {
				return err
			}
			res, err := blobstore.Pull(c.Context, url, out, blobstore.Options{Log: e.logger(c, c.Bool("quiet") || c.Bool("json"))})
			if err != nil {
				return err
			}
			f, err := os.Open(out)
			if err != nil {
				return err
			}
			rep, err := staging.Verify(c.Context, f, vo)
			f.Close()
			if err != nil {
				os.Remove(out)
				return fmt.Errorf("pull %s: %s removed: %w", res.URL, out, err)
			}
			if c.Bool("json") {
				return writeJSON(e.stdout, struct {
					Pull   *blobstore.PullResult `json:"pull"`
					Verify *staging.VerifyReport `json:"verify"`
				}{res, rep})
			}
			how := "signature and hashes verified"
			if allowed == "" {
				how = "hashes verified; signature NOT checked (no --allowed-signers)"
			}
			resumed := ""
			if res.ResumedFrom > 0 {
				resumed = fmt.Sprintf(", resumed at %s", humanBytes(res.ResumedFrom))
			}
			fmt.Fprintf(e.stdout, "%s: %s (%s%s), %s\n", out, humanBytes(res.Size), res.URL, resumed, how)
			return nil
		},
	}
}
