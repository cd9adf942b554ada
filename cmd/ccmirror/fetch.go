package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ccmirror/ccmirror/internal/ctxio"
	"github.com/ccmirror/ccmirror/internal/errclass"
	"github.com/ccmirror/ccmirror/internal/text"
	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/transport/split"
)

// fetchOptions is everything `ccmirror fetch` takes.
type fetchOptions struct {
	Refs           []string
	Output         string
	Sign           signFlags
	GitHubURL      string
	Token          string
	Cache          string
	Concurrency    int
	BlobDirs       []string
	Request        string
	AllowedSigners string
	SplitSize      string
	Force          bool
	WithDeps       bool
	Quiet          bool
	JSON           bool
}

func fetchCommand(e *env) *cli.Command {
	o := &fetchOptions{}
	var blobDirs cli.StringSlice
	return &cli.Command{
		Name:      "fetch",
		Usage:     "resolve project releases on GitHub into one signed bundle",
		UsageText: "ccmirror fetch [flags] REF...\n\nexample: ccmirror fetch --sign-key ~/.ssh/ccmirror slurm@2.5.0 -o slurm-2.5.0.tar",
		Description: "REF is NAME[@VERSION] (slurm, pbspro, gridengine, lsf, symphony, hpcpack, healthagent, monitoring),\n" +
			"OWNER/REPO[@VERSION], or a release URL https://github.com/OWNER/REPO/releases/VERSION.\n" +
			"VERSION is a tag or 'latest' (the default): the highest version among the releases that are not drafts and\n" +
			"whose tag is a version (2.0.25, v1.2.0, 4.0.0-rc1; prereleases count, dated tags like 2023-03-29-bins do not;\n" +
			"4.0.0 beats 4.0.0-rc1), whatever GitHub marks latest.",
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Destination: &o.Output, Usage: "bundle `FILE` to write (default NAME-VERSION.tar)"}},
			o.Sign.flags("OpenSSH private key `FILE` to sign with, or agent: / agent:SHA256:… for ssh-agent",
				"write an unsigned bundle (install refuses it unless told to skip signatures)")...),
			&cli.StringFlag{Name: "github-url", EnvVars: []string{"CCMIRROR_GITHUB_URL"}, Destination: &o.GitHubURL, Usage: "GitHub API base `URL` (GitHub Enterprise: https://HOST/api/v3/)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"GITHUB_TOKEN"}, Destination: &o.Token, Usage: "GitHub `TOKEN` (raises the API rate limit)"},
			&cli.StringFlag{Name: "cache", Destination: &o.Cache, Usage: "download cache `DIR` (default: the user cache dir)"},
			&cli.IntFlag{Name: "concurrency", Value: 4, Destination: &o.Concurrency, Usage: "`N` parallel downloads"},
			&cli.StringSliceFlag{Name: "blob-dir", Destination: &blobDirs, Usage: "extra `DIR` to look for blobs in (repeatable)"},
			&cli.StringFlag{Name: "request", Destination: &o.Request, Usage: "fetch what a request `FILE` from 'ccmirror plan' asks for"},
			&cli.StringFlag{Name: "allowed-signers", EnvVars: []string{"CCMIRROR_ALLOWED_SIGNERS"}, Destination: &o.AllowedSigners, Usage: "with --request: require the request to be signed by a key in this allowed_signers `FILE`"},
			&cli.StringFlag{Name: "split-size", Destination: &o.SplitSize, Usage: "cut the bundle into parts of `SIZE` (e.g. 4095M for FAT32) plus a signed part list"},
			&cli.BoolFlag{Name: "force", Destination: &o.Force, Usage: "replace an existing -o FILE that holds a different bundle"},
			&cli.BoolFlag{Name: "with-deps", Destination: &o.WithDeps, Usage: "add, transitively, the projects the releases' cluster templates include (healthagent, monitoring, …)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Destination: &o.Quiet, Usage: "print only warnings and errors"},
			&cli.BoolFlag{Name: "json", Destination: &o.JSON, Usage: "print a JSON summary on stdout"},
		),
		Action: func(c *cli.Context) error {
			o.Refs = c.Args().Slice()
			o.BlobDirs = blobDirs.Value()
			return runFetch(c.Context, e, o)
		},
	}
}

