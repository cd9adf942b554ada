// Package mirror is the connected side of ccmirror: it resolves CycleCloud
// project releases on GitHub (or GitHub Enterprise), downloads each tag's
// source archive and every blob the project needs through a
// content-addressed cache, with retries, resume and verification, and writes
// them as one bundle (see manifest/FORMAT.md).
package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccmirror/ccmirror/internal/ctxio"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/sync/errgroup"
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
	// Have reports whether the server the bundle is for already holds blob
	// (a name from project.ini or a release asset) of project with this
	// sha256. Such blobs are not carried: Project.Required lists them.
	// nil carries everything (fetch --request sets it). Fetch calls it
	// from one goroutine at a time.
	Have func(project, blob, sha256 string) bool

	// RetryMax is how many times a failed request or interrupted download
	// is retried; 0 means DefaultRetryMax.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff; 0 means
	// DefaultRetryWaitMin / DefaultRetryWaitMax.
	RetryWaitMin, RetryWaitMax time.Duration
	// IdleTimeout is how long a download may deliver no data before it is
	// treated as stalled and resumed; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxRateLimitWait is the longest wait for GitHub's rate limit to
	// reset; a later reset fails with ErrUpstream. 0 means
	// DefaultMaxRateLimitWait.
	MaxRateLimitWait time.Duration
	// Now stamps the manifest; nil means time.Now.
	Now func() time.Time
}

// Fetcher turns release refs into bundles. It is safe for concurrent use.
type Fetcher struct {
	o      Options
	log    *slog.Logger
	api    *ghAPI
	client *retryablehttp.Client // every request goes through it
	policy httpPolicy
	ua     string
	cache  *cache
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
	// Warnings are notes a user should read (e.g. a project.ini version
	// that differs from the tag); they are also logged.
	Warnings []string
}

// NewFetcher checks o and prepares the cache and clients.
func NewFetcher(o Options) (*Fetcher, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	if o.RetryWaitMin <= 0 {
		o.RetryWaitMin = DefaultRetryWaitMin
	}
	if o.RetryWaitMax <= 0 {
		o.RetryWaitMax = DefaultRetryWaitMax
	}
	if o.RetryWaitMax < o.RetryWaitMin {
		o.RetryWaitMax = o.RetryWaitMin
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxRateLimitWait <= 0 {
		o.MaxRateLimitWait = DefaultMaxRateLimitWait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.GitHubURL != "" {
		u, err := url.Parse(o.GitHubURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("GitHub URL %q: want https://HOST/api/v3/", o.GitHubURL)
		}
	}
	if o.CacheDir == "" {
		d, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no user cache directory (%v): set a cache directory (--cache)", err)
		}
		o.CacheDir = filepath.Join(d, "ccmirror")
	}
	c, err := openCache(o.CacheDir)
	if err != nil {
		return nil, err
	}
	c.sweepTmp()

	base := o.HTTPClient
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.Concurrency + 2
		t.ResponseHeaderTimeout = o.IdleTimeout
		t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		base = &http.Client{Transport: t}
	} else {
		cp := *base
		base = &cp
	}
	if base.CheckRedirect == nil {
		base.CheckRedirect = stripAuthOnRedirect
	}
	policy := httpPolicy{
		retryMax:      o.RetryMax,
		waitMin:       o.RetryWaitMin,
		waitMax:       o.RetryWaitMax,
		maxRateWait:   o.MaxRateLimitWait,
		idle:          o.IdleTimeout,
		authenticated: o.Token != "",
		log:           log,
	}
	rcl := newRetryClient(base, policy)
	ua := "ccmirror/" + Version
	api, err := newGitHubAPI(rcl.StandardClient(), o.GitHubURL, o.Token, ua, o.MaxRateLimitWait)
	if err != nil {
		return nil, err
	}
	return &Fetcher{o: o, log: log, api: api, client: rcl, policy: policy, ua: ua, cache: c}, nil
}

// stripAuthOnRedirect follows up to 10 redirects and never forwards the
// token to another host (or port): asset and archive redirects lead to
// pre-signed download URLs that must not see it.
func stripAuthOnRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		req.Header.Del("Authorization")
	}
	return nil
}

// Releases lists the releases of OWNER/REPO, newest first, drafts
// included when the token can see them. sync uses it for "newest:N".
func (f *Fetcher) Releases(ctx context.Context, owner, repo string) ([]Release, error) {
	return f.api.releases(ctx, owner, repo)
}

