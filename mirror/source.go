package mirror

import (
	"context"
	"errors"
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
	// latestRelease returns the release the host marks latest; none is an
	// error matching errNotFound.
	latestRelease(ctx context.Context, owner, repo string) (*Release, error)
	// commit returns the commit a tag points at.
	commit(ctx context.Context, owner, repo, tag string) (string, error)
	// archiveURLs lists where the tag's source archive (gzip tar) can be
	// downloaded, best first; the next is tried when one is refused.
	archiveURLs(owner, repo string, rel *Release) []string
	// assetURL returns the URL an asset is downloaded from.
	assetURL(a *Asset) string
	// header returns the headers of a download from u: credentials only
	// go to the host that takes them.
	header(u, accept string) http.Header
}

// errNotFound marks a release, tag or repository the source does not
// have; callers turn it into a message.
var errNotFound = errors.New("not found")

// resolveRelease finds the release ref names: the one tagged ref.Version,
// or the latest one.
func resolveRelease(ctx context.Context, src source, ref Ref) (*Release, error) {
	var (
		rel *Release
		err error
	)
	if ref.IsLatest() {
		rel, err = src.latestRelease(ctx, ref.Owner, ref.Repo)
	} else {
		rel, err = src.releaseByTag(ctx, ref.Owner, ref.Repo, ref.Version)
	}
	if err != nil {
		switch {
		case errors.Is(err, errNotFound) && ref.IsLatest():
			return nil, upstreamf("fetch %s: no published release on %s", ref, ref.Repository())
		case errors.Is(err, errNotFound):
			return nil, upstreamf("fetch %s: release not found on %s", ref, ref.Repository())
		}
		return nil, upstreamWrap(err, "fetch %s: get release", ref)
	}
	if rel.Tag == "" {
		return nil, upstreamf("fetch %s: GitHub returned a release without a tag", ref)
	}
	return rel, nil
}
