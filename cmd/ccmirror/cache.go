package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/transport/split"
)

// cacheOptions is everything `ccmirror cache` and `cache prune` take.
type cacheOptions struct {
	Args      []string
	Cache     string
	JSON      bool
	MaxSize   string
	OlderThan string
}

func cacheCommand(e *env) *cli.Command {
	o := &cacheOptions{}
	cacheFlag := &cli.StringFlag{Name: "cache", Destination: &o.Cache, Usage: "download cache `DIR` (default: the user cache dir)"}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print the report as JSON on stdout", Destination: &o.JSON}
	return &cli.Command{
		Name:  "cache",
		Usage: "show where the download cache is and what it holds; prune it",
		UsageText: "ccmirror cache [--cache DIR] [--json]\n" +
			"ccmirror cache prune [--max-size SIZE] [--older-than DURATION] [--cache DIR] [--json]\n\n" +
			"example: ccmirror cache prune --max-size 2G",
		Flags: []cli.Flag{cacheFlag, jsonFlag},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runCache(c.Context, e, o)
		},
		Subcommands: []*cli.Command{{
			Name: "prune",
			Usage: "remove cached files, least recently used first, until the cache is at most --max-size " +
				"and nothing is older than --older-than; waits for running fetches",
			UsageText: "ccmirror cache prune [--max-size SIZE] [--older-than DURATION] [--cache DIR] [--json]\n\n" +
				"SIZE is like 500M or 2G; DURATION like 30d or 12h.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "max-size", Destination: &o.MaxSize, Usage: "keep at most `SIZE` (500M, 2G)"},
				&cli.StringFlag{Name: "older-than", Destination: &o.OlderThan, Usage: "remove what was last used more than `DURATION` ago (30d, 12h)"},
				cacheFlag, jsonFlag,
			},
			Action: func(c *cli.Context) error {
				o.Args = c.Args().Slice()
				return runCachePrune(c.Context, e, o)
			},
		}},
	}
}

func runCache(_ context.Context, e *env, o *cacheOptions) error {
	if len(o.Args) != 0 {
		return usagef("cache: unknown subcommand %q; the subcommand is prune (see 'ccmirror cache --help')", o.Args[0])
	}
	u, err := mirror.ReadCacheUsage(o.Cache)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if o.JSON {
		return writeJSON(e.stdout, u)
	}
	writeCacheUsage(e, u)
	return nil
}

func writeCacheUsage(e *env, u *mirror.CacheUsage) {
	fmt.Fprintf(e.stdout, "cache %s: %s\n", u.Dir, text.HumanBytes(u.Bytes))
	for i, k := range u.Kinds {
		fmt.Fprintf(e.stdout, "  %-8s %10s in %d files  (%s)\n", k.Name, text.HumanBytes(k.Bytes), k.Files, mirror.CacheKinds[i].Holds)
	}
}

// cachePruneReport is what `cache prune --json` prints.
type cachePruneReport struct {
	Before  int64 `json:"bytes_before"`
	After   int64 `json:"bytes_after"`
	Removed int   `json:"files_removed"`
	*mirror.CacheUsage
}

func runCachePrune(ctx context.Context, e *env, o *cacheOptions) error {
	if len(o.Args) != 0 {
		return usagef("cache prune: takes no arguments (see 'ccmirror cache prune --help')")
	}
	po := mirror.PruneOptions{MaxSize: -1, Notice: e.notice}
	if o.MaxSize == "" && o.OlderThan == "" {
		return usagef("cache prune: give --max-size SIZE, --older-than DURATION or both (see 'ccmirror cache prune --help')")
	}
	if o.MaxSize != "" {
		n, err := split.ParseSize(o.MaxSize)
		if err != nil && strings.TrimSpace(o.MaxSize) == "0" {
			n, err = 0, nil
		}
		if err != nil {
			return usagef("cache prune: --max-size: %v", err)
		}
		po.MaxSize = n
	}
	if o.OlderThan != "" {
		d, err := parseAge(o.OlderThan)
		if err != nil {
			return usagef("cache prune: --older-than %q: %v", o.OlderThan, err)
		}
		po.OlderThan = d
	}
	e.doing("cache prune", "what is removed is downloaded again when needed; rerun prune")
	res, err := mirror.PruneCache(ctx, o.Cache, po)
	if err != nil {
		return fmt.Errorf("cache prune: %w", err)
	}
	if o.JSON {
		return writeJSON(e.stdout, cachePruneReport{Before: res.Before.Bytes, After: res.After.Bytes, Removed: res.Removed, CacheUsage: res.After})
	}
	fmt.Fprintf(e.stdout, "pruned %d files: %s -> %s\n", res.Removed, text.HumanBytes(res.Before.Bytes), text.HumanBytes(res.After.Bytes))
	writeCacheUsage(e, res.After)
	return nil
}

// parseAge reads a duration as Go writes it (12h, 90m) or in days (30d).
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, fmt.Errorf("want a positive number of days like 30d, or 12h, 90m")
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration like 30d, 12h or 90m")
	}
	return d, nil
}
