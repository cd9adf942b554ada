package githubtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"time"
)

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
