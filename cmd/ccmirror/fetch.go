package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/split"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/mirror"
)

// fetchOptions is everything `ccmirror fetch` takes.
type fetchOptions struct {
	Refs           []string
	Output         string
	SignKey        string
	Unsigned       bool
	GitHubURL      string
	Token          string
	Cache          string
	Concurrency    int
	BlobDirs       []string
	Request        string
	AllowedSigners string
	SplitSize      string
	Quiet          bool
	JSON           bool
}

func fetchCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "fetch",
		Usage:     "resolve project releases on GitHub into one signed bundle",
		UsageText: "ccmirror fetch [flags] REF...\n\nexample: ccmirror fetch --sign-key ~/.ssh/ccmirror slurm@2.5.0 -o slurm-2.5.0.tar",
		Description: "REF is NAME[@VERSION] (slurm, pbspro, gridengine, lsf, symphony, hpcpack, healthagent, monitoring),\n" +
			"OWNER/REPO[@VERSION], or a release URL https://github.com/OWNER/REPO/releases/VERSION.\n" +
			"VERSION is a tag or 'latest' (the default): the highest version among the releases that are not drafts and\n" +
			"whose tag is a version (2.0.25, v1.2.0, 4.0.0-rc1; prereleases count, dated tags like 2023-03-29-bins do not;\n" +
			"4.0.0 beats 4.0.0-rc1), whatever GitHub marks latest.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "bundle `FILE` to write (default NAME-VERSION.tar)"},
			&cli.StringFlag{Name: "sign-key", EnvVars: []string{"CCMIRROR_SIGN_KEY"}, Usage: "OpenSSH private key `FILE` to sign with, or agent: / agent:SHA256:… for ssh-agent"},
			&cli.BoolFlag{Name: "unsigned", Usage: "write an unsigned bundle (install refuses it unless told to skip signatures)"},
			&cli.StringFlag{Name: "github-url", EnvVars: []string{"CCMIRROR_GITHUB_URL"}, Usage: "GitHub API base `URL` (GitHub Enterprise: https://HOST/api/v3/)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"GITHUB_TOKEN"}, Usage: "GitHub `TOKEN` (raises the API rate limit)"},
			&cli.StringFlag{Name: "cache", Usage: "download cache `DIR` (default: the user cache dir)"},
			&cli.IntFlag{Name: "concurrency", Value: 4, Usage: "`N` parallel downloads"},
			&cli.StringSliceFlag{Name: "blob-dir", Usage: "extra `DIR` to look for blobs in (repeatable)"},
			&cli.StringFlag{Name: "request", Usage: "fetch what a request `FILE` from 'ccmirror plan' asks for"},
			&cli.StringFlag{Name: "allowed-signers", EnvVars: []string{"CCMIRROR_ALLOWED_SIGNERS"}, Usage: "with --request: require the request to be signed by a key in this allowed_signers `FILE`"},
			&cli.StringFlag{Name: "split-size", Usage: "cut the bundle into parts of `SIZE` (e.g. 4095M for FAT32) plus a signed part list"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only warnings and errors"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON summary on stdout"},
		},
		Action: func(c *cli.Context) error {
			o := &fetchOptions{
				SplitSize:      c.String("split-size"),
				Refs:           c.Args().Slice(),
				Output:         c.String("output"),
				SignKey:        c.String("sign-key"),
				Unsigned:       c.Bool("unsigned"),
				GitHubURL:      c.String("github-url"),
				Token:          c.String("token"),
				Cache:          c.String("cache"),
				Concurrency:    c.Int("concurrency"),
				BlobDirs:       c.StringSlice("blob-dir"),
				Request:        c.String("request"),
				AllowedSigners: c.String("allowed-signers"),
				Quiet:          c.Bool("quiet"),
				JSON:           c.Bool("json"),
			}
			return runFetch(c, e, o)
		},
	}
}

func runFetch(c *cli.Context, e *env, o *fetchOptions) error {
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
	signer, err := loadSigner(o.SignKey, o.Unsigned, "fetch")
	if err != nil {
		return err
	}
	log := e.logger(c, o.Quiet || o.JSON)
	opts := mirror.Options{
		GitHubURL:   o.GitHubURL,
		Token:       o.Token,
		CacheDir:    o.Cache,
		Concurrency: o.Concurrency,
		BlobDirs:    o.BlobDirs,
		Log:         log,
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
	f, err := mirror.NewFetcher(opts)
	if err != nil {
		return err
	}
	res, err := f.Fetch(c.Context, refs, o.Output)
	if err != nil {
		return err
	}
	var parts *split.List
	if partSize > 0 {
		if parts, err = splitBundle(c, res.Path, partSize, signer); err != nil {
			return err
		}
	}
	if o.JSON {
		return writeJSON(e.stdout, struct {
			*mirror.Result
			Parts *split.List `json:"parts,omitempty"`
		}{res, parts})
	}
	printFetchResult(e, res, signer != nil)
	if parts != nil {
		fmt.Fprintf(e.stdout, "split into %d parts of at most %s: %s.001 … and %s\n", parts.Count, humanBytes(partSize), res.Path, split.ListName(res.Path))
	}
	return nil
}

// splitBundle cuts a freshly written bundle into parts and removes the
// whole file, which the parts now stand for.
func splitBundle(c *cli.Context, path string, partSize int64, signer manifest.Signer) (*split.List, error) {
	l, err := split.Split(c.Context, path, "", partSize, signer)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", path, err)
	}
	return l, os.Remove(path)
}

func printFetchResult(e *env, res *mirror.Result, signed bool) {
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
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
			p.Name, p.Version, p.Repository, p.Tag, p.Commit, len(p.Blobs), humanBytes(p.Source.Size+n))
	}
	state := "signed"
	if !signed {
		state = "UNSIGNED"
	}
	fmt.Fprintf(e.stdout, "wrote %s (%s; %s downloaded, %d from cache)\n", res.Path, state, humanBytes(res.Downloaded), res.CacheHits)
}

// loadSigner opens the signing key named by --sign-key, or returns nil for
// --unsigned. Neither is a usage error: a bundle is signed unless asked not to.
func loadSigner(path string, unsigned bool, verb string) (manifest.Signer, error) {
	if unsigned {
		return nil, nil
	}
	if path == "" {
		return nil, usagef("%s: --sign-key FILE (or CCMIRROR_SIGN_KEY) is required; pass --unsigned to write an unsigned bundle", verb)
	}
	s, err := trust.LoadSigner(path, promptPassphrase)
	if err != nil {
		return nil, fmt.Errorf("%s: sign key: %w", verb, err)
	}
	return s, nil
}

// promptPassphrase asks for a key passphrase on the controlling terminal.
func promptPassphrase(keyPath string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%s is encrypted and there is no terminal to ask for its passphrase; set CCMIRROR_KEY_PASSPHRASE", keyPath)
	}
	defer tty.Close()
	fmt.Fprintf(tty, "Passphrase for %s: ", keyPath)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return p, err
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
