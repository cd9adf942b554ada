package syncjob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ccmirror/ccmirror/internal/ctxio"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/split"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/mirror"
	"github.com/ccmirror/ccmirror/mirror/blobstore"
)

// Options are what a run takes besides the config.
type Options struct {
	// Signer signs bundles and the index; nil loads Config.SignKey with
	// trust.LoadSigner (passphrase from CCMIRROR_KEY_PASSPHRASE only).
	Signer manifest.Signer
	// Token is the GitHub token; "" reads the variable Config.TokenEnv
	// names.
	Token string
	// CacheDir overrides Config.Cache.
	CacheDir string
	// Progress receives mirror's progress bar; it draws only on a
	// terminal, nil means none.
	Progress io.Writer
	// Log receives what happens; nil discards.
	Log *slog.Logger
	// HTTPClient is the base client for GitHub; nil means mirror's default.
	HTTPClient *http.Client
	// Blob tunes uploads to the publish URL.
	Blob blobstore.Options
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SplitSize, when positive, also cuts every new bundle into parts of
	// this size with a signed part list beside it, for removable media.
	SplitSize int64
}

// Summary is what a run did, printed as JSON by `ccmirror sync --json`.
type Summary struct {
	// Config is the config file; Output the output folder; Index the
	// index.json path.
	Config string `json:"config"`
	Output string `json:"output"`
	Index  string `json:"index"`
	// NothingNew is true when no bundle was written.
	NothingNew bool `json:"nothing_new"`
	// New are the bundles written by this run.
	New []Bundle `json:"new"`
	// Unchanged are the release versions already mirrored as they are on
	// GitHub now.
	Unchanged []Version `json:"unchanged"`
	// Changed are the releases whose assets changed on GitHub after they
	// were mirrored; each also has its new bundle in New (unless its
	// fetch failed, then it is in Failed too).
	Changed []Change `json:"changed_in_place"`
	// Published are the URLs uploaded by this run (SAS tokens left out).
	Published []string `json:"published"`
	// Failed are the policies, releases or uploads that failed; the run
	// went on with the others and returned an error.
	Failed []Failure `json:"failed"`
	// Downloaded is the number of bytes received from GitHub.
	Downloaded int64 `json:"bytes_downloaded"`
}

// Bundle is a bundle a run wrote.
type Bundle struct {
	Project    string   `json:"project"`
	Version    string   `json:"version"`
	Repository string   `json:"repository"`
	Tag        string   `json:"tag"`
	Commit     string   `json:"commit"`
	File       string   `json:"file"`
	Path       string   `json:"path"`
	Size       int64    `json:"size"`
	SHA256     string   `json:"sha256"`
	Revision   int      `json:"revision"`
	Policies   []string `json:"policies"`
	Downloaded int64    `json:"bytes_downloaded"`
	// Parts is the signed part list written beside the bundle with
	// Options.SplitSize.
	Parts string `json:"parts,omitempty"`
}

// Version is a release that needed nothing.
type Version struct {
	Project    string   `json:"project"`
	Version    string   `json:"version"`
	Repository string   `json:"repository"`
	Tag        string   `json:"tag"`
	File       string   `json:"file"`
	Policies   []string `json:"policies"`
}

// Change is a release whose assets were replaced on GitHub after it was
// mirrored.
type Change struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	// Assets are the names of the assets that differ (changed, added or
	// removed).
	Assets []string `json:"assets"`
	// Previous is the bundle made before the change; it is kept.
	Previous string `json:"previous"`
	// File is the new bundle, "" when its fetch failed.
	File    string `json:"file"`
	Message string `json:"message"`
}

