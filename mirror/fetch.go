// Package mirror is the connected side of ccmirror: it resolves CycleCloud
// project releases on GitHub (or GitHub Enterprise), downloads each tag's
// source archive and every blob the project needs through a
// content-addressed cache, with retries, resume and verification, and writes
// them as one bundle (see manifest/FORMAT.md).
//
// A Fetch runs in phases, one file each: client.go sets up the clients
// and the cache; resolve.go resolves refs through a source (source.go;
// github.go is the GitHub API implementation, the only code that knows its
// base URL); locate.go decides where each blob comes from; obtain.go gets
// every file into the cache through the download pool (pool.go, with
// download.go, retry.go and cache.go underneath); assemble.go builds the
// manifest; write.go writes the bundle, or inplace.go fills it in place
// while the downloads run.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/scan"
	"github.com/hashicorp/go-retryablehttp"
)

// Version is the tool version written into every manifest ("ccmirror
// <Version>"); the build sets it with -ldflags "-X".
var Version = "dev"

// Options configures a Fetcher. The zero value fetches from github.com,
// unsigned, with the default cache and policies.
type Options struct {
	// GitHubURL is the API base URL; "" means https://api.github.com/.
	// GitHub Enterprise: https://HOST/api/v3/.
	GitHubURL string
	// Token authenticates API calls (and asset downloads through the API).
	Token string
	// CacheDir holds the download cache; "" means
	// os.UserCacheDir()/ccmirror.
	CacheDir string
	// Concurrency bounds parallel downloads; 0 means DefaultConcurrency.
	Concurrency int
	// BlobDirs are searched, in order, for blobs found neither in the
	// source tree nor on any release (--blob-dir).
	BlobDirs []string
	// Signer signs the bundle; nil writes an unsigned bundle.
	Signer manifest.Signer
	// Progress receives the progress bar when it is a terminal; nil or
	// anything else means no bar, only log lines.
	Progress io.Writer
	// Log receives what happens; nil discards.
	Log *slog.Logger
	// HTTPClient is the base client every request goes through (its
	// Transport and redirect policy); nil means a tuned default.
	HTTPClient *http.Client
	// WithDeps adds, transitively, every project the cluster templates of
	// the fetched releases include ([[[cluster-init
	// cyclecloud/NAME:SPEC[:VERSION]]]] naming a known short name, see
	// KnownProjects): the version the template gives, else the latest by
	// RankReleases. A project version already in the bundle is not added
	// again (a dependency without a version is met by any version of its
	// repository), so cycles end. Without it, Result.LeftOut lists them.
	WithDeps bool
	// Have reports whether the server the bundle is for already holds blob
	// (a name from project.ini or a release asset) of project with this
	// sha256. Such blobs are not carried: Project.Required lists them.
	// nil carries everything (fetch --request sets it). Fetch calls it
	// from one goroutine at a time.
	Have func(project, blob, sha256 string) bool
	// Replaces gives the staged print of the incomplete version folder
	// name/version the requesting server holds ("" for none), recorded as
	// the bundle's Project.Replaces so install may repair that folder
	// (fetch --request sets it).
	Replaces func(name, version string) string

	// RetryMax is how many times a failed request or interrupted download
	// is retried; 0 means DefaultRetryMax.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff; 0 means
	// DefaultRetryWaitMin / DefaultRetryWaitMax.
	RetryWaitMin, RetryWaitMax time.Duration
	// IdleTimeout is how long a download may deliver no data before it is
	// treated as stalled and resumed; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// DownloadTimeout is the total time one download may take, retries
	// and resumes included; 0 means DefaultDownloadTimeout.
	DownloadTimeout time.Duration
	// MaxDownloadBytes bounds a download whose size GitHub does not
	// announce (source archives; assets are bounded by their size); 0
	// means DefaultMaxDownloadBytes.
	MaxDownloadBytes int64
	// MaxAPIBytes bounds one API answer; 0 means DefaultMaxAPIBytes.
	MaxAPIBytes int64
	// MaxRateLimitWait is the longest wait for GitHub's rate limit to
	// reset; a later reset fails with ErrUpstream. 0 means
	// DefaultMaxRateLimitWait.
	MaxRateLimitWait time.Duration
	// Now stamps the manifest; nil means time.Now.
	Now func() time.Time
	// Notice receives one line for each wait a user should see: a retry
	// wait over NoticeWait, the cache lock held by another process. nil
	// drops them (they are still logged).
	Notice func(line string)
}

