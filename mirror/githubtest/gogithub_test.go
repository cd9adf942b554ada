package githubtest

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

func TestURLIsEnterpriseBase(t *testing.T) {
	s := newTestServer(t, Options{})
	if !strings.HasSuffix(s.URL(), "/api/v3/") || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL() = %q, want http://127.0.0.1:PORT/api/v3/", s.URL())
	}
	ctx := testCtx(t)
	host := strings.TrimSuffix(s.URL(), "api/v3/")
	for _, tc := range []struct {
		name string
		mk   func() (*github.Client, error)
	}{
		{"enterprise URL as returned", func() (*github.Client, error) {
			return github.NewClient(nil).WithEnterpriseURLs(s.URL(), s.URL())
		}},
		{"enterprise host only (go-github appends api/v3)", func() (*github.Client, error) {
			return github.NewClient(nil).WithEnterpriseURLs(host, host)
		}},
		{"BaseURL at the host root, like api.github.com", func() (*github.Client, error) {
			c := github.NewClient(nil)
			var err error
			c.BaseURL, err = c.BaseURL.Parse(host)
			return c, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.mk()
			if err != nil {
				t.Fatal(err)
			}
			rel, _, err := c.Repositories.GetLatestRelease(ctx, "Azure", "cyclecloud-slurm")
			if err != nil {
				t.Fatalf("GetLatestRelease: %v", err)
			}
			// GitHub's latest is the backport marked latest, not the
			// highest version.
			if rel.GetTagName() != "3.0.13" {
				t.Fatalf("latest = %s, want 3.0.13", rel.GetTagName())
			}
		})
	}
}

func TestGoGitHubLatestAndByTag(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s)
	ctx := testCtx(t)
	// latest "" means GitHub has none: every release of the repository
	// is a prerelease, and /releases/latest answers 404.
	for _, tc := range []struct {
		repo, latest string
		tag          string
		assets       int
		pre          bool
	}{
		{"cyclecloud-slurm", "3.0.13", "2.5.0", 61, false},
		{"cyclecloud-slurm", "3.0.13", "2.6.1", 62, false},
		{"cyclecloud-slurm", "3.0.13", "3.0.12", 2, false},
		{"cyclecloud-slurm", "3.0.13", "3.0.13", 2, false},
		{"cyclecloud-pbspro", "", "2.0.25", 11, true},
		{"cyclecloud-pbspro", "", "2023-03-29-bins", 1, true},
		{"cyclecloud-gridengine", "", "2.1.0", 3, true},
		{"cyclecloud-hpcpack", "", "2.1.2", 1, true},
	} {
		t.Run(tc.repo+"@"+tc.tag, func(t *testing.T) {
			latest, resp, err := c.Repositories.GetLatestRelease(ctx, "Azure", tc.repo)
			switch {
			case tc.latest == "" && (resp == nil || resp.StatusCode != 404):
				t.Errorf("latest of a prerelease-only repository: %v, %v; want 404", latest.GetTagName(), err)
			case tc.latest != "" && err != nil:
				t.Fatal(err)
			case latest.GetTagName() != tc.latest:
				t.Errorf("latest = %s, want %s", latest.GetTagName(), tc.latest)
			}
			if resp.Rate.Limit == 0 || resp.Rate.Reset.IsZero() {
				t.Errorf("no rate limit headers parsed: %+v", resp.Rate)
			}
			rel, _, err := c.Repositories.GetReleaseByTag(ctx, "azure", tc.repo, tc.tag) // owner is case-insensitive
			if err != nil {
				t.Fatal(err)
			}
			if rel.GetTagName() != tc.tag || rel.GetName() != tc.tag || rel.GetDraft() || rel.GetPrerelease() != tc.pre {
				t.Errorf("release = %s %q draft=%v pre=%v", rel.GetTagName(), rel.GetName(), rel.GetDraft(), rel.GetPrerelease())
			}
			if len(rel.Assets) != tc.assets {
				t.Errorf("%d assets, want %d", len(rel.Assets), tc.assets)
			}
			for _, a := range rel.Assets {
				if a.GetState() != "uploaded" || a.GetContentType() != "application/octet-stream" || a.GetSize() != 4096 ||
					!strings.HasPrefix(a.GetBrowserDownloadURL(), s.DownloadURL()) || !strings.HasPrefix(a.GetURL(), s.URL()) {
					t.Errorf("asset %s: %+v", a.GetName(), a)
				}
			}
			if !strings.HasPrefix(rel.GetTarballURL(), s.URL()) || rel.GetHTMLURL() != "https://github.com/Azure/"+tc.repo+"/releases/tag/"+tc.tag {
				t.Errorf("tarball_url %s html_url %s", rel.GetTarballURL(), rel.GetHTMLURL())
			}
			byID, _, err := c.Repositories.GetRelease(ctx, "Azure", tc.repo, rel.GetID())
			if err != nil || byID.GetTagName() != tc.tag {
				t.Errorf("GetRelease(%d) = %v, %v", rel.GetID(), byID.GetTagName(), err)
			}
		})
	}
}