// Resolve finds the release ref names (the latest one when ref has no
// version) without downloading anything.
func (f *Fetcher) Resolve(ctx context.Context, ref Ref) (*Release, error) {
	return f.api.release(ctx, ref)
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

	// Downloads run through one pool of Concurrency slots, each key
	// once: release assets start while the rest of the resolution (other
	// releases, blob locations) is still under way.
	ctx     context.Context // cancelled when Fetch returns
	slots   chan struct{}
	fmu     sync.Mutex
	futures map[string]*dlFuture
	wg      sync.WaitGroup
	ip      *inPlace // the bundle written in place, under fmu; nil for none
}

// dlFuture is a download started in the pool.
type dlFuture struct {
	done chan struct{}
	obj  object
	err  error
	sink *teeSink // mirrors the download into an in-place bundle
}

func (fu *dlFuture) wait(ctx context.Context) (object, error) {
	select {
	case <-fu.done:
		return fu.obj, fu.err
	case <-ctx.Done():
		return object{}, ctx.Err()
	}
}

// start downloads key into the cache in the pool, unless it is started
// already, and returns its future.
func (r *fetchRun) start(key string, req dlRequest) *dlFuture {
	r.fmu.Lock()
	defer r.fmu.Unlock()
	if fu := r.futures[key]; fu != nil {
		return fu
	}
	fu := &dlFuture{done: make(chan struct{}), sink: &teeSink{}}
	r.futures[key] = fu
	req.sink = fu.sink
	if r.ip != nil {
		r.ip.attach(key, fu.sink)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(fu.done)
		if fu.err = r.acquire(r.ctx); fu.err != nil {
			return
		}
		// The slot is free as soon as the body has arrived: the next
		// download starts while this one is synced and stored.
		var once sync.Once
		req.received = func() { once.Do(r.release) }
		defer req.received()
		fu.obj, fu.err = r.fetchObject(r.ctx, key, req)
	}()
	return fu
}

