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

// ghAPI is the GitHub REST calls ccmirror makes.
type ghAPI struct {
	c           *github.Client
	maxRateWait time.Duration
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
	return &ghAPI{c: c, maxRateWait: maxRateWait, auth: token != ""}, nil
}

// errNotFound marks a 404 from the API; callers turn it into a message.
var errNotFound = errors.New("not found")

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

// release resolves ref to a release: the latest one or the one tagged
// ref.Version.
func (g *ghAPI) release(ctx context.Context, ref Ref) (*Release, error) {
	p := repoPath(ref.Owner, ref.Repo) + "/releases/"
	if ref.IsLatest() {
		p += "latest"
	} else {
		p += "tags/" + url.PathEscape(ref.Version)
	}
	var rel Release
	if _, err := g.get(ctx, p, &rel); err != nil {
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
