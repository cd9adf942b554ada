package githubtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
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
	if s.hostileAPI(a) {
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