func (r *fetchRun) acquire(ctx context.Context) error {
	select {
	case r.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *fetchRun) release() { <-r.slots }

type releaseList struct {
	once sync.Once
	rels []Release
	err  error
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

// allReleases lists a repository's releases once per run.
func (r *fetchRun) allReleases(ctx context.Context, owner, repo string) ([]Release, error) {
	key := strings.ToLower(owner + "/" + repo)
	r.mu.Lock()
	l := r.relLists[key]
	if l == nil {
		l = &releaseList{}
		r.relLists[key] = l
	}
	r.mu.Unlock()
	l.once.Do(func() { l.rels, l.err = r.f.api.releases(ctx, owner, repo) })
	return l.rels, l.err
}

// blobPlan is one blob of a project: where it comes from and, once
// obtained, its content in the cache.
type blobPlan struct {
	name    string // path under blobs/
	origin  string // "source", "release", "blob-dir"
	release string // tag of the release it comes from (origin release)
	asset   *Asset // origin release
	file    string // origin blob-dir: the file
	obj     object // content, once obtained
	have    bool   // the target server holds it: list under Required
}

// projectPlan is one resolved ref.
type projectPlan struct {
	ref     Ref
	rel     *Release
	commit  string
	archURL string
	archive object
	ini     *manifest.ProjectINI
	blobs   []*blobPlan
	missing []string
	looked  []string // where missing blobs were looked for
}

func (p *projectPlan) label() string { return "fetch " + p.ref.Name() + "@" + p.rel.Tag }

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
	prog := newProgress(f.o.Progress)
	defer prog.done()
	dl := &downloader{client: f.client, policy: f.policy, ua: f.ua, progress: prog.add}
	rctx, cancel := context.WithCancel(ctx)
	run := &fetchRun{f: f, dl: dl, prog: prog, relLists: map[string]*releaseList{},
		ctx: rctx, slots: make(chan struct{}, f.o.Concurrency), futures: map[string]*dlFuture{}}
	defer run.wg.Wait()
	defer cancel()

	// Phase 1: resolve every ref, fetch its source archive, read
	// project.ini, decide where each blob comes from.
	plans := make([]*projectPlan, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(f.o.Concurrency)
	for i, ref := range refs {
		g.Go(func() error {
			p, err := run.resolve(gctx, ref)
			plans[i] = p
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, ctxErr(ctx, err)
	}
	plans, err := run.dedupe(plans)
	if err != nil {
		return nil, err
	}
	if err := missingError(plans); err != nil {
		return nil, err
	}

	// The bundle file is laid out now, when its layout is known, and
	// filled while the downloads run.
	ip := run.planInPlace(plans, &out)
	defer ip.discard()

	// Phase 2: download or copy every blob into the cache, once each.
	if err := run.obtain(ctx, plans, ip); err != nil {
		return nil, ctxErr(ctx, err)
	}

	// Phase 3: the manifest and the bundle.
	m, entries, err := run.build(plans)
	if err != nil {
		return nil, err
	}
	if out == "" {
		out = DefaultOutput(m.Projects, m.Created)
	}
	prog.describe("write")
	key := bundleKey(m, f.o.Signer)
	reused := false
	if cached, cm, ok := f.cache.cachedBundle(key, m); ok {
		if reused, err = linkBundle(ctx, cached, out); err != nil {
			return nil, fmt.Errorf("fetch: %w", err)
		}
		if reused {
			m = cm
			f.log.Info("unchanged since an earlier fetch: bundle reused from the cache", "path", out, "created", m.Created)
		}
	}
	if !reused {
		written := false
		if ip != nil {
			if written, err = ip.finish(ctx, m, entries); err != nil {
				return nil, err
			}
		}
		if !written {
			if err := f.writeBundle(ctx, out, m, entries); err != nil {
				return nil, err
			}
		}
		f.cache.keepBundle(key, out, m.Created)
	}
	res := &Result{
		Path:       out,
		Manifest:   m,
		Downloaded: run.net.Load(),
		Cached:     run.saved.Load(),
		CacheHits:  int(run.hits.Load()),
		Warnings:   run.warnings,
	}
	f.log.Info("bundle written", "path", out, "projects", len(m.Projects), "files", len(entries),
		"downloaded", res.Downloaded, "from_cache", res.Cached, "signed", f.o.Signer != nil)
	return res, nil
}

// ctxErr prefers the caller's cancellation over the errors it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("fetch: %w", ctx.Err())
	}
	return err
}

// resolve does phase 1 for one ref.
func (r *fetchRun) resolve(ctx context.Context, ref Ref) (*projectPlan, error) {
	f := r.f
	rel, err := f.api.release(ctx, ref)
	if err != nil {
		return nil, err
	}
	if ref.IsLatest() {
		f.log.Info("resolved latest release", "ref", ref.String(), "tag", rel.Tag)
	}
	p := &projectPlan{ref: ref, rel: rel}
	// The tag's commit and its source archive (as
	// github.com/O/R/archive/refs/tags/T.tar.gz), side by side.
	var commitErr error
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		p.commit, commitErr = f.api.commit(ctx, ref.Owner, ref.Repo, rel.Tag)
	}()
	archErr := r.fetchArchive(ctx, p)
	<-commitDone
	if commitErr != nil {
		return nil, upstreamWrap(commitErr, "%s: resolve tag commit", p.label())
	}
	if archErr != nil {
		return nil, archErr
	}
	scan, err := scanArchive(ctx, f.cache.objectPath(p.archive.SHA256))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.label(), err)
	}
	ini, err := manifest.ParseProjectINI(bytes.NewReader(scan.projectINI), ref.Repository()+"@"+rel.Tag+"/project.ini")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.label(), err)
	}
	if !manifest.ValidName(ini.Name) || !manifest.ValidName(ini.Version) {
		return nil, fmt.Errorf("%s: project.ini names project %q version %q: unsafe name: %w", p.label(), ini.Name, ini.Version, manifest.ErrVerify)
	}
	p.ini = ini
	if ini.Version != rel.Tag {
		r.warn("project.ini version differs from the tag; staging uses the project.ini version",
			"repository", ref.Repository(), "tag", rel.Tag, "version", ini.Version)
	}
	f.log.Info("resolved", "project", ini.Name, "version", ini.Version, "repository", ref.Repository(),
		"tag", rel.Tag, "commit", p.commit, "blobs", len(ini.Blobs), "assets", len(rel.Assets))

	if err := r.locate(ctx, p, scan); err != nil {
		return nil, err
	}
	return p, nil
}