// Fetcher turns release refs into bundles. It is safe for concurrent use.
type Fetcher struct {
	o      Options
	log    *slog.Logger
	src    source                // where releases come from (the GitHub API)
	client *retryablehttp.Client // every request goes through it
	policy httpPolicy
	ua     string
	cache  *cache
	slots  chan struct{}  // the download slots, Concurrency of them, shared by every Fetch
	prog   sharedProgress // the one progress bar of every Fetch under way
}

// Result is what Fetch produced.
type Result struct {
	// Path is the bundle written.
	Path string
	// Manifest is the bundle's manifest.
	Manifest *manifest.Manifest
	// Downloaded is the number of bytes received over the network
	// (archives and assets, retries included).
	Downloaded int64
	// Cached is the number of bytes reused from the cache instead.
	Cached int64
	// CacheHits is the number of files reused from the cache.
	CacheHits int
	// Resolved says what each ref resolved to and, for "latest", why.
	Resolved []Resolution
	// LeftOut lists the projects the templates include that the bundle
	// does not carry: all of them without Options.WithDeps, with it those
	// no repository is known for.
	LeftOut []LeftOut `json:"-"`
	// Readiness is the scan (package scan) of every project version the
	// bundle carries: what its nodes will still reach at boot. Nil when
	// the scan failed (a warning says why).
	Readiness *scan.Report `json:"-"`
	// Warnings are notes a user should read (e.g. a project.ini version
	// that differs from the tag); they are also logged.
	Warnings []string
}

// Resolution is what one ref of a Fetch resolved to.
type Resolution struct {
	// Ref is the ref as given, NAME@VERSION ("slurm@latest").
	Ref string
	// Tag is the release tag it resolved to.
	Tag string
	// Note, for "latest", is the one line saying what was chosen and why:
	// "slurm latest → 4.0.9 (highest version; GitHub marks 3.0.13 latest)".
	Note string `json:",omitempty"`
}

// DefaultOutput is the bundle name Fetch uses when out is "": for one
// project "<name>-<version>.tar", for several
// "ccmirror-<YYYYMMDD>-<HHMMSS>.tar" (UTC creation time), in the current
// directory.
func DefaultOutput(projects []manifest.Project, created time.Time) string {
	if len(projects) == 1 {
		return projects[0].Name + "-" + projects[0].Version + ".tar"
	}
	return "ccmirror-" + created.UTC().Format("20060102-150405") + ".tar"
}

// fetchRun is the state of one Fetch call.
type fetchRun struct {
	f    *Fetcher
	dl   *downloader
	prog *progress

	net, saved atomic.Int64
	hits       atomic.Int64

	mu       sync.Mutex
	warnings []string
	relLists map[string]*releaseList // OWNER/REPO -> every release
	leftOut  []LeftOut

	pool *pool // the downloads
}

func (r *fetchRun) warn(msg string, args ...any) {
	r.f.log.Warn(msg, args...)
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i+1 < len(args); i += 2 {
		fmt.Fprintf(&b, " %v=%v", args[i], args[i+1])
	}
	r.mu.Lock()
	r.warnings = append(r.warnings, b.String())
	r.mu.Unlock()
}

