package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/staging"
	"github.com/ccmirror/ccmirror/staging/update"
	"github.com/ccmirror/ccmirror/transport"
	"github.com/ccmirror/ccmirror/transport/blob"
)

// updateOptions is everything `ccmirror update` takes.
type updateOptions struct {
	Args []string
	// From is --from: the sync job's publish container URL or a folder
	// holding its output.
	From string
	// Trust is --allowed-signers only: an index is never accepted unsigned.
	Trust trustFlags
	JSON  bool
	// Blob tunes the container source (tests shorten retries).
	Blob blob.Options
	update.Options
}

func updateCommand(e *env) *cli.Command {
	o := &updateOptions{}
	return &cli.Command{
		Name:  "update",
		Usage: "install what this CycleCloud server's project records want from a published mirror (signed index)",
		UsageText: "ccmirror update --from SOURCE --allowed-signers FILE [--root DIR] [--state-dir DIR] [--cycle-server PATH] [--all-versions] [--dry-run] [--json] [--max-age DURATION] [--owner U:G] [--builder B]\n\n" +
			"example: ccmirror update --from https://ACCOUNT.blob.core.windows.net/ccmirror --allowed-signers /etc/ccmirror/allowed_signers",
		Description: "SOURCE is the sync job's publish: container URL (credentials as pull takes them) or a folder holding\n" +
			"what sync wrote to its output: (copied as it is to media or through a one-way diode). update verifies\n" +
			"index.json against index.json.sig before trusting anything in it, refuses an index whose sequence is\n" +
			"lower than the one it accepted before from the same key (exit 4, naming both), warns when the index is\n" +
			"older than --max-age, decides what to install as plan does (the highest version of each project in\n" +
			"cloud.project; every version with --all-versions), and installs each wanted bundle the index offers,\n" +
			"oldest version first, as install does. Downloads resume. Exit 0 done or up to date, 3 when a wanted\n" +
			"version is not in the index, 4 a refused index or bundle, 5 another update or install holds the lock.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "from", Destination: &o.From, Usage: "`SOURCE`: the publish container URL or the sync output folder (required)"},
			allowedSignersFlag(&o.Trust.AllowedSigners),
			rootFlag(&o.Root),
			stateDirFlag(&o.StateDir),
			&cli.StringFlag{Name: "cycle-server", Destination: &o.CyclePath, Usage: "the cycle_server command `PATH` (default ROOT/cycle_server)"},
			timeoutFlag(&o.Timeout, "cycle_server, and each `cyclecloud project build`,"),
			&cli.BoolFlag{Name: "all-versions", Destination: &o.AllVersions, Usage: "install every project version CycleCloud knows, not only the highest of each project"},
			&cli.BoolFlag{Name: "dry-run", Destination: &o.DryRun, Usage: "print the plan (install / already staged / not offered) and change nothing"},
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print the report as JSON on stdout (for monitoring)"},
			&cli.DurationFlag{Name: "max-age", Value: update.DefaultMaxAge, Destination: &o.MaxAge, Usage: "warn when the index is older than `DURATION` (the mirror job may have stopped); negative: never"},
			&cli.StringFlag{Name: "owner", Value: staging.DefaultOwner, Destination: &o.Owner, Usage: "`USER:GROUP` (names or numeric ids) of everything installed"},
			&cli.StringFlag{Name: "builder", Value: staging.BuilderAuto, Destination: &o.Builder, Usage: "`BUILDER`: auto (cyclecloud when on PATH, else native), cyclecloud or native"},
			&cli.DurationFlag{Name: "lock-wait", Value: staging.DefaultLockWait, Destination: &o.LockWait, Usage: "`DURATION` each install waits for another ccmirror holding the staging lock"},
		},
		Action: func(c *cli.Context) error {
			o.Args = c.Args().Slice()
			return runUpdate(c.Context, e, o)
		},
	}
}