// archiveURL is where the web host serves the tag archive,
// /OWNER/REPO/archive/refs/tags/TAG.tar.gz: on the host of the release's
// asset downloads (github.com, a GitHub Enterprise host, or a test
// server's download host), or, for a release without assets, on the host
// of its html_url.
func archiveURL(rel *Release) (string, bool) {
	for _, a := range rel.Assets {
		if u, ok := webURL(a.BrowserDownloadURL, "download", rel.Tag); ok {
			return u, true
		}
	}
	return webURL(rel.HTMLURL, "tag", rel.Tag)
}

// webURL turns a release page or asset URL, <base>/OWNER/REPO/releases/
// <kind>/..., into the tag archive URL on the same base.
func webURL(s, kind, tag string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", false
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	i := -1
	for j := len(segs) - 2; j >= 2; j-- {
		if segs[j] == "releases" && segs[j+1] == kind {
			i = j
			break
		}
	}
	if i < 0 {
		return "", false
	}
	prefix := strings.Join(segs[:i-2], "/")
	if prefix != "" {
		prefix = "/" + prefix
	}
	p := prefix + "/" + segs[i-2] + "/" + segs[i-1] + "/archive/refs/tags/" + tag + ".tar.gz"
	a := url.URL{Scheme: u.Scheme, Host: u.Host, Path: p}
	return a.String(), true
}

// fetchArchive downloads the tag's source archive into the cache. It uses
// the web host's archive URL; when that is unknown or refused (a private
// repository), the API's tarball endpoint, which redirects to the content
// (with the token, if any).
func (r *fetchRun) fetchArchive(ctx context.Context, p *projectPlan) error {
	label := p.label() + ": source archive"
	apiTarball := r.f.api.c.BaseURL.String() + repoPath(p.ref.Owner, p.ref.Repo) + "/tarball/" + url.PathEscape(p.rel.Tag)
	u, ok := archiveURL(p.rel)
	if !ok {
		u = apiTarball
	}
	obj, err := r.fetchObject(ctx, u, dlRequest{label: label, url: u, size: -1, header: r.apiHeader(u, "")})
	if err != nil && u != apiTarball && errors.Is(err, ErrUpstream) && ctx.Err() == nil {
		r.f.log.Info("archive URL refused, trying the API tarball endpoint", "url", u, "error", err.Error())
		u = apiTarball
		obj, err = r.fetchObject(ctx, u, dlRequest{label: label, url: u, size: -1, header: r.apiHeader(u, "")})
	}
	if err != nil {
		return err
	}
	p.archURL, p.archive = u, obj
	return nil
}

// apiHeader returns the headers for a request to u: the token only goes to
// the API host, never to the web or download hosts.
func (r *fetchRun) apiHeader(u, accept string) http.Header {
	h := http.Header{}
	if accept != "" {
		h.Set("Accept", accept)
	}
	if r.f.o.Token != "" && strings.HasPrefix(u, r.f.api.c.BaseURL.String()) {
		h.Set("Authorization", "Bearer "+r.f.o.Token)
	}
	return h
}

