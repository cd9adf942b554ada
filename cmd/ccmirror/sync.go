package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/mirror/syncjob"
	"github.com/ccmirror/ccmirror/transport/split"
)

// syncOptions is everything `ccmirror sync` takes.
type syncOptions struct {
	Args   []string
	Config string
	Cache  string
	JSON   bool
	Quiet  bool
	// Split is --split-size, as the user wrote it.
	Split string
}

func syncCommand(e *env) *cli.Command {
	o := &syncOptions{}
	return &cli.Command{
		Name:      "sync",
		Usage:     "the scheduled mirror job: keep configured project versions mirrored as signed bundles",
		UsageText: "ccmirror sync --config FILE [--json] [--quiet]\n\nexample: ccmirror sync --config /etc/ccmirror/mirror.yaml",
		Description: "Resolves every project's versions (tags, \"latest\", \"newest:N\") on GitHub and fetches each release\n" +
			"not mirrored yet into OUTPUT/NAME-VERSION.tar, recorded in a signed OUTPUT/index.json. Releases already\n" +
			"mirrored cost no download. A release whose assets changed on GitHub after it was mirrored is reported\n" +
			"loudly and mirrored again as NAME-VERSION.r2.tar; no bundle is ever overwritten. With publish: set,\n" +
			"new bundles and then the index are uploaded to Azure Blob Storage. One run at a time per OUTPUT\n" +
			"(an overlapping run exits 5). Exit 0 also when nothing was new.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Destination: &o.Config, Usage: "the job's YAML config `FILE` (see README: The mirror job)"},
			&cli.StringFlag{Name: "cache", Destination: &o.Cache, Usage: "download cache `DIR` (overrides the config's cache:)"},
			&cli.StringFlag{Name: "split-size", Destination: &o.Split, Usage: "also cut each new bundle into parts of `SIZE` (e.g. 4095M) with a signed part list, for removable media"},
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print a JSON summary on stdout"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Destination: &o.Quiet, Usage: "print only warnings, errors and what changed (silent when nothing is new: cron mails nothing)"},
		},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runSync(c.Context, e, o)
		},
	}
}

func runSync(ctx context.Context, e *env, o *syncOptions) error {
	if len(o.Args) > 0 {
		return usagef("sync: unexpected argument %q; the projects are listed in the config file", o.Args[0])
	}
	if o.Config == "" {
		return usagef("sync: --config FILE is required (the job's YAML config)")
	}
	cfg, err := syncjob.LoadConfig(o.Config)
	if err != nil {
		if errors.Is(err, syncjob.ErrConfig) {
			return usagef("sync: %v", err)
		}
		return err
	}
	var partSize int64
	if o.Split != "" {
		if partSize, err = split.ParseSize(o.Split); err != nil {
			return usagef("sync: --split-size: %v", err)
		}
	}
	signer, err := loadSigner(cfg.SignKey, false, "sync")
	if err != nil {
		return err
	}
	opts := syncjob.Options{
		Signer:    signer,
		CacheDir:  o.Cache,
		Log:       e.logger(o.Quiet || o.JSON),
		SplitSize: partSize,
		Notice:    e.notice,
	}
	if !o.Quiet && !o.JSON {
		opts.Progress = e.stderr // drawn only when stderr is a terminal
	}
	e.doing("sync --config "+o.Config, "rerun resumes from the cache; bundles already written are kept")
	sum, err := syncjob.Run(ctx, cfg, opts)
	if sum != nil {
		if o.JSON {
			if jerr := writeJSON(e.stdout, sum); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printSync(e, sum, o.Quiet, err == nil)
		}
	}
	return err
}

func printSync(e *env, s *syncjob.Summary, quiet, ok bool) {
	for _, ch := range s.Changed {
		fmt.Fprintf(e.stdout, "CHANGED ON GITHUB: %s (kept %s", ch.Message, ch.Previous)
		if ch.File != "" {
			fmt.Fprintf(e.stdout, ", new bundle %s", ch.File)
		}
		fmt.Fprintln(e.stdout, ")")
	}
	for _, b := range s.New {
		fmt.Fprintf(e.stdout, "new: %s %s (%s@%s, commit %.12s) -> %s (%s)\n",
			b.Project, b.Version, b.Repository, b.Tag, b.Commit, b.Path, text.HumanBytes(b.Size))
	}
	for _, u := range s.Published {
		fmt.Fprintf(e.stdout, "published: %s\n", u)
	}
	switch {
	case s.NothingNew && ok && len(s.Changed) == 0:
		if !quiet {
			fmt.Fprintf(e.stdout, "nothing new: %d project versions up to date\n", len(s.Unchanged))
		}
	case len(s.New) > 0 || !quiet:
		fmt.Fprintf(e.stdout, "%d new bundle(s), %d up to date, %d failed; %s downloaded; index %s (sequence %d)\n",
			len(s.New), len(s.Unchanged), len(s.Failed), text.HumanBytes(s.Downloaded), s.Index, s.Sequence)
	}
}
