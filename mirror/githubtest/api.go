package githubtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// apiPrefix is the GitHub Enterprise path prefix of the API; the fake
// answers with and without it.
const apiPrefix = "/api/v3/"

const defaultRateLimit = 5000

// Documentation links GitHub puts in error bodies.
const (
	docReleases = "https://docs.github.com/rest/releases/releases"
	docAssets   = "https://docs.github.com/rest/releases/assets"
	docRefs     = "https://docs.github.com/rest/git/refs#get-a-reference"
	docCommits  = "https://docs.github.com/rest/commits/commits#get-a-commit"
	docRepos    = "https://docs.github.com/rest/repos/repos#get-a-repository"
	docRate     = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
	docRoot     = "https://docs.github.com/rest"
)

type rateState struct {
	limit, remaining, used int
	reset                  time.Time
}

// SetRateLimit sets the remaining API budget and when it refills. Once it
// is spent, API requests answer 403 "API rate limit exceeded" with
// X-RateLimit-Remaining: 0 until reset; a reset in the past refills the
// budget at the next request. Downloads from the download host are free,
// as on GitHub.
func (s *Server) SetRateLimit(remaining int, reset time.Time) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	remaining = max(remaining, 0)
	s.rate.limit = max(defaultRateLimit, remaining)
	s.rate.remaining = remaining
	s.rate.used = s.rate.limit - remaining
	s.rate.reset = reset.Truncate(time.Second)
}

// SetRetryAfter makes rate-limited answers also carry Retry-After: d
// (rounded up to seconds), as GitHub does for secondary rate limits; 0
// removes it.
func (s *Server) SetRetryAfter(d time.Duration) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.retryAfter = max(d, 0)
}

// takeRate spends one request of the budget.
func (s *Server) takeRate() (rateState, time.Duration, bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	now := time.Now()
	if !now.Before(s.rate.reset) {
		s.rate.remaining = s.rate.limit
		s.rate.used = 0
		s.rate.reset = now.Add(time.Hour).Truncate(time.Second)
	}
	if s.rate.remaining <= 0 {
		return s.rate, s.retryAfter, false
	}
	s.rate.remaining--
	s.rate.used++
	return s.rate, 0, true
}

// refundRate gives back a request: authorized conditional requests that
// answer 304 do not count against the limit.
func (s *Server) refundRate() rateState {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.rate.used > 0 {
		s.rate.used--
		s.rate.remaining++
	}
	return s.rate
}

func (s *Server) peekRate() rateState {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if !time.Now().Before(s.rate.reset) {
		return rateState{limit: s.rate.limit, remaining: s.rate.limit, reset: time.Now().Add(time.Hour).Truncate(time.Second)}
	}
	return s.rate
}

func setRateHeaders(h http.Header, rs rateState) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(rs.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rs.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(rs.reset.Unix(), 10))
	h.Set("X-RateLimit-Used", strconv.Itoa(rs.used))
	h.Set("X-RateLimit-Resource", "core")
}

var requestSeq atomic.Uint64

// apiReq carries one API request through the handlers.
type apiReq struct {
	s    *Server
	w    *respWriter
	r    *http.Request
	auth bool
}

// serveAPI routes the REST API: /repos/{owner}/{repo}/..., the same under
// /repositories/{id}/..., and /rate_limit, with or without /api/v3.
func (s *Server) serveAPI(w *respWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/api/v3" || strings.HasPrefix(p, apiPrefix) {
		p = strings.TrimPrefix(p, "/api/v3")
	}
	h := w.Header()
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%X", requestSeq.Add(1)))
	h.Set("Access-Control-Allow-Origin", "*")
	a := &apiReq{s: s, w: w, r: r, auth: r.Header.Get("Authorization") != ""}
	seg := strings.Split(strings.Trim(p, "/"), "/")

	if len(seg) == 1 && seg[0] == "rate_limit" && isRead(r) {
		a.rateLimit() // free, as on GitHub
		return
	}
	rs, retry, ok := s.takeRate()
	setRateHeaders(h, rs)
	if !ok {
		a.rateLimited(retry)
		return
	}
	if !isRead(r) {
		a.notFound(docRoot)
		return
	}

	var rp *repo
	var rest []string
	switch {
	case len(seg) >= 3 && seg[0] == "repos":
		rp = s.repoByPath(seg[1], seg[2])
		rest = seg[3:]
	case len(seg) >= 2 && seg[0] == "repositories":
		if id, err := strconv.ParseInt(seg[1], 10, 64); err == nil {
			rp = s.repoByID(id)
		}
		rest = seg[2:]
	default:
		a.notFound(docRoot)
		return
	}
	if rp == nil {
		a.notFound(docRepos)
		return
	}
	a.routeRepo(rp, rest)
}