// fetchObject gets one download through the cache and accounts for it.
func (r *fetchRun) fetchObject(ctx context.Context, key string, req dlRequest) (object, error) {
	start := time.Now()
	obj, st, err := r.f.cache.fetch(ctx, r.dl, key, req)
	r.net.Add(st.net)
	if err != nil {
		return object{}, err
	}
	if st.hit {
		r.hits.Add(1)
		r.saved.Add(st.saved)
		r.f.log.Debug("cache hit", "file", req.label, "size", obj.Size)
	} else {
		r.f.log.Debug("downloaded", "file", req.label, "size", obj.Size, "sha256", obj.SHA256,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return obj, nil
}

// assetByName finds an uploaded asset named name (or, for a blob in a
// sub-folder of blobs/, its base name).
func assetByName(rel *Release, name string) *Asset {
	base := path.Base(name)
	var byBase *Asset
	for i := range rel.Assets {
		a := &rel.Assets[i]
		if a.State != "" && a.State != "uploaded" {
			continue
		}
		if a.Name == name {
			return a
		}
		if a.Name == base && byBase == nil {
			byBase = a
		}
	}
	return byBase
}

// locate decides where each blob comes from, in the spec's order: the
// tag's source tree, the release's assets, other releases' assets (newest
// first), the blob dirs. Every asset of the release is carried too.
func (r *fetchRun) locate(ctx context.Context, p *projectPlan, scan *sourceScan) error {
	f := r.f
	if f.o.Have == nil {
		// Every uploaded asset the source tree's blobs/ does not shadow
		// is carried whatever project.ini says: start downloading them
		// now, while the blobs it names are looked for elsewhere.
		for i := range p.rel.Assets {
			a := &p.rel.Assets[i]
			if (a.State != "" && a.State != "uploaded") || scan.blobs[a.Name] || !manifest.ValidBlobName(a.Name) {
				continue
			}
			r.start(r.assetRequest(p, &blobPlan{name: a.Name, origin: "release", release: p.rel.Tag, asset: a}))
		}
	}
	usedAsset := map[int64]bool{}
	names := map[string]bool{}
	fromSource := map[string]bool{}
	var others []Release
	othersListed := false
	for _, name := range p.ini.Blobs {
		if !manifest.ValidBlobName(name) {
			return fmt.Errorf("%s: project.ini names unsafe blob %q: %w", p.label(), name, manifest.ErrVerify)
		}
		names[name] = true
		bp := &blobPlan{name: name}
		switch {
		case scan.blobs[name]:
			bp.origin = "source"
			fromSource[name] = true
		case assetByName(p.rel, name) != nil:
			bp.origin, bp.release, bp.asset = "release", p.rel.Tag, assetByName(p.rel, name)
		default:
			if !othersListed {
				othersListed = true
				all, err := r.allReleases(ctx, p.ref.Owner, p.ref.Repo)
				if err != nil {
					return fmt.Errorf("%s: %w", p.label(), err)
				}
				for _, o := range all {
					if o.ID != p.rel.ID && o.Tag != p.rel.Tag && !o.Draft {
						others = append(others, o)
					}
				}
			}
			for i := range others {
				if a := assetByName(&others[i], name); a != nil {
					bp.origin, bp.release, bp.asset = "release", others[i].Tag, a
					f.log.Info("blob found on another release", "project", p.ini.Name, "blob", name, "release", others[i].Tag)
					break
				}
			}
			if bp.asset == nil {
				for _, d := range f.o.BlobDirs {
					if file, ok := findInDir(d, name); ok {
						bp.origin, bp.file = "blob-dir", file
						break
					}
				}
			}
		}
		if bp.origin == "" {
			p.missing = append(p.missing, name)
			continue
		}
		if bp.asset != nil {
			usedAsset[bp.asset.ID] = true
		}
		p.blobs = append(p.blobs, bp)
	}
	// Everything the manual procedure would put into blobs/ travels too,
	// listed or not: the files committed under the source tree's blobs/
	// and every asset of the release.
	var unlisted []string
	for name := range scan.blobs {
		if !names[name] {
			unlisted = append(unlisted, name)
		}
	}
	sort.Strings(unlisted)
	for _, name := range unlisted {
		names[name] = true
		fromSource[name] = true
		p.blobs = append(p.blobs, &blobPlan{name: name, origin: "source"})
	}
	for i := range p.rel.Assets {
		a := &p.rel.Assets[i]
		if usedAsset[a.ID] || (a.State != "" && a.State != "uploaded") {
			continue
		}
		if names[a.Name] {
			if fromSource[a.Name] {
				f.log.Debug("asset shadowed by the source tree's blobs/", "project", p.ini.Name, "asset", a.Name)
			}
			continue
		}
		if !manifest.ValidBlobName(a.Name) {
			r.warn("release asset with an unusable name not carried", "repository", p.ref.Repository(), "tag", p.rel.Tag, "asset", a.Name)
			continue
		}
		names[a.Name] = true
		p.blobs = append(p.blobs, &blobPlan{name: a.Name, origin: "release", release: p.rel.Tag, asset: a})
	}
	if len(fromSource) > 0 {
		objs, err := extractBlobs(ctx, f.cache, f.cache.objectPath(p.archive.SHA256), scan.top, fromSource)
		if err != nil {
			return fmt.Errorf("%s: %w", p.label(), err)
		}
		for _, bp := range p.blobs {
			if bp.origin == "source" {
				bp.obj = objs[bp.name]
			}
		}
	}
	if len(p.missing) > 0 {
		p.looked = []string{fmt.Sprintf("the source tree's blobs/ at tag %s", p.rel.Tag), fmt.Sprintf("the assets of release %s", p.rel.Tag)}
		if len(others) == 0 {
			p.looked = append(p.looked, fmt.Sprintf("no other release of %s", p.ref.Repository()))
		} else {
			tags := make([]string, len(others))
			for i, o := range others {
				tags[i] = o.Tag
			}
			p.looked = append(p.looked, fmt.Sprintf("the assets of %d other release(s) of %s (%s)", len(others), p.ref.Repository(), strings.Join(tags, ", ")))
		}
		if len(f.o.BlobDirs) == 0 {
			p.looked = append(p.looked, "no --blob-dir given")
		} else {
			p.looked = append(p.looked, "--blob-dir "+strings.Join(f.o.BlobDirs, ", "))
		}
	}
	return nil
}

// findInDir looks for a blob as dir/name, then dir/base(name).
func findInDir(dir, name string) (string, bool) {
	for _, c := range []string{filepath.Join(dir, filepath.FromSlash(name)), filepath.Join(dir, path.Base(name))} {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c, true
		}
	}
	return "", false
}

// missingError names every blob found nowhere, per project, and where it
// was looked for.
func missingError(plans []*projectPlan) error {
	var msgs []string
	for _, p := range plans {
		if len(p.missing) == 0 {
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s: %d blob(s) not found: %s (looked in %s)",
			p.label(), len(p.missing), strings.Join(p.missing, ", "), strings.Join(p.looked, "; ")))
	}
	if len(msgs) == 0 {
		return nil
	}
	return upstreamf("%s", strings.Join(msgs, "\n"))
}