func runUpdate(ctx context.Context, e *env, o *updateOptions) error {
	if len(o.Args) != 0 {
		return usagef("update: takes no arguments, got %q; the source is --from SOURCE (see 'ccmirror update --help')", o.Args[0])
	}
	if o.From == "" {
		return usagef("update: --from SOURCE is required: the sync job's publish container URL or a folder holding its output")
	}
	if o.Trust.AllowedSigners == "" {
		return usagef("update: --allowed-signers FILE (or CCMIRROR_ALLOWED_SIGNERS) is required: the index is never accepted unsigned")
	}
	switch o.Builder {
	case "", staging.BuilderAuto, staging.BuilderCycleCloud, staging.BuilderNative:
	default:
		return usagef("update: --builder must be auto, cyclecloud or native, not %q", o.Builder)
	}
	vo, err := o.Trust.load("update", e)
	if err != nil {
		return err
	}
	o.Allowed = vo.Allowed
	if o.Log == nil {
		o.Log = e.logger(o.JSON)
	}
	if o.Notice == nil {
		o.Notice = e.notice
	}
	if o.Blob.Log == nil {
		o.Blob.Log = o.Log
	}
	if o.Source, err = updateSource(o.From, o.Blob); err != nil {
		return err
	}
	rep, err := update.Run(ctx, o.Options)
	if o.JSON && rep != nil {
		if jerr := writeJSON(e.stdout, rep); err == nil {
			err = jerr
		}
	} else if rep != nil {
		for _, w := range rep.Warnings {
			fmt.Fprintf(e.stderr, "warning: %s\n", w)
		}
		if rep.Index != nil {
			rep.WriteText(e.stdout)
		}
	}
	return err
}

// updateSource is the Source --from names: a blob container URL, or a
// folder.
func updateSource(from string, bo blob.Options) (update.Source, error) {
	kind, err := transport.Classify(from)
	if err != nil {
		return nil, fmt.Errorf("update: --from: %w", err)
	}
	if kind == transport.Blob {
		return newBlobSource(from, bo)
	}
	st, err := os.Stat(from)
	if err != nil || !st.IsDir() {
		return nil, usagef("update: --from %s is neither a blob container URL nor a folder", from)
	}
	return update.Folder(from), nil
}

// blobSource reads a sync job's publish location (a container, or a
// prefix in one) with the blob client; bundles are downloaded with Pull,
// which resumes an interrupted download of an unchanged blob.
type blobSource struct {
	loc  *blob.Location
	opts blob.Options
}

func newBlobSource(u string, bo blob.Options) (*blobSource, error) {
	loc, err := blob.ParseURL(u)
	if err != nil {
		return nil, fmt.Errorf("update: --from: %w", err)
	}
	if !loc.IsPrefix() {
		loc.Path += "/" // as sync's publish: a URL without a trailing slash names a folder
	}
	return &blobSource{loc: loc, opts: bo}, nil
}

// String is the location, SAS redacted.
func (s *blobSource) String() string { return s.loc.String() }

// url is the URL of object name, with the SAS.
func (s *blobSource) url(name string) string {
	u := s.loc.BlobURL(s.loc.Path + name)
	if s.loc.SAS != "" {
		u += "?" + s.loc.SAS
	}
	return u
}

// Open streams one blob.
func (s *blobSource) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	rc, size, err := blob.Open(ctx, s.url(name), s.opts)
	return rc, size, notExist(err)
}

// Download pulls one blob into path, resuming a partial download.
func (s *blobSource) Download(ctx context.Context, name, path string) (update.Transfer, error) {
	res, err := blob.Pull(ctx, s.url(name), path, s.opts)
	if err != nil {
		return update.Transfer{}, notExist(err)
	}
	return update.Transfer{ResumedFrom: res.ResumedFrom, Downloaded: res.Downloaded}, nil
}

// notExist makes a missing blob match fs.ErrNotExist, as Source requires.
func notExist(err error) error {
	if err != nil && errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("%w (%w)", err, fs.ErrNotExist)
	}
	return err
}