func isRead(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

func (s *Server) repoByID(id int64) *repo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, rp := range s.repoList {
		if rp.id == id {
			return rp
		}
	}
	return nil
}

func (a *apiReq) routeRepo(rp *repo, rest []string) {
	s := a.s
	n := len(rest)
	switch {
	case n == 0:
		a.json(http.StatusOK, s.repoJSON(rp))
	case rest[0] == "releases":
		a.routeReleases(rp, rest[1:])
	case rest[0] == "tags" && n == 1:
		a.listTags(rp)
	case rest[0] == "git" && n == 4 && (rest[1] == "ref" || rest[1] == "refs") && rest[2] == "tags":
		rel := s.releaseByTag(rp, rest[3])
		if rel == nil {
			a.notFound(docRefs)
			return
		}
		a.json(http.StatusOK, s.refJSON(rel))
	case rest[0] == "commits" && n >= 2:
		a.commit(rp, strings.Join(rest[1:], "/"))
	case (rest[0] == "tarball" || rest[0] == "zipball"):
		ref := strings.Join(rest[1:], "/")
		if ref == "" {
			ref = defaultBranch
		}
		rel := s.resolveRef(rp, ref)
		if rel == nil {
			a.notFound("https://docs.github.com/rest/repos/contents#download-a-repository-archive-tar")
			return
		}
		kind := kindLegacyTarGz
		if rest[0] == "zipball" {
			kind = kindLegacyZip
		}
		a.redirect(s.legacyURL(rel, kind, ref))
	default:
		a.notFound(docRoot)
	}
}

func (a *apiReq) routeReleases(rp *repo, rest []string) {
	s := a.s
	n := len(rest)
	switch {
	case n == 0:
		rels := s.releasesNewestFirst(rp)
		lo, hi := a.paginate(rp, "releases", len(rels))
		out := make([]releaseJSON, 0, hi-lo)
		for _, rel := range rels[lo:hi] {
			out = append(out, s.releaseJSON(rel))
		}
		a.json(http.StatusOK, out)
	case n == 1 && rest[0] == "latest":
		rel := s.latestRelease(rp)
		if rel == nil {
			a.notFound(docReleases + "#get-the-latest-release")
			return
		}
		a.json(http.StatusOK, s.releaseJSON(rel))
	case n == 2 && rest[0] == "tags":
		rel := s.releaseByTag(rp, rest[1])
		if rel == nil {
			a.notFound(docReleases + "#get-a-release-by-tag-name")
			return
		}
		a.json(http.StatusOK, s.releaseJSON(rel))
	case n == 2 && rest[0] == "assets":
		id, err := strconv.ParseInt(rest[1], 10, 64)
		var rel *release
		var as *asset
		if err == nil {
			rel, as = s.assetByID(rp, id)
		}
		if as == nil {
			a.notFound(docAssets + "#get-a-release-asset")
			return
		}
		if strings.Contains(a.r.Header.Get("Accept"), "application/octet-stream") {
			a.redirect(s.assetURL(rel, as))
			return
		}
		a.json(http.StatusOK, s.assetJSON(rel, as))
	case (n == 1 || (n == 2 && rest[1] == "assets")) && rest[0] != "":
		id, err := strconv.ParseInt(rest[0], 10, 64)
		var rel *release
		if err == nil {
			rel = s.releaseByID(rp, id)
		}
		if rel == nil {
			a.notFound(docReleases + "#get-a-release")
			return
		}
		if n == 1 {
			a.json(http.StatusOK, s.releaseJSON(rel))
			return
		}
		assets := s.assetsOf(rel)
		lo, hi := a.paginate(rp, "releases/"+rest[0]+"/assets", len(assets))
		out := make([]assetJSON, 0, hi-lo)
		for _, as := range assets[lo:hi] {
			out = append(out, s.assetJSON(rel, as))
		}
		a.json(http.StatusOK, out)
	default:
		a.notFound(docReleases)
	}
}

