package mirror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// Release is a GitHub release as ccmirror uses it.
type Release struct {
	ID          int64     `json:"id"`
	Tag         string    `json:"tag_name"`
	Name        string    `json:"name"`
	HTMLURL     string    `json:"html_url"`
	TarballURL  string    `json:"tarball_url"`
	Draft       bool      `json:"draft"`
	Prerelease  bool      `json:"prerelease"`
	CreatedAt   time.Time `json:"created_at"`
	PublishedAt time.Time `json:"published_at"`
	Assets      []Asset   `json:"assets"`
}

// Asset is a file attached to a release.
type Asset struct {
	ID                 int64  `json:"id"`
	Name               string `json:"name"`
	Size               int64  `json:"size"`
	State              string `json:"state"`
	ContentType        string `json:"content_type"`
	URL                string `json:"url"`                  // API URL; Accept: application/octet-stream redirects to the content
	BrowserDownloadURL string `json:"browser_download_url"` // public download URL
	// Digest is GitHub's "sha256:<hex>" for the asset; older releases lack it.
	Digest string `json:"digest"`
}

// SHA256 returns the hex sha256 from the asset's digest, or "" when GitHub
// gave none (or one of another algorithm).
func (a Asset) SHA256() string {
	if h, ok := strings.CutPrefix(a.Digest, "sha256:"); ok && len(h) == 64 {
		h = strings.ToLower(h)
		if isHex(h) {
			return h
		}
	}
	return ""
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ghAPI is the GitHub REST calls ccmirror makes: the source of releases
// on github.com or a GitHub Enterprise server.
type ghAPI struct {
	c           *github.Client
	maxRateWait time.Duration
	token       string
	auth        bool // a token is set
}

func newGitHubAPI(httpClient *http.Client, baseURL, token, ua string, maxRateWait time.Duration) (*ghAPI, error) {
	c := github.NewClient(httpClient)
	if baseURL != "" && strings.TrimRight(baseURL, "/") != "https://api.github.com" {
		var err error
		c, err = c.WithEnterpriseURLs(baseURL, baseURL)
		if err != nil {
			return nil, fmt.Errorf("GitHub URL %q: %w", baseURL, err)
		}
	}
	if token != "" {
		c = c.WithAuthToken(token)
	}
	c.UserAgent = ua
	return &ghAPI{c: c, maxRateWait: maxRateWait, token: token, auth: token != ""}, nil
}

// get GETs an API path (relative to the base URL) into v. A client-side
// rate-limit refusal from go-github is waited out when it resets soon.
func (g *ghAPI) get(ctx context.Context, path string, v any) (*github.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := g.c.NewRequest(http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := g.c.Do(ctx, req, v)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var (
			rl  *github.RateLimitError
			ab  *github.AbuseRateLimitError
			er  *github.ErrorResponse
			own *RateLimitError
		)
		switch {
		case errors.As(err, &own):
			return nil, own
		case errors.As(err, &rl):
			wait := time.Until(rl.Rate.Reset.Time) + time.Second
			if wait > g.maxRateWait || attempt > 2 {
				return nil, &RateLimitError{Reset: rl.Rate.Reset.Time, Authenticated: g.auth}
			}
			if err := sleepCtx(ctx, max(wait, 0)); err != nil {
				return nil, err
			}
			continue
		case errors.As(err, &ab):
			wait := time.Minute
			if ab.RetryAfter != nil {
				wait = *ab.RetryAfter
			}
			if wait > g.maxRateWait || attempt > 2 {
				return nil, &RateLimitError{Reset: time.Now().Add(wait), Authenticated: g.auth}
			}
			if err := sleepCtx(ctx, wait); err != nil {
				return nil, err
			}
			continue
		case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound:
			return resp, fmt.Errorf("%w: %v", errNotFound, err)
		}
		return resp, err
	}
}

func repoPath(owner, repo string) string {
	return "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(repo)
}

// releaseByTag gets the release tagged tag.
func (g *ghAPI) releaseByTag(ctx context.Context, owner, repo, tag string) (*Release, error) {
	return g.getRelease(ctx, repoPath(owner, repo)+"/releases/tags/"+url.PathEscape(tag))
}

// latestRelease gets the release GitHub marks latest (the newest
// published full release unless the maintainers chose another).
func (g *ghAPI) latestRelease(ctx context.Context, owner, repo string) (*Release, error) {
	return g.getRelease(ctx, repoPath(owner, repo)+"/releases/latest")
}

func (g *ghAPI) getRelease(ctx context.Context, path string) (*Release, error) {
	var rel Release
	if _, err := g.get(ctx, path, &rel); err != nil {
		return nil, err
	}
	return &rel, nil
}

// commit returns the commit id a tag points at, peeling annotated tags.
func (g *ghAPI) commit(ctx context.Context, owner, repo, tag string) (string, error) {
	var ref struct {
		Object struct {
			SHA  string `json:"sha"`
			Type string `json:"type"`
		} `json:"object"`
	}
	_, err := g.get(ctx, repoPath(owner, repo)+"/git/ref/tags/"+url.PathEscape(tag), &ref)
	if err != nil && !errors.Is(err, errNotFound) {
		return "", err
	}
	if err == nil && ref.Object.Type == "commit" && ref.Object.SHA != "" {
		return ref.Object.SHA, nil
	}
	// An annotated tag (or a ref GitHub could not resolve directly):
	// commits/{tag} answers with the commit the tag points at.
	var c struct {
		SHA string `json:"sha"`
	}
	if _, err := g.get(ctx, repoPath(owner, repo)+"/commits/"+url.PathEscape(tag), &c); err != nil {
		if errors.Is(err, errNotFound) {
			return "", upstreamf("tag %s not found on %s/%s", tag, owner, repo)
		}
		return "", err
	}
	if c.SHA == "" {
		return "", upstreamf("tag %s on %s/%s: GitHub returned no commit", tag, owner, repo)
	}
	return c.SHA, nil
}

// releases lists every release of the repository, newest first (GitHub's
// order), following pagination.
func (g *ghAPI) releases(ctx context.Context, owner, repo string) ([]Release, error) {
	var all []Release
	for page := 1; page != 0; {
		var rs []Release
		resp, err := g.get(ctx, fmt.Sprintf("%s/releases?per_page=100&page=%d", repoPath(owner, repo), page), &rs)
		if err != nil {
			if errors.Is(err, errNotFound) {
				return nil, upstreamf("list releases: repository %s/%s not found", owner, repo)
			}
			return nil, upstreamWrap(err, "list releases of %s/%s", owner, repo)
		}
		all = append(all, rs...)
		page = resp.NextPage
		if len(all) > 100000 {
			return nil, upstreamf("list releases of %s/%s: too many pages", owner, repo)
		}
	}
	return all, nil
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

// archiveURLs lists the web host's archive URL (see archiveURL), then
// the API's tarball endpoint, which redirects to the content (with the
// token, if any) and serves private repositories too.
func (g *ghAPI) archiveURLs(owner, repo string, rel *Release) []string {
	apiTarball := g.c.BaseURL.String() + repoPath(owner, repo) + "/tarball/" + url.PathEscape(rel.Tag)
	if u, ok := archiveURL(rel); ok {
		return []string{u, apiTarball}
	}
	return []string{apiTarball}
}

// assetURL is how an asset is downloaded: with a token through the API
// URL (Accept: application/octet-stream, 302 to the download host), which
// also works for private repositories; without one from the public
// browser_download_url, which costs no API rate limit.
func (g *ghAPI) assetURL(a *Asset) string {
	if a.BrowserDownloadURL == "" || (g.token != "" && a.URL != "") {
		return a.URL
	}
	return a.BrowserDownloadURL
}

// header returns the headers for a request to u: the token only goes to
// the API host, never to the web or download hosts.
func (g *ghAPI) header(u, accept string) http.Header {
	h := http.Header{}
	if accept != "" {
		h.Set("Accept", accept)
	}
	if g.token != "" && strings.HasPrefix(u, g.c.BaseURL.String()) {
		h.Set("Authorization", "Bearer "+g.token)
	}
	return h
}
