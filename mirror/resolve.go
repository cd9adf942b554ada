package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/scan"
)

// Releases lists the releases of OWNER/REPO, newest first, drafts
// included when the token can see them. sync uses it for "newest:N".
func (f *Fetcher) Releases(ctx context.Context, owner, repo string) ([]Release, error) {
	return f.src.releases(ctx, owner, repo)
}

// Resolve finds the release ref names without downloading anything: the
// one tagged ref.Version or, when ref has no version, the highest version
// (see RankReleases).
func (f *Fetcher) Resolve(ctx context.Context, ref Ref) (*Release, error) {
	rel, _, err := resolveRelease(ctx, f.src, ref, func(ctx context.Context) ([]Release, error) {
		return f.src.releases(ctx, ref.Owner, ref.Repo)
	})
	return rel, err
}

type releaseList struct {
	once sync.Once
	rels []Release
	err  error
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
	l.once.Do(func() { l.rels, l.err = r.f.src.releases(ctx, owner, repo) })
	return l.rels, l.err
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
	looked  []string      // where missing blobs were looked for
	note    string        // how "latest" was resolved, "" for a tag
	tree    *scan.Project // the scan of the source tree: node-side findings, template dependencies
	by      *projectPlan  // with --with-deps: the project whose templates included this one; nil for a ref given
}

func (p *projectPlan) label() string { return "fetch " + p.ref.Name() + "@" + p.rel.Tag }

// resolve does phase 1 for one ref.
func (r *fetchRun) resolve(ctx context.Context, ref Ref) (*projectPlan, error) {
	f := r.f
	// A tag named in the ref is looked up twice at once: its release and
	// its commit, one round trip instead of two. When the last fetch of
	// this tag found blobs on other releases, their list is asked for at
	// the same time too.
	early := startCommit(ctx, f.src, ref)
	defer r.listEarly(ctx, ref)()
	rel, note, err := resolveRelease(ctx, f.src, ref, func(ctx context.Context) ([]Release, error) {
		return r.allReleases(ctx, ref.Owner, ref.Repo)
	})
	if err != nil {
		early.drop()
		return nil, err
	}
	if note != "" {
		f.log.Info(note)
	}
	p := &projectPlan{ref: ref, rel: rel, note: note}
	// The tag's commit first: the source archive is known by it.
	if p.commit, err = early.commitOf(ctx, f.src, ref, rel.Tag); err != nil {
		return nil, upstreamWrap(err, "%s: resolve tag commit", p.label())
	}
	if err := r.fetchArchive(ctx, p); err != nil {
		return nil, err
	}
	src, err := scanArchive(ctx, f.cache.objectPath(p.archive.SHA256))
	if err != nil {
		return p, fmt.Errorf("%s: %w", p.label(), err)
	}
	ini, err := manifest.ParseProjectINI(bytes.NewReader(src.projectINI), ref.Repository()+"@"+rel.Tag+"/project.ini")
	if err != nil {
		return p, fmt.Errorf("%s: %w", p.label(), err)
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

	// What the nodes reach and the projects the templates include: read
	// once here, for fetch --with-deps and the readiness summary.
	if p.tree, err = scanSource(ctx, f.cache.objectPath(p.archive.SHA256), ini); err != nil {
		return p, fmt.Errorf("%s: %w", p.label(), err)
	}
	if err := r.locate(ctx, p, src); err != nil {
		return p, err
	}
	return p, nil
}

// fetchArchive gets the tag's source archive into the cache from the
// first of the source's archive URLs that serves it (the web host's, then
// the API's tarball endpoint for a private repository). The cache knows an
// archive by repository, tag, commit and kind, never by URL: GitHub makes
// the same archive for the same commit (an assumption: its archives have
// been byte-stable since 2023), so a warm fetch transfers nothing, and a
// tag moved to another commit is fetched again, with a warning.
func (r *fetchRun) fetchArchive(ctx context.Context, p *projectPlan) error {
	f := r.f
	label := p.label() + ": source archive"
	repo := strings.ToLower(p.ref.Repository())
	tagKey := "tag " + repo + " " + p.rel.Tag
	prev, known := f.cache.tagCommit(tagKey)
	if known && prev != p.commit {
		r.warn("tag moved to another commit since the last fetch: source archive fetched again",
			"repository", p.ref.Repository(), "tag", p.rel.Tag, "was", shortCommit(prev), "now", shortCommit(p.commit))
	}
	var err error
	locs := f.src.archiveURLs(p.ref.Owner, p.ref.Repo, p.rel)
	for i, loc := range locs {
		key := fmt.Sprintf("archive %s tag=%s commit=%s %s", repo, p.rel.Tag, p.commit, loc.kind)
		var obj object
		obj, err = r.fetchObject(ctx, key, dlRequest{label: label, url: loc.url, size: -1, header: f.src.header(loc.url, ""), immutable: true})
		if err == nil {
			p.archURL, p.archive = loc.url, obj
			if known && prev == p.commit {
				return nil // recorded already: a warm run writes nothing
			}
			if rerr := f.cache.recordTagCommit(tagKey, p.commit); rerr != nil {
				f.log.Debug("cache: tag commit not recorded", "tag", p.rel.Tag, "error", rerr.Error())
			}
			return nil
		}
		if i+1 == len(locs) || !errors.Is(err, ErrUpstream) || ctx.Err() != nil {
			break
		}
		f.log.Info("archive URL refused, trying the next", "url", loc.url, "next", locs[i+1].kind, "error", err.Error())
	}
	return err
}

// shortCommit is a commit id as messages show it.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
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

// othersKey names the cache hint that fetching ref's tag needed the
// list of the repository's other releases (a blob project.ini names is
// not among its release's assets).
func othersKey(ref Ref) string {
	return "hint others " + strings.ToLower(ref.Repository()) + " tag=" + ref.Version
}

// listEarly starts listing ref's repository's releases when the cache
// hints that resolving ref will need them (othersKey), and returns a
// function that waits for that listing to end.
func (r *fetchRun) listEarly(ctx context.Context, ref Ref) (wait func()) {
	if ref.IsLatest() || !r.f.cache.hint(othersKey(ref)) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = r.allReleases(ctx, ref.Owner, ref.Repo) // its error reaches locate, if it asks
	}()
	return func() { <-done }
}

// commitLookup is a tag's commit asked for before its release is known.
type commitLookup struct {
	tag    string
	cancel context.CancelFunc
	done   chan struct{}
	commit string
	err    error
}

// startCommit starts looking up the commit of the tag ref names; nil for
// a ref without a version (its tag is known only once resolved).
func startCommit(ctx context.Context, src source, ref Ref) *commitLookup {
	if ref.IsLatest() {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &commitLookup{tag: ref.Version, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.commit, l.err = src.commit(ctx, ref.Owner, ref.Repo, l.tag)
	}()
	return l
}

// commitOf returns the commit of tag: the early lookup's answer when it
// asked for that tag, else a lookup now.
func (l *commitLookup) commitOf(ctx context.Context, src source, ref Ref, tag string) (string, error) {
	if l != nil {
		if l.tag == tag {
			<-l.done
			l.cancel()
			return l.commit, l.err
		}
		l.drop()
	}
	return src.commit(ctx, ref.Owner, ref.Repo, tag)
}

// drop abandons the lookup and waits for its goroutine.
func (l *commitLookup) drop() {
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
}