// dedupe drops refs that resolved to the same release and rejects two
// different releases claiming one project version.
func (r *fetchRun) dedupe(plans []*projectPlan) ([]*projectPlan, error) {
	var out []*projectPlan
	seen := map[string]*projectPlan{}
	for _, p := range plans {
		k := p.ini.Name + "@" + p.ini.Version
		if q := seen[k]; q != nil {
			if strings.EqualFold(q.ref.Repository(), p.ref.Repository()) && q.rel.Tag == p.rel.Tag {
				continue
			}
			return nil, fmt.Errorf("fetch: %s@%s and %s@%s both give project %s version %s",
				q.ref.Repository(), q.rel.Tag, p.ref.Repository(), p.rel.Tag, p.ini.Name, p.ini.Version)
		}
		seen[k] = p
		out = append(out, p)
	}
	return out, nil
}

// assetRequest is how an asset is downloaded: with a token through the
// API URL (Accept: application/octet-stream, 302 to the download host),
// which also works for private repositories; without one from the public
// browser_download_url, which costs no API rate limit.
func (r *fetchRun) assetRequest(p *projectPlan, bp *blobPlan) (key string, req dlRequest) {
	a := bp.asset
	key = a.URL
	if key == "" {
		key = a.BrowserDownloadURL
	}
	u := a.BrowserDownloadURL
	if u == "" || (r.f.o.Token != "" && a.URL != "") {
		u = a.URL
	}
	req = dlRequest{
		label:  fmt.Sprintf("%s: blob %s (release %s)", p.label(), bp.name, bp.release),
		url:    u,
		header: r.apiHeader(u, "application/octet-stream"),
		size:   a.Size,
		digest: a.SHA256(),
	}
	if a.Digest != "" && req.digest == "" {
		r.f.log.Debug("asset digest in an unknown algorithm, not checked", "asset", a.Name, "digest", a.Digest)
	}
	return key, req
}

