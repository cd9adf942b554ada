package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// source is where releases, tags and their files come from. Resolution
// reads releases only through it: the GitHub REST API (ghAPI) implements
// it today, and version rules and other release hosts (a plain HTTPS
// mirror of releases, say) plug in here. Nothing outside an implementation
// knows its base URL.
type source interface {
	// releases lists every release of owner/repo, in the host's order.
	releases(ctx context.Context, owner, repo string) ([]Release, error)
	// releaseByTag returns the release tagged tag; a missing one is an
	// error matching errNotFound.
	releaseByTag(ctx context.Context, owner, repo, tag string) (*Release, error)
	// latestRelease returns the release the host marks latest (for the
	// resolution note only: selection is by version); none is an error
	// matching errNotFound.
	latestRelease(ctx context.Context, owner, repo string) (*Release, error)
	// commit returns the commit a tag points at.
	commit(ctx context.Context, owner, repo, tag string) (string, error)
	// archiveURLs lists where the tag's source archive (gzip tar) can be
	// downloaded, best first; the next is tried when one is refused.
	archiveURLs(owner, repo string, rel *Release) []archiveLoc
	// assetURL returns the URL an asset is downloaded from.
	assetURL(a *Asset) string
	// header returns the headers of a download from u: credentials only
	// go to the host that takes them.
	header(u, accept string) http.Header
}

// archiveLoc is one place a tag archive is served.
type archiveLoc struct {
	url string
	// kind names the archive's shape (its top folder differs between
	// kinds), so that the cache tells them apart: "tag archive",
	// "API tarball".
	kind string
}

// errNotFound marks a release, tag or repository the source does not
// have; callers turn it into a message.
var errNotFound = errors.New("not found")

// resolveRelease finds the release ref names: the one tagged ref.Version,
// or for "latest" the highest version among list's releases (see
// RankReleases), with the one-line note saying so and what GitHub marks
// latest instead.
func resolveRelease(ctx context.Context, src source, ref Ref, list func(context.Context) ([]Release, error)) (*Release, string, error) {
	if !ref.IsLatest() {
		rel, err := src.releaseByTag(ctx, ref.Owner, ref.Repo, ref.Version)
		if err != nil {
			if errors.Is(err, errNotFound) {
				return nil, "", upstreamf("fetch %s: release not found on %s", ref, ref.Repository())
			}
			return nil, "", upstreamWrap(err, "fetch %s: get release", ref)
		}
		if rel.Tag == "" {
			return nil, "", upstreamf("fetch %s: GitHub returned a release without a tag", ref)
		}
		return rel, "", nil
	}
	// What the host marks latest only goes into the note: asked beside the
	// list, and its failure costs nothing but that part of the note.
	var (
		marked    *Release
		markedErr error
		done      = make(chan struct{})
	)
	mctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		marked, markedErr = src.latestRelease(mctx, ref.Owner, ref.Repo)
	}()
	rels, err := list(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", ref, err)
	}
	rel, err := LatestRelease(ref.Repository(), rels)
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", ref, err)
	}
	<-done
	markedTag, known := "", false
	switch {
	case markedErr == nil && marked != nil:
		markedTag, known = marked.Tag, true
	case errors.Is(markedErr, errNotFound):
		known = true
	}
	return rel, resolutionNote(ref, rel.Tag, markedTag, known), nil
}