func runFetch(ctx context.Context, e *env, o *fetchOptions) error {
	if len(o.Refs) == 0 && o.Request == "" {
		return usagef("fetch: name at least one REF (e.g. slurm@2.5.0) or --request FILE")
	}
	if len(o.Refs) > 0 && o.Request != "" {
		return usagef("fetch: give either REFs or --request, not both")
	}
	if o.Concurrency < 1 {
		return usagef("fetch: --concurrency must be at least 1, got %d", o.Concurrency)
	}
	for _, d := range o.BlobDirs {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return usagef("fetch: --blob-dir %s is not a folder", d)
		}
	}
	if o.GitHubURL != "" {
		if u, err := url.Parse(o.GitHubURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return usagef("fetch: --github-url (or CCMIRROR_GITHUB_URL) %q: want an API base URL, https://api.github.com/ or https://HOST/api/v3/", o.GitHubURL)
		}
	}
	if o.Output != "" {
		if err := checkOutput("fetch", o.Output); err != nil {
			return err
		}
	}
	var partSize int64
	if o.SplitSize != "" {
		n, err := split.ParseSize(o.SplitSize)
		if err != nil {
			return usagef("fetch: --split-size: %v", err)
		}
		partSize = n
	}
	signer, err := o.Sign.load("fetch")
	if err != nil {
		return err
	}
	log := e.logger(o.Quiet || o.JSON)
	opts := mirror.Options{
		GitHubURL:   o.GitHubURL,
		Token:       o.Token,
		CacheDir:    o.Cache,
		Concurrency: o.Concurrency,
		BlobDirs:    o.BlobDirs,
		WithDeps:    o.WithDeps,
		Log:         log,
		Notice:      e.notice,
	}
	if signer != nil {
		opts.Signer = signer
	}
	if !o.Quiet && !o.JSON {
		opts.Progress = e.stderr
	}
	var refs []mirror.Ref
	if o.Request != "" {
		refs, err = requestRefs(o, &opts)
		if err != nil {
			return err
		}
		if len(refs) == 0 {
			fmt.Fprintf(e.stdout, "%s: the server lacks nothing; no bundle written\n", o.Request)
			return nil
		}
	} else {
		for _, s := range o.Refs {
			r, err := mirror.ParseRef(s)
			if err != nil {
				return usagef("fetch: %v", err)
			}
			refs = append(refs, r)
		}
	}
	what := strings.Join(o.Refs, " ")
	if o.Request != "" {
		what = "--request " + o.Request
	}
	e.doing("fetch "+what, "rerun resumes from the cache")
	f, err := mirror.NewFetcher(opts)
	if err != nil {
		return err
	}
	out, commit := o.Output, func(*mirror.Result) error { return nil }
	if o.Output != "" && !o.Force {
		out, commit = guardOutput(ctx, o.Output)
	}
	res, err := f.Fetch(ctx, refs, out)
	if err == nil {
		err = commit(res)
	} else if out != o.Output {
		os.Remove(out)
	}
	if err != nil {
		return err
	}
	var parts *split.List
	if partSize > 0 {
		if parts, err = splitBundle(ctx, res.Path, partSize, signer); err != nil {
			return err
		}
	}
	if line := leftOutLine(res.LeftOut); line != "" {
		e.warn(line)
	}
	scanArg := res.Path
	if parts != nil {
		scanArg = split.ListName(res.Path)
	}
	ready := readinessOf(res.Readiness, "ccmirror scan "+scanArg)
	if o.JSON {
		return writeJSON(e.stdout, struct {
			*mirror.Result
			Parts     *split.List      `json:"parts,omitempty"`
			LeftOut   []mirror.LeftOut `json:"left_out"`
			Readiness []readiness      `json:"readiness"`
		}{res, parts, nonNil(res.LeftOut), ready})
	}
	printFetchResult(e, res, signer != nil)
	if parts != nil {
		fmt.Fprintf(e.stdout, "split into %d parts of at most %s: %s.001 … and %s\n", parts.Count, text.HumanBytes(partSize), res.Path, split.ListName(res.Path))
	}
	if !o.Quiet {
		printReadiness(e, ready)
	}
	return nil
}