// paginate reads per_page (default 30, at most 100) and page, sets the Link
// header GitHub sends (next/last/first/prev, on /repositories/{id}/ paths)
// and returns the slice bounds of the page.
func (a *apiReq) paginate(rp *repo, sub string, n int) (lo, hi int) {
	q := a.r.URL.Query()
	per := 30
	perGiven := false
	if v, err := strconv.Atoi(q.Get("per_page")); err == nil && v > 0 {
		per = min(v, 100)
		perGiven = true
	}
	page := 1
	if v, err := strconv.Atoi(q.Get("page")); err == nil && v > 0 {
		page = v
	}
	last := max(1, (n+per-1)/per)
	link := func(p int, rel string) string {
		v := url.Values{}
		if perGiven {
			v.Set("per_page", strconv.Itoa(per))
		}
		v.Set("page", strconv.Itoa(p))
		return fmt.Sprintf(`<%srepositories/%d/%s?%s>; rel="%s"`, a.s.apiBase, rp.id, sub, v.Encode(), rel)
	}
	var links []string
	if page > 1 {
		links = append(links, link(page-1, "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"))
	}
	if len(links) > 0 {
		a.w.Header().Set("Link", strings.Join(links, ", "))
	}
	lo = min((page-1)*per, n)
	hi = min(lo+per, n)
	return lo, hi
}

func (a *apiReq) listTags(rp *repo) {
	rels := a.s.releasesNewestFirst(rp)
	lo, hi := a.paginate(rp, "tags", len(rels))
	out := make([]tagJSON, 0, hi-lo)
	for _, rel := range rels[lo:hi] {
		base := a.s.apiBase + "repos/" + rp.full()
		out = append(out, tagJSON{
			Name:       rel.tag,
			ZipballURL: base + "/zipball/refs/tags/" + rel.tag,
			TarballURL: base + "/tarball/refs/tags/" + rel.tag,
			Commit:     objectRef{SHA: rel.commit, URL: base + "/commits/" + rel.commit},
			NodeID:     nodeID("REF_", rel.id),
		})
	}
	a.json(http.StatusOK, out)
}

func (a *apiReq) commit(rp *repo, ref string) {
	rel := a.s.resolveRef(rp, ref)
	if rel == nil {
		a.error(http.StatusUnprocessableEntity, "No commit found for SHA: "+ref, docCommits)
		return
	}
	accept := a.r.Header.Get("Accept")
	if strings.Contains(accept, "vnd.github.sha") || strings.Contains(accept, "vnd.github.v3.sha") {
		a.raw(http.StatusOK, "application/vnd.github.sha; charset=utf-8", []byte(rel.commit), `"`+rel.commit+`"`)
		return
	}
	a.json(http.StatusOK, a.s.commitJSON(rel))
}

// rateLimit answers GET /rate_limit without spending the budget.
func (a *apiReq) rateLimit() {
	rs := a.s.peekRate()
	setRateHeaders(a.w.Header(), rs)
	core := rateJSON{Limit: rs.limit, Remaining: rs.remaining, Reset: rs.reset.Unix(), Used: rs.used, Resource: "core"}
	a.json(http.StatusOK, map[string]any{"resources": map[string]any{"core": core}, "rate": core})
}

func (a *apiReq) rateLimited(retry time.Duration) {
	who := "127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)"
	if a.auth {
		who = "user ID 1."
	}
	if retry > 0 {
		a.w.Header().Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
	}
	a.error(http.StatusForbidden, "API rate limit exceeded for "+who, docRate)
}