// obtain is phase 2: every blob not yet in the cache is downloaded (or
// copied from a blob dir), in parallel, each distinct file once.
func (r *fetchRun) obtain(ctx context.Context, plans []*projectPlan, ip *inPlace) error {
	f := r.f
	type task struct {
		key   string
		req   dlRequest
		file  string // blob-dir copy
		obj   object
		users []*blobPlan
	}
	tasks := map[string]*task{}
	var order []*task
	var expect int64
	for _, p := range plans {
		for _, bp := range p.blobs {
			if bp.origin == "source" {
				r.checkHave(p, bp)
				continue
			}
			// A blob the server holds (known by GitHub's digest) is not
			// even downloaded.
			if bp.asset != nil && bp.asset.SHA256() != "" && f.o.Have != nil &&
				f.o.Have(p.ini.Name, bp.name, bp.asset.SHA256()) {
				bp.have = true
				bp.obj = object{SHA256: bp.asset.SHA256(), Size: bp.asset.Size}
				continue
			}
			var t *task
			if bp.asset != nil {
				key, req := r.assetRequest(p, bp)
				if t = tasks[key]; t == nil {
					t = &task{key: key, req: req}
					if !(req.digest != "" && f.cache.has(req.digest, req.size)) {
						expect += req.size
					}
				}
			} else {
				key := "file:" + bp.file
				if t = tasks[key]; t == nil {
					t = &task{key: key, file: bp.file}
				}
			}
			if tasks[t.key] == nil {
				tasks[t.key] = t
				order = append(order, t)
			}
			t.users = append(t.users, bp)
		}
	}
	r.prog.expect(expect)
	r.prog.describe("download")
	g, gctx := errgroup.WithContext(ctx)
	if ip != nil {
		// What is in the cache already goes into place beside the downloads.
		for _, p := range plans {
			g.Go(func() error { return ip.fill(gctx, manifest.SourcePath(p.ini.Name, p.ini.Version), p.archive, nil) })
			for _, bp := range p.blobs {
				if bp.origin == "source" {
					g.Go(func() error { return ip.fill(gctx, manifest.BlobPath(p.ini.Name, bp.name), bp.obj, nil) })
				}
			}
		}
	}
	for _, t := range order {
		var fu *dlFuture
		if t.file == "" {
			fu = r.start(t.key, t.req)
		}
		g.Go(func() error {
			var err error
			if t.file != "" {
				if err = r.acquire(gctx); err != nil {
					return err
				}
				t.obj, err = r.copyFile(gctx, t.file)
				r.release()
				if err != nil {
					return fmt.Errorf("%s: blob-dir file %s: %w", t.users[0].name, t.file, err)
				}
			} else if t.obj, err = fu.wait(gctx); err != nil {
				return err
			}
			for _, bp := range t.users {
				bp.obj = t.obj
			}
			if ip != nil {
				var sink *teeSink
				if fu != nil {
					sink = fu.sink
				}
				for _, p := range plans {
					for _, bp := range t.users {
						if slices.Contains(p.blobs, bp) {
							if err := ip.fill(gctx, manifest.BlobPath(p.ini.Name, bp.name), t.obj, sink); err != nil {
								return err
							}
						}
					}
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, p := range plans {
		for _, bp := range p.blobs {
			if !bp.have && bp.origin != "source" {
				r.checkHave(p, bp)
			}
		}
	}
	return nil
}

// checkHave asks Options.Have about a blob whose content is known.
func (r *fetchRun) checkHave(p *projectPlan, bp *blobPlan) {
	if r.f.o.Have != nil && r.f.o.Have(p.ini.Name, bp.name, bp.obj.SHA256) {
		bp.have = true
	}
}

// copyFile copies a --blob-dir file into the cache, hashing it on the way,
// so the bundle carries exactly what was hashed.
func (r *fetchRun) copyFile(ctx context.Context, file string) (object, error) {
	fh, err := os.Open(file)
	if err != nil {
		return object{}, err
	}
	defer fh.Close()
	sha, n, err := r.f.cache.put(ctx, fh)
	if err != nil {
		return object{}, err
	}
	return object{SHA256: sha, Size: n}, nil
}

// build is phase 3: the manifest and the bundle entries.
func (r *fetchRun) build(plans []*projectPlan) (*manifest.Manifest, []manifest.Entry, error) {
	return r.buildWith(plans, nil)
}

// buildWith is build with each blob's content given by objOf (nil: the
// blob's own), to plan a bundle before its content is known.
func (r *fetchRun) buildWith(plans []*projectPlan, objOf func(*blobPlan) object) (*manifest.Manifest, []manifest.Entry, error) {
	f := r.f
	m := &manifest.Manifest{
		Schema:  manifest.Schema,
		Created: f.o.Now().UTC().Truncate(time.Second),
		Tool:    "ccmirror " + Version,
	}
	open := map[string]string{} // bundle path -> cache object
	carried := map[string]manifest.Blob{}
	for _, p := range plans {
		name, version := p.ini.Name, p.ini.Version
		mp := manifest.Project{
			Name:       name,
			Version:    version,
			Repository: p.ref.Repository(),
			Tag:        p.rel.Tag,
			Commit:     p.commit,
			ReleaseURL: p.rel.HTMLURL,
			Source: manifest.File{
				Path:   manifest.SourcePath(name, version),
				Size:   p.archive.Size,
				SHA256: p.archive.SHA256,
				URL:    p.archURL,
			},
			Blobs: []manifest.Blob{},
		}
		open[mp.Source.Path] = f.cache.objectPath(p.archive.SHA256)
		for _, bp := range p.blobs {
			obj := bp.obj
			if objOf != nil {
				obj = objOf(bp)
			}
			b := manifest.Blob{
				Name:    bp.name,
				Size:    obj.Size,
				SHA256:  obj.SHA256,
				Release: bp.release,
				Origin:  bp.origin,
			}
			if bp.asset != nil {
				b.URL = bp.asset.BrowserDownloadURL
				if b.URL == "" {
					b.URL = bp.asset.URL
				}
				b.Digest = bp.asset.Digest
			}
			if bp.have {
				mp.Required = append(mp.Required, b)
				continue
			}
			b.Path = manifest.BlobPath(name, bp.name)
			if prev, ok := carried[b.Path]; ok && (prev.SHA256 != b.SHA256 || prev.Size != b.Size) {
				return nil, nil, fmt.Errorf("fetch: blob %s of project %s differs between the versions fetched (%s from %s, %s from %s); fetch them into separate bundles",
					bp.name, name, prev.SHA256, originText(prev), b.SHA256, originText(b))
			}
			carried[b.Path] = b
			open[b.Path] = f.cache.objectPath(obj.SHA256)
			mp.Blobs = append(mp.Blobs, b)
		}
		m.Projects = append(m.Projects, mp)
	}
	if err := m.Validate(); err != nil {
		return nil, nil, fmt.Errorf("fetch: manifest: %w", err)
	}
	files := m.Files()
	entries := make([]manifest.Entry, 0, len(files))
	for _, fl := range files {
		obj := open[fl.Path]
		entries = append(entries, manifest.Entry{
			Path:   fl.Path,
			Size:   fl.Size,
			SHA256: fl.SHA256,
			Mode:   0o644,
			Open:   func() (io.ReadCloser, error) { return os.Open(obj) },
			// Hashed when stored and stamped unchanged since: copied
			// without hashing again.
			Verified: f.cache.intact(fl.SHA256, fl.Size),
		})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return m, entries, nil
}

func originText(b manifest.Blob) string {
	if b.Release != "" {
		return "release " + b.Release
	}
	return b.Origin
}

// writeBundle writes the bundle to a temporary file beside out, syncs it
// and renames it into place; on any failure or cancellation the temporary
// file is removed and out is untouched.
func (f *Fetcher) writeBundle(ctx context.Context, out string, m *manifest.Manifest, entries []manifest.Entry) (err error) {
	if st, err := os.Stat(out); err == nil && st.IsDir() {
		return fmt.Errorf("fetch: output %s is a directory", out)
	}
	dir := filepath.Dir(out)
	tmp, err := os.CreateTemp(dir, filepath.Base(out)+".partial-*")
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// Reads stop at cancellation even inside one large payload file
	// (verified entries are copied in chunks that check it).
	wrapped := make([]manifest.Entry, len(entries))
	for i, e := range entries {
		if e.Verified {
			wrapped[i] = e
			continue
		}
		open := e.Open
		e.Open = func() (io.ReadCloser, error) {
			rc, err := open()
			if err != nil {
				return nil, err
			}
			return ctxReadCloser{ctxio.NewReader(ctx, rc), rc}, nil
		}
		wrapped[i] = e
	}
	// Unbuffered: verified payloads go from cache file to bundle file in
	// the kernel; the rest is written in large chunks.
	if err = manifest.WriteBundle(ctx, &writebackFile{File: tmp}, m, wrapped, f.o.Signer); err != nil {
		return fmt.Errorf("fetch: write %s: %w", out, ctxErr(ctx, err))
	}
	if err = ctx.Err(); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fetch: write %s: %w", out, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("fetch: write %s: %w", out, err)
	}
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err = os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// writebackFile starts the disk writing of what is written to it every
// writebackChunk bytes, so the fsync that ends the bundle finds little
// left. ReadFrom keeps os.File's in-kernel copy.
type writebackFile struct {
	*os.File
	off, kicked int64
}

func (w *writebackFile) Write(p []byte) (int, error) {
	n, err := w.File.Write(p)
	w.advance(int64(n))
	return n, err
}

func (w *writebackFile) ReadFrom(r io.Reader) (int64, error) {
	n, err := w.File.ReadFrom(r)
	w.advance(n)
	return n, err
}

func (w *writebackFile) advance(n int64) {
	w.off += n
	if w.off-w.kicked >= writebackChunk {
		startWriteback(w.File, w.kicked, w.off-w.kicked)
		w.kicked = w.off
	}
}

type ctxReadCloser struct {
	io.Reader
	io.Closer
}