// leftOutLine is the one line fetch prints when the releases' cluster
// templates include projects the bundle does not carry, "" when none.
func leftOutLine(left []mirror.LeftOut) string {
	var add, cannot []string
	for _, l := range left {
		s := l.String() + " (" + strings.Join(l.By, ", ") + ")"
		if l.Reason != "" {
			cannot = append(cannot, s+": "+l.Reason)
		} else {
			add = append(add, s)
		}
	}
	var parts []string
	if len(add) > 0 {
		parts = append(parts, "left out "+strings.Join(add, ", ")+", included by the cluster templates; --with-deps adds them")
	}
	if len(cannot) > 0 {
		parts = append(parts, "cluster templates also include "+strings.Join(cannot, ", ")+"; fetch it as OWNER/REPO[@VERSION]")
	}
	return strings.Join(parts, "; ")
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// guardOutput keeps fetch from replacing an existing, different -o FILE
// without --force: when path exists, the bundle is written beside it under
// a temporary name, and commit puts it in place only when its content is
// the same (replacing identical content is fine), else removes it and
// fails with errclass.ErrConflict (exit 5).
func guardOutput(ctx context.Context, path string) (tmp string, commit func(*mirror.Result) error) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return path, func(*mirror.Result) error { return nil }
	}
	tmp = filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.ccmirror-new-%d", filepath.Base(path), os.Getpid()))
	return tmp, func(res *mirror.Result) error {
		defer os.Remove(tmp)
		newSum, _, err := ctxio.HashFile(ctx, tmp)
		if err != nil {
			return err
		}
		oldSum, _, err := ctxio.HashFile(ctx, path)
		if err != nil {
			return err
		}
		if newSum != oldSum {
			return fmt.Errorf("fetch: %s exists and holds a different bundle (sha256 %.12s…, the new one %.12s…); pass --force to replace it, or -o another file: %w",
				path, oldSum, newSum, errclass.ErrConflict)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		res.Path = path
		return nil
	}
}

// splitBundle cuts a freshly written bundle into parts and removes the
// whole file, which the parts now stand for.
func splitBundle(ctx context.Context, path string, partSize int64, signer manifest.Signer) (*split.List, error) {
	l, err := split.Split(ctx, path, "", partSize, signer)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", path, err)
	}
	return l, os.Remove(path)
}

func printFetchResult(e *env, res *mirror.Result, signed bool) {
	for _, w := range res.Warnings {
		e.warn(w)
	}
	for _, r := range res.Resolved {
		if r.Note != "" {
			fmt.Fprintln(e.stdout, r.Note)
		}
	}
	for _, p := range res.Manifest.Projects {
		var n int64
		for _, b := range p.Blobs {
			n += b.Size
		}
		fmt.Fprintf(e.stdout, "%s %s (%s@%s, commit %.12s): source + %d blobs, %s\n",
			p.Name, p.Version, p.Repository, p.Tag, p.Commit, len(p.Blobs), text.HumanBytes(p.Source.Size+n))
	}
	state := "signed"
	if !signed {
		state = "UNSIGNED"
	}
	fmt.Fprintf(e.stdout, "wrote %s (%s; %s downloaded, %d from cache)\n", res.Path, state, text.HumanBytes(res.Downloaded), res.CacheHits)
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