func (a *apiReq) notFound(doc string) { a.error(http.StatusNotFound, "Not Found", doc) }

func (a *apiReq) error(code int, msg, doc string) {
	b, _ := json.Marshal(errorJSON{Message: msg, DocumentationURL: doc, Status: strconv.Itoa(code)})
	a.raw(code, "application/json; charset=utf-8", b, "")
}

func (a *apiReq) redirect(loc string) {
	a.w.Header().Set("Location", loc)
	a.w.Header().Set("Content-Length", "0")
	a.w.WriteHeader(http.StatusFound)
}

// json answers v with a weak ETag like GitHub's; a matching If-None-Match
// answers 304.
func (a *apiReq) json(code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		a.error(http.StatusInternalServerError, "githubtest: "+err.Error(), docRoot)
		return
	}
	sum := sha256.Sum256(b)
	a.raw(code, "application/json; charset=utf-8", b, `W/"`+hex.EncodeToString(sum[:16])+`"`)
}

func (a *apiReq) raw(code int, ctype string, body []byte, etag string) {
	h := a.w.Header()
	if a.auth {
		h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
	} else {
		h.Set("Cache-Control", "public, max-age=60, s-maxage=60")
	}
	h.Set("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
	if etag != "" {
		h.Set("ETag", etag)
		if code == http.StatusOK && etagMatch(a.r.Header.Get("If-None-Match"), etag) {
			if a.auth {
				setRateHeaders(h, a.s.refundRate())
			}
			a.w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	a.w.WriteHeader(code)
	_, _ = a.w.Write(body)
}

// etagMatch implements If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == want {
			return true
		}
	}
	return false
}

// ---- JSON shapes of GitHub's REST API ----

type userJSON struct {
	Login     string `json:"login"`
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	AvatarURL string `json:"avatar_url"`
	URL       string `json:"url"`
	HTMLURL   string `json:"html_url"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

type assetJSON struct {
	URL                string    `json:"url"`
	ID                 int64     `json:"id"`
	NodeID             string    `json:"node_id"`
	Name               string    `json:"name"`
	Label              *string   `json:"label"`
	Uploader           userJSON  `json:"uploader"`
	ContentType        string    `json:"content_type"`
	State              string    `json:"state"`
	Size               int64     `json:"size"`
	Digest             *string   `json:"digest"`
	DownloadCount      int64     `json:"download_count"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
	BrowserDownloadURL string    `json:"browser_download_url"`
}

type releaseJSON struct {
	URL             string      `json:"url"`
	AssetsURL       string      `json:"assets_url"`
	UploadURL       string      `json:"upload_url"`
	HTMLURL         string      `json:"html_url"`
	ID              int64       `json:"id"`
	Author          userJSON    `json:"author"`
	NodeID          string      `json:"node_id"`
	TagName         string      `json:"tag_name"`
	TargetCommitish string      `json:"target_commitish"`
	Name            string      `json:"name"`
	Draft           bool        `json:"draft"`
	Immutable       bool        `json:"immutable"`
	Prerelease      bool        `json:"prerelease"`
	CreatedAt       time.Time   `json:"created_at"`
	UpdatedAt       time.Time   `json:"updated_at"`
	PublishedAt     time.Time   `json:"published_at"`
	Assets          []assetJSON `json:"assets"`
	TarballURL      string      `json:"tarball_url"`
	ZipballURL      string      `json:"zipball_url"`
	Body            string      `json:"body"`
}

type objectRef struct {
	SHA  string `json:"sha"`
	Type string `json:"type,omitempty"`
	URL  string `json:"url"`
}

type refJSON struct {
	Ref    string    `json:"ref"`
	NodeID string    `json:"node_id"`
	URL    string    `json:"url"`
	Object objectRef `json:"object"`
}

type tagJSON struct {
	Name       string    `json:"name"`
	ZipballURL string    `json:"zipball_url"`
	TarballURL string    `json:"tarball_url"`
	Commit     objectRef `json:"commit"`
	NodeID     string    `json:"node_id"`
}