func TestGoGitHubListReleasesPagination(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s)
	ctx := testCtx(t)
	var tags []string
	opt := &github.ListOptions{PerPage: 4}
	pages := 0
	for {
		rels, resp, err := c.Repositories.ListReleases(ctx, "Azure", "cyclecloud-slurm", opt)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if pages == 1 && resp.LastPage != 2 {
			t.Errorf("LastPage = %d, want 2", resp.LastPage)
		}
		for _, r := range rels {
			tags = append(tags, r.GetTagName())
		}
		if resp.NextPage == 0 {
			if resp.PrevPage != 1 || resp.FirstPage != 1 {
				t.Errorf("last page links: prev %d first %d", resp.PrevPage, resp.FirstPage)
			}
			break
		}
		opt.Page = resp.NextPage
	}
	// Newest published first: the backport 3.0.13 came out after 4.0.9.
	want := []string{"3.0.13", "4.0.9", "3.0.12", "2.7.4", "2.7.0", "2.6.1", "2.5.0"}
	if !slices.Equal(tags, want) || pages != 2 {
		t.Fatalf("tags over %d pages = %v, want %v over 2", pages, tags, want)
	}

	// The Link URLs themselves (on /repositories/{id}/ like GitHub's) work
	// for clients that follow them as they are.
	_, resp, err := c.Repositories.ListReleases(ctx, "Azure", "cyclecloud-slurm", &github.ListOptions{PerPage: 4})
	if err != nil {
		t.Fatal(err)
	}
	next := ""
	for _, l := range strings.Split(resp.Header.Get("Link"), ",") {
		if u, rel, ok := strings.Cut(strings.TrimSpace(l), ">; "); ok && rel == `rel="next"` {
			next = strings.TrimPrefix(u, "<")
		}
	}
	if !strings.Contains(next, "/repositories/") || !strings.Contains(next, "page=2") {
		t.Fatalf("next link %q", next)
	}
	if r, body := get(t, next); r.StatusCode != 200 || !strings.Contains(string(body), `"tag_name":"2.6.1"`) || strings.Contains(string(body), `"tag_name":"4.0.9"`) {
		t.Fatalf("following next link: %d %.200s", r.StatusCode, body)
	}

	// Without per_page the default page (30) holds everything and there is no Link.
	rels, resp, err := c.Repositories.ListReleases(ctx, "Azure", "cyclecloud-slurm", nil)
	if err != nil || len(rels) != 7 || resp.NextPage != 0 || resp.Header.Get("Link") != "" {
		t.Fatalf("default page: %d releases, next %d, Link %q, err %v", len(rels), resp.NextPage, resp.Header.Get("Link"), err)
	}
	// A page past the end is empty, like GitHub.
	rels, _, err = c.Repositories.ListReleases(ctx, "Azure", "cyclecloud-slurm", &github.ListOptions{PerPage: 4, Page: 9})
	if err != nil || len(rels) != 0 {
		t.Fatalf("page 9: %d releases, err %v", len(rels), err)
	}
}

