package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ccmirror/ccmirror/manifest"
)

// Releases lists the releases of OWNER/REPO, newest first, drafts
// included when the token can see them. sync uses it for "newest:N".
func (f *Fetcher) Releases(ctx context.Context, owner, repo string) ([]Release, error) {
	return f.src.releases(ctx, owner, repo)
}

// Resolve finds the release ref names (the latest one when ref has no
// version) without downloading anything.
func (f *Fetcher) Resolve(ctx context.Context, ref Ref) (*Release, error) {
	return resolveRelease(ctx, f.src, ref)
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
	looked  []string // where missing blobs were looked for
}

func (p *projectPlan) label() string { return "fetch " + p.ref.Name() + "@" + p.rel.Tag }

// resolve does phase 1 for one ref.
func (r *fetchRun) resolve(ctx context.Context, ref Ref) (*projectPlan, error) {
	f := r.f
	rel, err := resolveRelease(ctx, f.src, ref)
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
		p.commit, commitErr = f.src.commit(ctx, ref.Owner, ref.Repo, rel.Tag)
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

// fetchArchive downloads the tag's source archive into the cache from the
// first of the source's archive URLs that serves it (the web host's, then
// the API's tarball endpoint for a private repository).
func (r *fetchRun) fetchArchive(ctx context.Context, p *projectPlan) error {
	label := p.label() + ": source archive"
	urls := r.f.src.archiveURLs(p.ref.Owner, p.ref.Repo, p.rel)
	var err error
	for i, u := range urls {
		var obj object
		obj, err = r.fetchObject(ctx, u, dlRequest{label: label, url: u, size: -1, header: r.f.src.header(u, "")})
		if err == nil {
			p.archURL, p.archive = u, obj
			return nil
		}
		if i+1 == len(urls) || !errors.Is(err, ErrUpstream) || ctx.Err() != nil {
			break
		}
		r.f.log.Info("archive URL refused, trying the API tarball endpoint", "url", u, "error", err.Error())
	}
	return err
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