type gitPerson struct {
	Name  string    `json:"name"`
	Email string    `json:"email"`
	Date  time.Time `json:"date"`
}

type commitJSON struct {
	SHA    string `json:"sha"`
	NodeID string `json:"node_id"`
	Commit struct {
		Author       gitPerson `json:"author"`
		Committer    gitPerson `json:"committer"`
		Message      string    `json:"message"`
		Tree         objectRef `json:"tree"`
		URL          string    `json:"url"`
		CommentCount int       `json:"comment_count"`
	} `json:"commit"`
	URL     string      `json:"url"`
	HTMLURL string      `json:"html_url"`
	Parents []objectRef `json:"parents"`
}

type repoJSON struct {
	ID            int64    `json:"id"`
	NodeID        string   `json:"node_id"`
	Name          string   `json:"name"`
	FullName      string   `json:"full_name"`
	Private       bool     `json:"private"`
	Owner         userJSON `json:"owner"`
	HTMLURL       string   `json:"html_url"`
	Description   string   `json:"description"`
	Fork          bool     `json:"fork"`
	URL           string   `json:"url"`
	ReleasesURL   string   `json:"releases_url"`
	TagsURL       string   `json:"tags_url"`
	DefaultBranch string   `json:"default_branch"`
	Visibility    string   `json:"visibility"`
	Archived      bool     `json:"archived"`
}

type errorJSON struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
	Status           string `json:"status"`
}

type rateJSON struct {
	Limit     int    `json:"limit"`
	Remaining int    `json:"remaining"`
	Reset     int64  `json:"reset"`
	Used      int    `json:"used"`
	Resource  string `json:"resource"`
}

func nodeID(prefix string, id int64) string {
	return prefix + base64.RawURLEncoding.EncodeToString([]byte("ccmirror:"+strconv.FormatInt(id, 10)))
}

func (s *Server) bot() userJSON {
	return userJSON{
		Login: "github-actions[bot]", ID: 41898282, NodeID: "MDM6Qm90NDE4OTgyODI=",
		AvatarURL: "https://avatars.githubusercontent.com/in/15368?v=4",
		URL:       s.apiBase + "users/github-actions%5Bbot%5D", HTMLURL: "https://github.com/apps/github-actions",
		Type: "Bot",
	}
}

func (s *Server) repoJSON(rp *repo) repoJSON {
	base := s.apiBase + "repos/" + rp.full()
	return repoJSON{
		ID: rp.id, NodeID: nodeID("R_", rp.id), Name: rp.name, FullName: rp.full(),
		Owner: userJSON{
			Login: rp.owner, ID: 6844498, NodeID: "MDEyOk9yZ2FuaXphdGlvbjY4NDQ0OTg=",
			URL: s.apiBase + "users/" + rp.owner, HTMLURL: "https://github.com/" + rp.owner, Type: "Organization",
		},
		HTMLURL:     "https://github.com/" + rp.full(),
		Description: "Azure CycleCloud project " + rp.name,
		URL:         base, ReleasesURL: base + "/releases{/id}", TagsURL: base + "/tags",
		DefaultBranch: defaultBranch, Visibility: "public",
	}
}

// assetURL is where the download host serves an asset (GitHub's
// browser_download_url, here without the github.com redirect hop).
func (s *Server) assetURL(rel *release, a *asset) string {
	return s.dlBase + rel.repo.full() + "/releases/download/" + url.PathEscape(rel.tag) + "/" + url.PathEscape(a.name)
}

// archiveURL is the download host's tag archive URL.
func (s *Server) archiveURL(rel *release, kind string) string {
	ext := ".tar.gz"
	if kind == kindZip {
		ext = ".zip"
	}
	return s.dlBase + rel.repo.full() + "/archive/refs/tags/" + url.PathEscape(rel.tag) + ext
}