// Fetch resolves refs, downloads their source archives and blobs and
// writes one bundle holding them all to out ("" means DefaultOutput in the
// current directory). The bundle is written to a temporary file beside out
// and renamed into place only when complete: a failed or cancelled fetch
// leaves no bundle. Upstream failures (network, GitHub, rate limit, missing
// release or blob) match ErrUpstream; content that fails verification
// matches manifest.ErrVerify.
func (f *Fetcher) Fetch(ctx context.Context, refs []Ref, out string) (*Result, error) {
	if len(refs) == 0 {
		return nil, errors.New("fetch: no project given")
	}
	if out != "" {
		// Fail before downloading anything when the bundle cannot be written.
		if st, err := os.Stat(out); err == nil && st.IsDir() {
			return nil, fmt.Errorf("fetch: output %s is a directory", out)
		}
		if st, err := os.Stat(filepath.Dir(out)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("fetch: output directory %s does not exist", filepath.Dir(out))
		}
	}
	what := make([]string, len(refs))
	for i, r := range refs {
		what[i] = r.String()
	}
	release, err := f.cache.share(ctx, "fetching "+strings.Join(what, " "), f.o.Notice)
	if err != nil {
		return nil, err
	}
	defer release()
	prog := f.prog.open(f.o.Progress)
	defer f.prog.close()
	dl := &downloader{client: f.client, policy: f.policy, ua: f.ua, progress: prog.add}
	rctx, cancel := context.WithCancel(ctx)
	run := &fetchRun{f: f, dl: dl, prog: prog, relLists: map[string]*releaseList{}}
	run.pool = newPool(rctx, f.slots, run.fetchObject)
	defer func() { run.pool.wait() }()
	defer cancel()

	var (
		plans   []*projectPlan
		m       *manifest.Manifest
		entries []manifest.Entry
	)
	for healed := false; ; healed = true {
		plans, m, entries, err = run.produce(ctx, refs, &out)
		if err == nil || healed || !errors.Is(err, manifest.ErrVerify) || ctx.Err() != nil {
			break
		}
		// Bytes that fail their hash on the way into the bundle may be a
		// cache object changed on disk: drop what no longer matches and
		// run once more, downloading it again. Nothing unchecked is
		// signed either way.
		bad := run.dropChanged(ctx, plans)
		if len(bad) == 0 {
			break
		}
		run.warn("cached files changed on disk since they were stored: dropped and downloaded again", "files", strings.Join(bad, ", "))
		run.pool.wait()
		run.pool = newPool(rctx, f.slots, run.fetchObject)
		run.relLists = map[string]*releaseList{}
	}
	if err != nil {
		return nil, err
	}
	res := &Result{
		Path:       out,
		Manifest:   m,
		Downloaded: run.net.Load(),
		Cached:     run.saved.Load(),
		CacheHits:  int(run.hits.Load()),
		LeftOut:    run.leftOut,
	}
	if res.Readiness, err = run.readiness(ctx, plans); err != nil {
		run.warn("readiness scan failed; run ccmirror scan on the bundle", "error", err.Error())
	}
	res.Warnings = run.warnings
	for _, p := range plans {
		res.Resolved = append(res.Resolved, Resolution{Ref: p.ref.String(), Tag: p.rel.Tag, Note: p.note})
	}
	f.log.Info("bundle written", "path", out, "projects", len(m.Projects), "files", len(entries),
		"downloaded", res.Downloaded, "from_cache", res.Cached, "signed", f.o.Signer != nil)
	return res, nil
}

// produce is one pass of a fetch: resolve every ref, get every file into
// the cache, write the bundle to *out (set when ""). plans is what was
// resolved so far, also on failure.
func (r *fetchRun) produce(ctx context.Context, refs []Ref, out *string) ([]*projectPlan, *manifest.Manifest, []manifest.Entry, error) {
	run, f := r, r.f
	prog := r.prog
	// Phase 1: resolve every ref (and with WithDeps every dependency),
	// fetch its source archive, read project.ini and scan it, decide
	// where each blob comes from.
	plans, left, err := r.resolveAll(ctx, refs)
	if err != nil {
		return plans, nil, nil, err
	}
	r.leftOut = left
	if err := missingError(plans); err != nil {
		return plans, nil, nil, err
	}

	// The bundle file is laid out now, when its layout is known, and
	// filled while the downloads run.
	ip := run.planInPlace(plans, out)
	defer ip.discard()

	// Phase 2: download or copy every blob into the cache, once each.
	if err := run.obtain(ctx, plans, ip); err != nil {
		return plans, nil, nil, ctxErr(ctx, err)
	}

	// Phase 3: the manifest and the bundle.
	m, entries, err := run.build(plans)
	if err != nil {
		return plans, nil, nil, err
	}
	if *out == "" {
		*out = DefaultOutput(m.Projects, m.Created)
	}
	f.sweepTemps(*out)
	prog.describe("write")
	key := bundleKey(m, f.o.Signer)
	reused := false
	if cached, cm, ok := f.cache.cachedBundle(key, m); ok {
		if reused, err = linkBundle(ctx, cached, *out); err != nil {
			return plans, nil, nil, fmt.Errorf("fetch: %w", err)
		}
		if reused {
			m = cm
			f.log.Info("unchanged since an earlier fetch: bundle reused from the cache", "path", *out, "created", m.Created)
		}
	}
	if !reused {
		written := false
		if ip != nil {
			if written, err = ip.finish(ctx, m, entries); err != nil {
				return plans, nil, nil, err
			}
		}
		if !written {
			if err := f.writeBundle(ctx, *out, m, entries); err != nil {
				return plans, nil, nil, err
			}
		}
		f.cache.keepBundle(key, *out, m.Created)
	}
	return plans, m, entries, nil
}

// ctxErr prefers the caller's cancellation over the errors it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("fetch: %w", ctx.Err())
	}
	return err
}