func TestGoGitHubDownloadReleaseAsset(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s)
	ctx := testCtx(t)
	// The wheel 2.5.0 names lives only on 2.6.1.
	rel, _, err := c.Repositories.GetReleaseByTag(ctx, "Azure", "cyclecloud-slurm", "2.6.1")
	if err != nil {
		t.Fatal(err)
	}
	var a *github.ReleaseAsset
	for _, x := range rel.Assets {
		if x.GetName() == "cyclecloud_api-8.1.0-py2.py3-none-any.whl" {
			a = x
		}
	}
	if a == nil {
		t.Fatal("2.6.1 lacks the cyclecloud_api wheel")
	}
	want := readAsset(t, s, "cyclecloud-slurm", "2.6.1", a.GetName())
	digest := assetInfo(t, s, "cyclecloud-slurm", "2.6.1", a.GetName()).SHA256

	rc, redirect, err := c.Repositories.DownloadReleaseAsset(ctx, "Azure", "cyclecloud-slurm", a.GetID(), http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || redirect != "" {
		t.Fatalf("read: %v, redirect %q", err, redirect)
	}
	if len(got) != a.GetSize() || hexSum(got) != digest || string(got) != string(want) {
		t.Fatalf("downloaded %d bytes sha256 %s, want %d bytes %s", len(got), hexSum(got), a.GetSize(), digest)
	}

	// Without a redirect client go-github hands back the download host URL.
	rc, redirect, err = c.Repositories.DownloadReleaseAsset(ctx, "Azure", "cyclecloud-slurm", a.GetID(), nil)
	if err != nil || rc != nil || redirect != a.GetBrowserDownloadURL() {
		t.Fatalf("no-follow: rc %v, redirect %q (want %q), err %v", rc, redirect, a.GetBrowserDownloadURL(), err)
	}
	// The asset's JSON (GetReleaseAsset) has the digest GitHub publishes.
	_, body := get(t, a.GetURL())
	if !strings.Contains(string(body), `"digest":"sha256:`+digest+`"`) {
		t.Fatalf("asset JSON lacks digest: %s", body)
	}
}