// legacyURL is where an API tarball/zipball redirects (codeload's
// legacy.tar.gz form).
func (s *Server) legacyURL(rel *release, kind, ref string) string {
	if ref == defaultBranch || ref == "HEAD" || strings.HasPrefix(ref, "refs/heads/") || strings.HasPrefix(ref, "heads/") {
		ref = "refs/heads/" + defaultBranch
	} else if strings.HasPrefix(rel.commit, strings.ToLower(ref)) {
		ref = rel.commit
	} else {
		ref = "refs/tags/" + rel.tag
	}
	return s.dlBase + rel.repo.full() + "/" + kind + "/" + ref
}

func (s *Server) assetJSON(rel *release, a *asset) assetJSON {
	var digest *string
	if !s.noDigest {
		d := "sha256:" + s.assetDigest(a)
		digest = &d
	}
	return assetJSON{
		URL:    s.apiBase + "repos/" + rel.repo.full() + "/releases/assets/" + strconv.FormatInt(a.id, 10),
		ID:     a.id,
		NodeID: nodeID("RA_", a.id),
		Name:   a.name, Uploader: s.bot(),
		ContentType: "application/octet-stream", State: "uploaded",
		Size: a.size, Digest: digest, DownloadCount: a.download.Load(),
		CreatedAt: a.created, UpdatedAt: a.updated,
		BrowserDownloadURL: s.assetURL(rel, a),
	}
}

func (s *Server) releaseJSON(rel *release) releaseJSON {
	base := s.apiBase + "repos/" + rel.repo.full()
	id := strconv.FormatInt(rel.id, 10)
	assets := s.assetsOf(rel)
	out := releaseJSON{
		URL:       base + "/releases/" + id,
		AssetsURL: base + "/releases/" + id + "/assets",
		UploadURL: strings.TrimSuffix(s.apiBase, "/api/v3/") + "/api/uploads/repos/" + rel.repo.full() + "/releases/" + id + "/assets{?name,label}",
		HTMLURL:   "https://github.com/" + rel.repo.full() + "/releases/tag/" + url.PathEscape(rel.tag),
		ID:        rel.id, Author: s.bot(), NodeID: nodeID("RE_", rel.id),
		TagName: rel.tag, TargetCommitish: defaultBranch, Name: rel.tag,
		CreatedAt: rel.commitTime, UpdatedAt: rel.published, PublishedAt: rel.published,
		Assets:     make([]assetJSON, 0, len(assets)),
		TarballURL: base + "/tarball/" + url.PathEscape(rel.tag),
		ZipballURL: base + "/zipball/" + url.PathEscape(rel.tag),
		Body:       "Release " + rel.tag + " of " + rel.repo.name + ".",
	}
	for _, a := range assets {
		out.Assets = append(out.Assets, s.assetJSON(rel, a))
	}
	return out
}

func (s *Server) refJSON(rel *release) refJSON {
	base := s.apiBase + "repos/" + rel.repo.full() + "/git"
	return refJSON{
		Ref:    "refs/tags/" + rel.tag,
		NodeID: nodeID("REF_", rel.id),
		URL:    base + "/refs/tags/" + url.PathEscape(rel.tag),
		Object: objectRef{SHA: rel.commit, Type: "commit", URL: base + "/commits/" + rel.commit},
	}
}

func (s *Server) commitJSON(rel *release) commitJSON {
	base := s.apiBase + "repos/" + rel.repo.full()
	tree := sha256.Sum256([]byte("tree\x00" + rel.commit))
	var c commitJSON
	c.SHA = rel.commit
	c.NodeID = nodeID("C_", rel.id)
	who := gitPerson{Name: "CycleCloud Release", Email: "cyclecloud@example.invalid", Date: rel.commitTime}
	c.Commit.Author, c.Commit.Committer = who, who
	c.Commit.Message = "Release " + rel.tag
	c.Commit.Tree = objectRef{SHA: hex.EncodeToString(tree[:20]), URL: base + "/git/trees/" + hex.EncodeToString(tree[:20])}
	c.Commit.URL = base + "/git/commits/" + rel.commit
	c.URL = base + "/commits/" + rel.commit
	c.HTMLURL = "https://github.com/" + rel.repo.full() + "/commit/" + rel.commit
	c.Parents = []objectRef{}
	return c
}