// Failure is one thing that failed.
type Failure struct {
	Repository string `json:"repository,omitempty"`
	Policy     string `json:"policy,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Error      string `json:"error"`
}

// target is one release a run must have mirrored.
type target struct {
	proj     *Project
	rel      *mirror.Release
	policies []string
}

// run is the state of one Run.
type run struct {
	cfg    *Config
	o      Options
	log    *slog.Logger
	now    func() time.Time
	signer manifest.Signer
	f      *mirror.Fetcher
	ix     *Index
	sum    *Summary
	errs   []error
}

// Run does one pass of the mirror job: take the output folder's lock,
// resolve every version policy on GitHub, fetch each release not yet
// mirrored (or whose assets changed since) into a new bundle, record it in
// index.json (rewritten atomically and signed after each bundle), then, with
// a publish URL, upload every bundle the container lacks and finally the
// index. Releases already mirrored cost no download and no write.
//
// A failing policy, release or upload does not stop the others: the
// Summary lists it and the returned error joins every failure (matching
// mirror.ErrUpstream, manifest.ErrVerify… as their causes do) and the
// Summary says what was done. A failure before any work (the sign key, the
// output folder, a damaged index) returns a nil Summary; so does a held
// lock, at once, with an error matching staging.ErrConflict.
func Run(ctx context.Context, cfg *Config, o Options) (*Summary, error) {
	r := &run{cfg: cfg, o: o, log: o.Log, now: o.Now}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.sum = &Summary{
		Config:    cfg.Path,
		Output:    cfg.Output,
		Index:     filepath.Join(cfg.Output, IndexName),
		New:       []Bundle{},
		Unchanged: []Version{},
		Changed:   []Change{},
		Published: []string{},
		Failed:    []Failure{},
	}
	// Failures before any work (sign key, output folder, lock, index,
	// GitHub URL) end the run with no summary.
	if err := r.setup(); err != nil {
		return nil, err
	}
	lock, err := lockOutput(cfg.Output, r.now())
	if err != nil {
		return nil, err
	}
	defer lock.unlock()
	r.sweep()
	if r.ix, err = loadIndex(cfg.Output); err != nil {
		return nil, err
	}
	if err := r.newFetcher(); err != nil {
		return nil, err
	}

	targets := r.resolve(ctx)
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		r.mirror(ctx, t)
	}
	if err := ctx.Err(); err != nil {
		return r.sum, errors.Join(append(r.errs, fmt.Errorf("sync: %w", err))...)
	}
	r.sum.NothingNew = len(r.sum.New) == 0
	if cfg.Publish != "" {
		if err := r.publish(ctx); err != nil {
			r.fail(Failure{Error: err.Error()}, err)
		}
	}
	return r.sum, errors.Join(r.errs...)
}

// setup loads the signer and makes the output folder.
func (r *run) setup() error {
	r.signer = r.o.Signer
	if r.signer == nil {
		s, err := trust.LoadSigner(r.cfg.SignKey, nil)
		if err != nil {
			return fmt.Errorf("sync: sign key: %w", err)
		}
		r.signer = s
	}
	if err := os.MkdirAll(r.cfg.Output, 0o755); err != nil {
		return fmt.Errorf("sync: output: %w", err)
	}
	return nil
}

func (r *run) newFetcher() error {
	token := r.o.Token
	if token == "" && r.cfg.TokenEnv != "" {
		token = os.Getenv(r.cfg.TokenEnv)
		if token == "" && r.cfg.TokenEnv != DefaultTokenEnv {
			r.log.Warn("the token variable named by token_env is empty; using GitHub without a token (low rate limit)", "token_env", r.cfg.TokenEnv)
		}
	}
	cache := r.o.CacheDir
	if cache == "" {
		cache = r.cfg.Cache
	}
	f, err := mirror.NewFetcher(mirror.Options{
		GitHubURL:   r.cfg.GitHubURL,
		Token:       token,
		CacheDir:    cache,
		Concurrency: r.cfg.Concurrency,
		Signer:      r.signer,
		Progress:    r.o.Progress,
		Log:         r.log,
		HTTPClient:  r.o.HTTPClient,
		Now:         r.o.Now,
	})
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	r.f = f
	return nil
}

// fail records a failure and its error.
func (r *run) fail(f Failure, err error) {
	r.sum.Failed = append(r.sum.Failed, f)
	r.errs = append(r.errs, err)
	r.log.Error("sync step failed", "error", err.Error())
}

// resolve turns every project's policies into releases, each release once.
func (r *run) resolve(ctx context.Context) []*target {
	var out []*target
	for i := range r.cfg.Projects {
		p := &r.cfg.Projects[i]
		byTag := map[string]*target{}
		var list []mirror.Release
		listed := false
		add := func(rel *mirror.Release, pol string) {
			if t := byTag[rel.Tag]; t != nil {
				t.policies = append(t.policies, pol)
				return
			}
			t := &target{proj: p, rel: rel, policies: []string{pol}}
			byTag[rel.Tag] = t
			out = append(out, t)
		}
		for _, pol := range p.Versions {
			if ctx.Err() != nil {
				return out
			}
			repo := p.Ref.Repository()
			failed := func(err error) {
				r.fail(Failure{Repository: repo, Policy: pol.String(), Error: err.Error()},
					fmt.Errorf("sync %s %s: %w", repo, pol, err))
			}
			switch pol.Kind {
			case Pinned:
				if rel := findTag(list, pol.Tag); rel != nil {
					add(rel, pol.String())
					continue
				}
				rel, err := r.f.Resolve(ctx, mirror.Ref{Owner: p.Ref.Owner, Repo: p.Ref.Repo, Version: pol.Tag})
				if err != nil {
					failed(err)
					continue
				}
				add(rel, pol.String())
			case Latest:
				rel, err := r.f.Resolve(ctx, mirror.Ref{Owner: p.Ref.Owner, Repo: p.Ref.Repo})
				if err != nil {
					failed(err)
					continue
				}
				r.log.Debug("resolved", "repository", repo, "policy", pol.String(), "tag", rel.Tag)
				add(rel, pol.String())
			case Newest:
				if !listed {
					var err error
					if list, err = r.f.Releases(ctx, p.Ref.Owner, p.Ref.Repo); err != nil {
						failed(err)
						continue
					}
					listed = true
				}
				sel := NewestReleases(list, pol.N)
				if len(sel) == 0 {
					failed(fmt.Errorf("%s has no published release (drafts and prereleases do not count): %w", repo, mirror.ErrUpstream))
					continue
				}
				if len(sel) < pol.N {
					r.log.Info("fewer releases than asked for", "repository", repo, "policy", pol.String(), "releases", len(sel))
				}
				for j := range sel {
					add(&sel[j], pol.String())
				}
			}
		}
	}
	return out
}

func findTag(rels []mirror.Release, tag string) *mirror.Release {
	for i := range rels {
		if rels[i].Tag == tag && !rels[i].Draft {
			return &rels[i]
		}
	}
	return nil
}

// NewestReleases returns the n newest releases that are neither drafts nor
// prereleases, by publication time, newest first.
func NewestReleases(rels []mirror.Release, n int) []mirror.Release {
	var c []mirror.Release
	for _, rel := range rels {
		if !rel.Draft && !rel.Prerelease && rel.Tag != "" {
			c = append(c, rel)
		}
	}
	sort.SliceStable(c, func(i, j int) bool { return c[i].PublishedAt.After(c[j].PublishedAt) })
	if len(c) > n {
		c = c[:n]
	}
	return c
}

// mirror makes sure one release is mirrored as GitHub holds it now.
func (r *run) mirror(ctx context.Context, t *target) {
	repo, tag := t.proj.Ref.Repository(), t.rel.Tag
	prints := AssetsOf(t.rel)
	fp := Fingerprint(prints)
	prev := r.ix.Latest(repo, tag)
	if prev != nil && prev.Fingerprint == fp {
		r.log.Info("up to date", "repository", repo, "tag", tag, "bundle", prev.File)
		r.sum.Unchanged = append(r.sum.Unchanged, Version{
			Project: prev.Project, Version: prev.Version, Repository: repo, Tag: tag, File: prev.File, Policies: t.policies,
		})
		return
	}
	rev := 1
	var change *Change
	if prev != nil {
		rev = prev.Revision + 1
		diff := DiffAssets(prev.Assets, prints)
		msg := fmt.Sprintf("release %s@%s changed on GitHub after it was mirrored: assets %s differ", repo, tag, strings.Join(diff, ", "))
		if len(diff) == 0 {
			msg = fmt.Sprintf("release %s@%s changed on GitHub after it was mirrored: its asset list differs", repo, tag)
		}
		r.log.Warn(msg+"; keeping "+prev.File+" and writing a new bundle", "repository", repo, "tag", tag, "previous", prev.File)
		r.sum.Changed = append(r.sum.Changed, Change{Repository: repo, Tag: tag, Assets: nonNil(diff), Previous: prev.File, Message: msg})
		change = &r.sum.Changed[len(r.sum.Changed)-1]
	}
	b, err := r.fetch(ctx, t, rev)
	if err != nil {
		r.fail(Failure{Repository: repo, Policy: strings.Join(t.policies, ","), Tag: tag, Error: err.Error()}, err)
		return
	}
	if change != nil {
		change.File = b.File
	}
	r.sum.New = append(r.sum.New, *b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// fetch writes the bundle of one release as revision rev (or the next free
// one), records it in the index and saves the index.
func (r *run) fetch(ctx context.Context, t *target, rev int) (*Bundle, error) {
	repo, tag := t.proj.Ref.Repository(), t.rel.Tag
	label := "sync " + repo + "@" + tag
	tmp, err := tempName(r.cfg.Output)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	ref := mirror.Ref{Owner: t.proj.Ref.Owner, Repo: t.proj.Ref.Repo, Version: tag}
	res, err := r.f.Fetch(ctx, []mirror.Ref{ref}, tmp)
	if res != nil {
		r.sum.Downloaded += res.Downloaded
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	defer os.Remove(tmp) // gone already once placed
	for _, w := range res.Warnings {
		r.log.Warn("fetch warning", "repository", repo, "tag", tag, "warning", w)
	}
	if len(res.Manifest.Projects) != 1 || res.Manifest.Projects[0].Tag != tag {
		return nil, fmt.Errorf("%s: the bundle holds something else than release %s", label, tag)
	}
	mp := res.Manifest.Projects[0]
	name, rev, err := r.place(tmp, mp.Name, mp.Version, rev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	final := filepath.Join(r.cfg.Output, name)
	sha, size, err := ctxio.HashFile(ctx, final)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	var parts string
	if r.o.SplitSize > 0 {
		l, err := split.Split(ctx, final, "", r.o.SplitSize, r.signer)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		parts = filepath.Join(r.cfg.Output, split.ListName(l.Bundle))
	}
	prints := AssetsOf(t.rel)
	r.ix.Bundles = append(r.ix.Bundles, Entry{
		Project:     mp.Name,
		Version:     mp.Version,
		Repository:  repo,
		Tag:         tag,
		Commit:      mp.Commit,
		File:        name,
		Size:        size,
		SHA256:      sha,
		Created:     res.Manifest.Created,
		Revision:    rev,
		Fingerprint: Fingerprint(prints),
		Assets:      prints,
	})
	if err := r.saveIndex(); err != nil {
		// Keep the index in memory consistent with the one on disk.
		r.ix.Bundles = r.ix.Bundles[:len(r.ix.Bundles)-1]
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	r.log.Info("new bundle", "project", mp.Name, "version", mp.Version, "repository", repo, "tag", tag,
		"file", name, "size", size, "revision", rev, "downloaded", res.Downloaded)
	return &Bundle{
		Project: mp.Name, Version: mp.Version, Repository: repo, Tag: tag, Commit: mp.Commit,
		File: name, Path: final, Size: size, SHA256: sha, Revision: rev, Policies: t.policies,
		Downloaded: res.Downloaded, Parts: parts,
	}, nil
}

// tempName returns an unused name in dir for a bundle being fetched.
func tempName(dir string) (string, error) {
	f, err := os.CreateTemp(dir, ".ccmirror-sync-*.tar")
	if err != nil {
		return "", err
	}
	name := f.Name()
	f.Close()
	return name, nil
}

// place moves the fetched bundle tmp to its final name: revision rev, or
// the next one free in both the index and the folder. An existing file is
// never overwritten.
func (r *run) place(tmp, project, version string, rev int) (string, int, error) {
	for ; rev < 10000; rev++ {
		name := BundleName(project, version, rev)
		if r.ix.HasFile(name) {
			continue
		}
		final := filepath.Join(r.cfg.Output, name)
		err := os.Link(tmp, final)
		if err == nil {
			os.Remove(tmp)
			return name, rev, nil
		}
		if errors.Is(err, fs.ErrExist) {
			r.log.Warn("a file not listed in index.json has the bundle's name; leaving it alone", "file", final)
			continue
		}
		// No hard links on this file system: the lock keeps other syncs
		// out, so check and rename.
		if _, serr := os.Lstat(final); serr == nil {
			r.log.Warn("a file not listed in index.json has the bundle's name; leaving it alone", "file", final)
			continue
		}
		if err := os.Rename(tmp, final); err != nil {
			return "", 0, err
		}
		return name, rev, nil
	}
	return "", 0, fmt.Errorf("no free bundle name for %s %s", project, version)
}

// sweep removes what an interrupted run left: bundles being fetched and
// index files being written. It runs under the lock, so none is in use.
func (r *run) sweep() {
	for _, pat := range []string{".ccmirror-sync-*.tar*", "." + IndexName + ".tmp-*", "." + IndexSigName + ".tmp-*"} {
		m, _ := filepath.Glob(filepath.Join(r.cfg.Output, pat))
		for _, f := range m {
			if err := os.Remove(f); err == nil {
				r.log.Debug("removed a leftover of an interrupted run", "file", f)
			}
		}
	}
}

// loadIndex reads <dir>/index.json; a missing file is an empty index.
func loadIndex(dir string) (*Index, error) {
	path := filepath.Join(dir, IndexName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Index{Schema: IndexSchema, Bundles: []Entry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	ix, err := ParseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("sync: %s: %w (fix or move it away; the job does not overwrite a damaged index)", path, err)
	}
	return ix, nil
}

// saveIndex writes the next index.json and index.json.sig (writeIndex):
// only when a bundle was added, so an idle run changes no file.
func (r *run) saveIndex() error {
	return writeIndex(r.cfg.Output, r.ix, r.signer, r.now(), r.log)
}