func TestGoGitHubRefsCommitsTarball(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s)
	ctx := testCtx(t)
	const commit = "c5de6d68fe0c5319fdd44c2f367509c85bf3c135" // fixtures/projects/cyclecloud-slurm/2.5.0/commit
	ref, _, err := c.Git.GetRef(ctx, "Azure", "cyclecloud-slurm", "tags/2.5.0")
	if err != nil {
		t.Fatal(err)
	}
	if ref.GetRef() != "refs/tags/2.5.0" || ref.GetObject().GetSHA() != commit || ref.GetObject().GetType() != "commit" {
		t.Fatalf("ref = %s -> %s %s", ref.GetRef(), ref.GetObject().GetType(), ref.GetObject().GetSHA())
	}
	for _, r := range []string{"2.5.0", "refs/tags/2.5.0", commit, commit[:7]} {
		rc, _, err := c.Repositories.GetCommit(ctx, "Azure", "cyclecloud-slurm", r, nil)
		if err != nil || rc.GetSHA() != commit {
			t.Errorf("GetCommit(%s) = %s, %v", r, rc.GetSHA(), err)
		}
	}
	sha, _, err := c.Repositories.GetCommitSHA1(ctx, "Azure", "cyclecloud-slurm", "2.5.0", "")
	if err != nil || sha != commit {
		t.Errorf("GetCommitSHA1 = %s, %v", sha, err)
	}
	_, _, err = c.Repositories.GetCommit(ctx, "Azure", "cyclecloud-slurm", "9.9.9", nil)
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("unknown ref: %v, want 422 like GitHub", err)
	}

	u, _, err := c.Repositories.GetArchiveLink(ctx, "Azure", "cyclecloud-slurm", github.Tarball, &github.RepositoryContentGetOptions{Ref: "2.5.0"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.String(), s.DownloadURL()) {
		t.Fatalf("tarball link %s is not on the download host", u)
	}
	resp, body := get(t, u.String())
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	zr, err := gzip.NewReader(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil || h.Typeflag != tar.TypeXGlobalHeader || h.PAXRecords["comment"] != commit {
		t.Fatalf("first entry %+v, %v", h, err)
	}
	h, err = tr.Next()
	if err != nil || h.Name != "Azure-cyclecloud-slurm-c5de6d6/" {
		t.Fatalf("API tarball top folder = %q, want Azure-cyclecloud-slurm-c5de6d6/ (%v)", h.Name, err)
	}
}

func TestGoGitHubErrors(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s)
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"unknown tag", func() error {
			_, _, err := c.Repositories.GetReleaseByTag(ctx, "Azure", "cyclecloud-slurm", "9.9.9")
			return err
		}},
		{"unknown repo", func() error {
			_, _, err := c.Repositories.GetLatestRelease(ctx, "Azure", "cyclecloud-nope")
			return err
		}},
		{"unknown release id", func() error {
			_, _, err := c.Repositories.GetRelease(ctx, "Azure", "cyclecloud-slurm", 1)
			return err
		}},
		{"unknown asset id", func() error {
			_, _, err := c.Repositories.GetReleaseAsset(ctx, "Azure", "cyclecloud-slurm", 1)
			return err
		}},
		{"unknown tag ref", func() error {
			_, _, err := c.Git.GetRef(ctx, "Azure", "cyclecloud-slurm", "tags/0.0.1")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var er *github.ErrorResponse
			err := tc.call()
			if !errors.As(err, &er) || er.Response.StatusCode != 404 || er.Message != "Not Found" || er.DocumentationURL == "" {
				t.Fatalf("err = %v, want 404 Not Found with documentation_url", err)
			}
		})
	}
}

func TestGoGitHubRateLimit(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s)
	ctx := testCtx(t)
	reset := time.Now().Add(30 * time.Minute)
	s.SetRateLimit(1, reset)
	_, resp, err := c.Repositories.GetLatestRelease(ctx, "Azure", "cyclecloud-slurm")
	if err != nil || resp.Rate.Remaining != 0 {
		t.Fatalf("last allowed request: remaining %d, %v", resp.Rate.Remaining, err)
	}
	// A fresh client (no remembered rate) reaches the server and gets 403.
	c2 := newClient(t, s)
	_, _, err = c2.Repositories.GetLatestRelease(ctx, "Azure", "cyclecloud-slurm")
	var rl *github.RateLimitError
	if !errors.As(err, &rl) {
		t.Fatalf("err = %v, want *github.RateLimitError", err)
	}
	if rl.Response.StatusCode != 403 || rl.Rate.Remaining != 0 || rl.Rate.Reset.Unix() != reset.Unix() ||
		!strings.HasPrefix(rl.Message, "API rate limit exceeded for ") {
		t.Fatalf("rate limit error: status %d, %+v, %q", rl.Response.StatusCode, rl.Rate, rl.Message)
	}
	// Downloads do not spend the API budget.
	as, _ := s.Assets("cyclecloud-slurm", "3.0.12")
	if resp, _ := get(t, as[0].URL); resp.StatusCode != 200 {
		t.Fatalf("download while rate limited: %s", resp.Status)
	}
	// Once reset has passed the budget refills.
	s.SetRateLimit(0, time.Now().Add(-time.Second))
	if _, _, err := newClient(t, s).Repositories.GetLatestRelease(ctx, "Azure", "cyclecloud-slurm"); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}
