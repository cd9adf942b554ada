package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// TestFetchFixtures fetches every fixture release into its own bundle and
// reads it back with full verification: the source archive byte for byte,
// every blob project.ini names and every asset of the release, with the
// hashes GitHub announced.
func TestFetchFixtures(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	f := newFetcher(t, o)
	tests := []struct {
		ref, repo, tag, name string
		fromSource           []string // blobs expected from the source tree
	}{
		{"slurm@2.5.0", "cyclecloud-slurm", "2.5.0", "slurm", nil},
		{"slurm@2.6.1", "cyclecloud-slurm", "2.6.1", "slurm", nil},
		{"slurm@2.7.0", "cyclecloud-slurm", "2.7.0", "slurm", nil},
		{"slurm@2.7.4", "cyclecloud-slurm", "2.7.4", "slurm", nil},
		{"slurm@3.0.12", "cyclecloud-slurm", "3.0.12", "slurm", nil},
		{"Azure/cyclecloud-slurm@4.0.9", "cyclecloud-slurm", "4.0.9", "slurm", nil},
		{"pbspro@2.0.25", "cyclecloud-pbspro", "2.0.25", "pbspro", nil},
		{"https://github.com/Azure/cyclecloud-gridengine/releases/2.1.0", "cyclecloud-gridengine", "2.1.0", "gridengine", nil},
		{"https://github.com/Azure/cyclecloud-hpcpack/releases/tag/2.1.2", "cyclecloud-hpcpack", "2.1.2", "hpcpack", []string{"vnet.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "b.tar")
			res, err := f.Fetch(context.Background(), []Ref{mustRef(t, tt.ref)}, out)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if res.Path != out {
				t.Errorf("Result.Path = %q, want %q", res.Path, out)
			}
			r, files := readBundle(t, out)
			if r.Signature() != nil {
				t.Error("unsigned fetch wrote a signature")
			}
			m := r.Manifest()
			if len(m.Projects) != 1 {
				t.Fatalf("%d projects, want 1", len(m.Projects))
			}
			p := m.Projects[0]
			repo := "Azure/" + tt.repo
			commit, err := s.Commit(repo, tt.tag)
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tt.name || p.Version != tt.tag || p.Tag != tt.tag || p.Repository != repo || p.Commit != commit {
				t.Errorf("project = %s %s tag %s repo %s commit %s; want %s %s tag %s repo %s commit %s",
					p.Name, p.Version, p.Tag, p.Repository, p.Commit, tt.name, tt.tag, tt.tag, repo, commit)
			}
			if !strings.Contains(p.ReleaseURL, tt.repo+"/releases/tag/"+tt.tag) {
				t.Errorf("release URL %q", p.ReleaseURL)
			}
			if m.Tool != "ccmirror "+Version || m.Schema != manifest.Schema || m.Created.IsZero() {
				t.Errorf("manifest header: tool %q schema %q created %v", m.Tool, m.Schema, m.Created)
			}
			arch, err := s.Archive(repo, tt.tag)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(files[manifest.SourcePath(tt.name, tt.tag)], arch) {
				t.Errorf("source archive in the bundle differs from GitHub's tag archive")
			}
			blobs := map[string]manifest.Blob{}
			for _, b := range p.Blobs {
				blobs[b.Name] = b
				if got := sha256hex(files[b.Path]); got != b.SHA256 {
					t.Errorf("blob %s: payload sha256 %s, manifest %s", b.Name, got, b.SHA256)
				}
			}
			// Every asset of the release, byte for byte as GitHub serves it.
			assets, err := s.Assets(repo, tt.tag)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range assets {
				b, ok := blobs[a.Name]
				switch {
				case !ok:
					t.Errorf("asset %s not carried", a.Name)
				case b.SHA256 != a.SHA256 || b.Size != a.Size || b.Digest != "sha256:"+a.SHA256:
					t.Errorf("asset %s: carried %d bytes sha256 %s digest %s; GitHub has %d bytes %s", a.Name, b.Size, b.SHA256, b.Digest, a.Size, a.SHA256)
				case b.Origin != "release" || b.Release != tt.tag || b.URL != a.URL:
					t.Errorf("asset %s: origin %q release %q url %q", a.Name, b.Origin, b.Release, b.URL)
				}
			}
			// Every blob project.ini names.
			ini := projectINIFromArchive(t, arch)
			for _, name := range ini.Blobs {
				if _, ok := blobs[name]; !ok {
					t.Errorf("blob %s named by project.ini not carried", name)
				}
			}
			for _, name := range tt.fromSource {
				b, ok := blobs[name]
				if !ok || b.Origin != "source" || b.Release != "" {
					t.Errorf("blob %s: %+v, want it from the source tree", name, b)
				}
			}
		})
	}
}

func projectINIFromArchive(t *testing.T, arch []byte) *manifest.ProjectINI {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.tar.gz")
	if err := os.WriteFile(p, arch, 0o644); err != nil {
		t.Fatal(err)
	}
	scan, err := scanArchive(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ini, err := manifest.ParseProjectINI(bytes.NewReader(scan.projectINI), "project.ini")
	if err != nil {
		t.Fatal(err)
	}
	return ini
}

// The documented procedure takes slurm 2.5.0's cyclecloud_api wheel from
// release 2.6.1; the manifest must say so.
func TestFetchCrossReleaseBlob(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	f := newFetcher(t, testOptions(t, s))
	out := filepath.Join(t.TempDir(), "slurm.tar")
	if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out); err != nil {
		t.Fatal(err)
	}
	r, files := readBundle(t, out)
	const wheel = "cyclecloud_api-8.1.0-py2.py3-none-any.whl"
	want, err := s.Assets("Azure/cyclecloud-slurm", "2.6.1")
	if err != nil {
		t.Fatal(err)
	}
	var info githubtest.AssetInfo
	for _, a := range want {
		if a.Name == wheel {
			info = a
		}
	}
	for _, b := range r.Manifest().Projects[0].Blobs {
		if b.Name != wheel {
			continue
		}
		if b.Release != "2.6.1" || b.Origin != "release" || b.SHA256 != info.SHA256 || b.URL != info.URL {
			t.Fatalf("wheel: release %q origin %q sha256 %s url %s; want release 2.6.1, sha256 %s, url %s", b.Release, b.Origin, b.SHA256, b.URL, info.SHA256, info.URL)
		}
		if sha256hex(files[b.Path]) != info.SHA256 {
			t.Fatal("wheel payload differs from release 2.6.1's asset")
		}
		return
	}
	t.Fatalf("wheel %s not in the bundle", wheel)
}

// A blob found nowhere fails the whole fetch, naming every missing blob and
// where it was looked for; the blob dirs are the last resort.
func TestFetchMissingBlobs(t *testing.T) {
	const wheel = "cyclecloud_api-8.1.0-py2.py3-none-any.whl"
	// Without release 2.6.1 the wheel exists nowhere; a second entry in a
	// sub-folder of blobs/ is missing too.
	fx := fixtureSubset(t, map[string][]string{"cyclecloud-slurm": {"2.5.0", "3.0.12"}}, func(repo, tag string, ini []byte) []byte {
		if tag != "2.5.0" {
			return ini
		}
		return bytes.Replace(ini, []byte("Files = "+wheel), []byte("Files = "+wheel+", extra/"+wheel), 1)
	})
	s := newFake(t, githubtest.Options{Fixtures: fx})
	blobDir := t.TempDir()
	o := testOptions(t, s)
	o.BlobDirs = []string{blobDir}
	f := newFetcher(t, o)
	dir := t.TempDir()
	out := filepath.Join(dir, "slurm.tar")
	_, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out)
	if !errors.Is(err, ErrUpstream) {
		t.Fatalf("err = %v, want ErrUpstream", err)
	}
	msg := err.Error()
	t.Logf("error: %v", err)
	for _, want := range []string{"fetch slurm@2.5.0", "2 blob(s) not found", wheel + ", extra/" + wheel,
		"source tree", "assets of release 2.5.0", "2 other release(s) of Azure/cyclecloud-slurm (3.0.13, 3.0.12)", "--blob-dir " + blobDir} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	assertNoLeftovers(t, dir, out)

	// With the wheel in a blob dir both entries are found there.
	content := []byte("the wheel, carried by hand")
	if err := os.WriteFile(filepath.Join(blobDir, wheel), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out); err != nil {
		t.Fatalf("Fetch with --blob-dir: %v", err)
	}
	r, files := readBundle(t, out)
	found := 0
	for _, b := range r.Manifest().Projects[0].Blobs {
		if b.Name == wheel || b.Name == "extra/"+wheel {
			found++
			if b.Origin != "blob-dir" || b.Release != "" || !bytes.Equal(files[b.Path], content) {
				t.Errorf("blob %s: origin %q release %q, content %q", b.Name, b.Origin, b.Release, files[b.Path])
			}
		}
	}
	if found != 2 {
		t.Errorf("found %d of the 2 blob-dir blobs in the bundle", found)
	}
}

func TestFetchReleaseNotFound(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	f := newFetcher(t, testOptions(t, s))
	dir := t.TempDir()
	out := filepath.Join(dir, "x.tar")
	tests := []struct{ ref, want string }{
		{"slurm@9.9.9", "fetch slurm@9.9.9: release not found on Azure/cyclecloud-slurm"},
		{"lsf", "fetch lsf@latest: list releases: repository Azure/cyclecloud-lsf not found"},
	}
	for _, tt := range tests {
		_, err := f.Fetch(context.Background(), []Ref{mustRef(t, tt.ref)}, out)
		if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Fetch(%s) = %v, want ErrUpstream %q", tt.ref, err, tt.want)
		}
	}
	assertNoLeftovers(t, dir, out)
}

// tamperTransport flips one byte of the named asset's body as the download
// host serves it: the bytes no longer match GitHub's digest.
type tamperTransport struct {
	base  http.RoundTripper
	asset string
}

func (tt tamperTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tt.base.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/releases/download/2.5.0/"+tt.asset) || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	b[len(b)/2] ^= 0xff
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// Bytes that do not match GitHub's digest fail with ErrVerify, leave no
// bundle, and are not kept in the cache.
func TestFetchDigestMismatch(t *testing.T) {
	const asset = "slurm-19.05.8-1.el7.x86_64.rpm"
	t.Run("bytes altered in transit", func(t *testing.T) {
		s := newFake(t, githubtest.Options{})
		o := testOptions(t, s)
		o.HTTPClient = &http.Client{Transport: tamperTransport{http.DefaultTransport, asset}}
		f := newFetcher(t, o)
		dir := t.TempDir()
		out := filepath.Join(dir, "slurm.tar")
		_, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out)
		if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), asset) {
			t.Fatalf("err = %v, want ErrVerify naming %s", err, asset)
		}
		if errors.Is(err, ErrUpstream) {
			t.Errorf("a digest mismatch also matches ErrUpstream: %v", err)
		}
		t.Logf("error: %v", err)
		assertNoLeftovers(t, dir, out)
		assertNoPartialDownloads(t, o.CacheDir)
	})
	t.Run("asset replaced after the release was read", func(t *testing.T) {
		s := newFake(t, githubtest.Options{})
		o := testOptions(t, s)
		var once sync.Once
		// Have runs after the release JSON was read and before any asset is
		// downloaded: the moment to re-upload the asset on "GitHub".
		o.Have = func(project, blob, sha string) bool {
			once.Do(func() {
				if err := s.ReplaceAsset("Azure/cyclecloud-slurm", "2.5.0", asset, []byte("not what the digest says")); err != nil {
					t.Error(err)
				}
			})
			return false
		}
		f := newFetcher(t, o)
		dir := t.TempDir()
		out := filepath.Join(dir, "slurm.tar")
		_, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out)
		if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), asset) {
			t.Fatalf("err = %v, want ErrVerify naming %s", err, asset)
		}
		assertNoLeftovers(t, dir, out)
		assertNoPartialDownloads(t, o.CacheDir)
	})
}

func assertNoPartialDownloads(t *testing.T, cacheDir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(cacheDir, "partial"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		// Other downloads may have been interrupted by the failure and stay
		// for a resume; the rejected one must not.
		b, _ := os.ReadFile(filepath.Join(cacheDir, "partial", e.Name()))
		if strings.HasSuffix(e.Name(), ".json") && strings.Contains(string(b), "slurm-19.05.8-1.el7.x86_64.rpm") {
			t.Errorf("rejected download kept in the cache: %s", b)
		}
	}
}

// With 30% of all requests failing with 5xx the fetch still succeeds.
func TestFetchSurvivesServerErrors(t *testing.T) {
	s := newFake(t, githubtest.Options{Seed: 7})
	s.SetFailRate(0.3)
	o := testOptions(t, s)
	o.RetryMax = 12
	f := newFetcher(t, o)
	out := filepath.Join(t.TempDir(), "b.tar")
	if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0"), mustRef(t, "pbspro@2.0.25")}, out); err != nil {
		t.Fatalf("Fetch with 30%% failures: %v", err)
	}
	r, _ := readBundle(t, out)
	if len(r.Manifest().Projects) != 2 {
		t.Fatalf("%d projects", len(r.Manifest().Projects))
	}
	failed := 0
	for _, l := range s.Requests() {
		if l.Status >= 500 {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("the fake injected no failures; the test proves nothing")
	}
	t.Logf("%d requests, %d answered 5xx", len(s.Requests()), failed)
}

func TestFetchRateLimit(t *testing.T) {
	t.Run("short reset is waited out", func(t *testing.T) {
		s := newFake(t, githubtest.Options{})
		reset := time.Now().Add(1500 * time.Millisecond)
		s.SetRateLimit(0, reset)
		f := newFetcher(t, testOptions(t, s))
		out := filepath.Join(t.TempDir(), "b.tar")
		if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if now := time.Now(); now.Before(reset.Truncate(time.Second)) {
			t.Errorf("fetch finished at %v, before the rate limit reset at %v", now, reset)
		}
		limited := 0
		for _, l := range s.Requests() {
			if l.Status == http.StatusForbidden {
				limited++
			}
		}
		if limited == 0 {
			t.Error("no request was rate limited; the test proves nothing")
		}
	})
	t.Run("long reset fails naming the reset time", func(t *testing.T) {
		s := newFake(t, githubtest.Options{})
		reset := time.Now().Add(47 * time.Minute).Truncate(time.Second)
		s.SetRateLimit(0, reset)
		o := testOptions(t, s)
		o.MaxRateLimitWait = 2 * time.Second
		f := newFetcher(t, o)
		dir := t.TempDir()
		out := filepath.Join(dir, "b.tar")
		_, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out)
		if !errors.Is(err, ErrUpstream) {
			t.Fatalf("err = %v, want ErrUpstream", err)
		}
		t.Logf("error: %v", err)
		var rl *RateLimitError
		if !errors.As(err, &rl) || !rl.Reset.Equal(reset) {
			t.Fatalf("err = %v, want a RateLimitError with reset %v", err, reset)
		}
		if !strings.Contains(err.Error(), reset.UTC().Format(time.RFC3339)) {
			t.Errorf("error %q does not name the reset time %s", err, reset.UTC().Format(time.RFC3339))
		}
		// A long reset fails at once: no refused request is retried (the
		// tag's release and commit are asked for at once, so both may be
		// refused, each once).
		limited := map[string]int{}
		for _, l := range s.Requests() {
			if l.Status == http.StatusForbidden {
				limited[l.Path]++
			}
		}
		if len(limited) == 0 {
			t.Errorf("no rate-limited request")
		}
		for path, n := range limited {
			if n != 1 {
				t.Errorf("%s refused %d times, want 1: a long reset should fail at once, not be retried", path, n)
			}
		}
		assertNoLeftovers(t, dir, out)
	})
}

// A download cut halfway resumes with Range from the bytes already on disk.
func TestFetchResumesTruncatedDownload(t *testing.T) {
	const asset = "cyclecloud-gridengine-pkg-2.1.0.tar.gz"
	for _, token := range []string{"", "secret-token"} {
		name := "browser URL"
		if token != "" {
			name = "API URL with token"
		}
		t.Run(name, func(t *testing.T) {
			s := newFake(t, githubtest.Options{BlobSize: 8192})
			s.TruncateOnce(asset, 3000)
			o := testOptions(t, s)
			o.Token = token
			f := newFetcher(t, o)
			out := filepath.Join(t.TempDir(), "b.tar")
			if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out); err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			readBundle(t, out)
			var got []githubtest.RequestLog
			for _, l := range s.Requests() {
				if l.Host == githubtest.HostDownload && strings.HasSuffix(l.Path, "/"+asset) {
					got = append(got, l)
				}
				if l.Host == githubtest.HostDownload && l.Auth {
					t.Errorf("the token was sent to the download host: %s", l.Path)
				}
				if token != "" && l.Host == githubtest.HostAPI && !l.Auth {
					t.Errorf("API request without the token: %s", l.Path)
				}
			}
			if len(got) != 2 {
				t.Fatalf("%d download requests for %s, want 2: %+v", len(got), asset, got)
			}
			if got[0].Range != "" || got[1].Range != "bytes=3000-" || got[1].Status != http.StatusPartialContent {
				t.Errorf("requests: range %q then %q (status %d); want none then bytes=3000- (206)", got[0].Range, got[1].Range, got[1].Status)
			}
			if token != "" {
				apiAsset := 0
				for _, l := range s.Requests() {
					if l.Host == githubtest.HostAPI && strings.Contains(l.Path, "/releases/assets/") && l.Accept == "application/octet-stream" {
						apiAsset++
					}
				}
				if apiAsset == 0 {
					t.Error("with a token, assets should be downloaded through the API URL")
				}
			}
		})
	}
}

// A stalled connection is detected by the idle timeout and resumed.
func TestFetchResumesStalledDownload(t *testing.T) {
	const asset = "sge-2011.11-64.tgz"
	s := newFake(t, githubtest.Options{BlobSize: 4096})
	// The stall outlasts any test run: the fetch only completes when the
	// idle timeout detects it and resumes.
	s.SetStall(asset, 2500, 24*time.Hour)
	o := testOptions(t, s)
	o.IdleTimeout = 300 * time.Millisecond
	f := newFetcher(t, o)
	out := filepath.Join(t.TempDir(), "b.tar")
	if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	readBundle(t, out)
	var ranges []string
	for _, l := range s.Requests() {
		if l.Host == githubtest.HostDownload && strings.HasSuffix(l.Path, "/"+asset) {
			ranges = append(ranges, l.Range)
		}
	}
	if len(ranges) != 2 || ranges[0] != "" || ranges[1] != "bytes=2500-" {
		t.Errorf("ranges requested: %q; want \"\" then \"bytes=2500-\"", ranges)
	}
}

// A second fetch of an unchanged release transfers no asset bytes and no
// archive bytes, with or without digests, whether or not the download host
// answers conditional requests: the cache knows an asset by its identity
// (id, size, updated_at) and an archive by its tag's commit, so it does
// not even ask.
func TestFetchWarmCache(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    githubtest.Options
	}{
		{"digests", githubtest.Options{}},
		{"no digests", githubtest.Options{NoDigests: true}},
		{"digests, If-None-Match ignored", githubtest.Options{IgnoreIfNoneMatch: true}},
		{"no digests, If-None-Match ignored", githubtest.Options{NoDigests: true, IgnoreIfNoneMatch: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t, tc.o)
			o := testOptions(t, s)
			f := newFetcher(t, o)
			refs := []Ref{mustRef(t, "slurm@2.5.0"), mustRef(t, "hpcpack@2.1.2")}
			first, err := f.Fetch(context.Background(), refs, filepath.Join(t.TempDir(), "1.tar"))
			if err != nil {
				t.Fatal(err)
			}
			if first.Downloaded == 0 || first.Downloaded != s.AssetBytesServed() {
				t.Errorf("first fetch: Downloaded %d, server served %d", first.Downloaded, s.AssetBytesServed())
			}
			s.ResetCounters()
			// A new Fetcher on the same cache: nothing kept in memory.
			f2 := newFetcher(t, o)
			out := filepath.Join(t.TempDir(), "2.tar")
			second, err := f2.Fetch(context.Background(), refs, out)
			if err != nil {
				t.Fatal(err)
			}
			if n := s.AssetBytesServed(); n != 0 {
				t.Errorf("warm fetch: server sent %d asset and archive bytes, want 0", n)
			}
			for _, l := range s.Requests() {
				if l.Host == githubtest.HostDownload {
					t.Errorf("warm fetch asked the download host: %s %s (status %d)", l.Method, l.Path, l.Status)
				}
			}
			if second.Downloaded != 0 || second.CacheHits == 0 || second.Cached < first.Downloaded-first.Cached {
				t.Errorf("warm fetch: Downloaded %d, CacheHits %d, Cached %d", second.Downloaded, second.CacheHits, second.Cached)
			}
			readBundle(t, out)
		})
	}
}

// Cancelling mid-fetch leaves neither a bundle nor a temporary file.
func TestFetchCancel(t *testing.T) {
	t.Run("during downloads", func(t *testing.T) {
		// One asset stalls after 20 KiB, so the cancel is sure to find it
		// half received, whatever the machine's load.
		const stalled = "slurm-19.05.8-1.el7.x86_64.rpm"
		s := newFake(t, githubtest.Options{BlobSize: 64 << 10})
		s.SetStall(stalled, 20<<10, time.Minute)
		o := testOptions(t, s)
		f := newFetcher(t, o)
		dir := t.TempDir()
		out := filepath.Join(dir, "slurm.tar")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			// Cancel once a partial download has sat at 20 KiB or more for
			// a while: the stalled asset, half received.
			seen, still := map[string]int64{}, 0
			for ctx.Err() == nil && still < 4 {
				time.Sleep(50 * time.Millisecond)
				now := partials(o.CacheDir)
				still = 0
				for name, n := range now {
					if n >= 20<<10 && seen[name] == n {
						still++
					}
				}
				if still > 0 {
					still = 4
				}
				seen = now
			}
			cancel()
		}()
		_, err := f.Fetch(ctx, []Ref{mustRef(t, "slurm@2.5.0")}, out)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if errors.Is(err, ErrUpstream) {
			t.Errorf("a cancellation matches ErrUpstream: %v", err)
		}
		assertNoLeftovers(t, dir, out)

		// The next run resumes what the cancelled one had received.
		s.SetStall(stalled, 0, 0)
		s.ResetCounters()
		if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out); err != nil {
			t.Fatalf("fetch after cancel: %v", err)
		}
		readBundle(t, out)
		// The log may still gain the first run's stalled request, which
		// ends only now; it sent 20 KiB, never the whole asset.
		resumed, whole := false, false
		var ranges []string
		for _, l := range s.Requests() {
			if l.Host != githubtest.HostDownload || !strings.HasSuffix(l.Path, "/"+stalled) {
				continue
			}
			ranges = append(ranges, l.Range)
			if strings.HasPrefix(l.Range, "bytes=") && l.Range != "bytes=0-" {
				resumed = true
			}
			if l.Range == "" && l.Bytes >= 64<<10 {
				whole = true
			}
		}
		if !resumed || whole {
			t.Errorf("the half-received %s was not resumed with a Range (requests had Range %q)", stalled, ranges)
		}
	})
	t.Run("while writing the bundle", func(t *testing.T) {
		s := newFake(t, githubtest.Options{})
		o := testOptions(t, s)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Signing happens inside WriteBundle, after the temporary file
		// was created and before the payload is copied.
		o.Signer = cancelSigner{cancel}
		f := newFetcher(t, o)
		dir := t.TempDir()
		out := filepath.Join(dir, "slurm.tar")
		_, err := f.Fetch(ctx, []Ref{mustRef(t, "slurm@2.5.0")}, out)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		assertNoLeftovers(t, dir, out)
	})
}

type cancelSigner struct{ cancel context.CancelFunc }

func (c cancelSigner) Sign([]byte) ([]byte, error) {
	c.cancel()
	return []byte("-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n"), nil
}

// Several refs go into one bundle; the default output name follows the
// projects; a ref without version takes the latest release.
func TestFetchDefaultOutputAndLatest(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	created := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	o.Now = func() time.Time { return created }
	f := newFetcher(t, o)
	t.Chdir(t.TempDir())

	res, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != "slurm-4.0.9.tar" {
		t.Errorf("default output %q, want slurm-4.0.9.tar (latest)", res.Path)
	}
	readBundle(t, res.Path)

	// The same release named twice is carried once.
	res, err = f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.7.4"), mustRef(t, "pbspro@2.0.25"), mustRef(t, "Azure/cyclecloud-slurm@2.7.4")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != "ccmirror-20250304-050607.tar" {
		t.Errorf("default output %q, want ccmirror-20250304-050607.tar", res.Path)
	}
	r, _ := readBundle(t, res.Path)
	var got []string
	for _, p := range r.Manifest().Projects {
		got = append(got, p.Name+"@"+p.Version)
	}
	if strings.Join(got, " ") != "slurm@2.7.4 pbspro@2.0.25" {
		t.Errorf("projects %v", got)
	}
	if !r.Manifest().Created.Equal(created) {
		t.Errorf("created %v, want %v", r.Manifest().Created, created)
	}
}

// Blobs the target server already holds are listed under Required and
// never downloaded.
func TestFetchHave(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	assets, err := s.Assets("Azure/cyclecloud-gridengine", "2.1.0")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, a := range assets[1:] {
		have[a.Name] = a.SHA256
	}
	o := testOptions(t, s)
	var asked atomic.Int32
	o.Have = func(project, blob, sha string) bool {
		asked.Add(1)
		return project == "gridengine" && have[blob] == sha
	}
	f := newFetcher(t, o)
	out := filepath.Join(t.TempDir(), "b.tar")
	if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out); err != nil {
		t.Fatal(err)
	}
	r, _ := readBundle(t, out)
	p := r.Manifest().Projects[0]
	if len(p.Blobs) != 1 || p.Blobs[0].Name != assets[0].Name {
		t.Errorf("carried %+v, want only %s", p.Blobs, assets[0].Name)
	}
	if len(p.Required) != len(have) {
		t.Errorf("required %+v, want %d blobs", p.Required, len(have))
	}
	for _, b := range p.Required {
		if have[b.Name] != b.SHA256 || b.Path != "" {
			t.Errorf("required blob %+v", b)
		}
	}
	for _, l := range s.Requests() {
		for name := range have {
			if strings.HasSuffix(l.Path, "/"+name) {
				t.Errorf("blob %s the server has was downloaded", name)
			}
		}
	}
	if asked.Load() == 0 {
		t.Error("Have was never asked")
	}
}

func TestReleases(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	f := newFetcher(t, testOptions(t, s))
	rels, err := f.Releases(context.Background(), "Azure", "cyclecloud-slurm")
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, r := range rels {
		tags = append(tags, r.Tag)
	}
	// GitHub's order: newest published first (the backport 3.0.13 came
	// out after 4.0.9).
	if strings.Join(tags, " ") != "3.0.13 4.0.9 3.0.12 2.7.4 2.7.0 2.6.1 2.5.0" {
		t.Errorf("releases %v, want newest first", tags)
	}
	// More releases than one page holds: pagination, still newest first.
	for i := 1; i <= 120; i++ {
		if err := s.AddRelease("Azure/cyclecloud-pbspro", fmt.Sprintf("3.0.%d", i), "2.0.25"); err != nil {
			t.Fatal(err)
		}
	}
	rels, err = f.Releases(context.Background(), "Azure", "cyclecloud-pbspro")
	if err != nil {
		t.Fatal(err)
	}
	// 2.0.25, its two dated -bins releases, then the 120 added.
	if len(rels) != 123 || rels[0].Tag != "3.0.120" || rels[119].Tag != "3.0.1" || rels[122].Tag != "2.0.25" {
		t.Errorf("%d releases, first %s", len(rels), rels[0].Tag)
	}
	pages := 0
	for _, l := range s.Requests() {
		if strings.HasSuffix(l.Path, "/repos/Azure/cyclecloud-pbspro/releases") {
			pages++
		}
	}
	if pages < 2 {
		t.Errorf("%d page requests for 121 releases", pages)
	}
	rel, err := f.Resolve(context.Background(), mustRef(t, "pbspro@2.0.25"))
	if err != nil || rel.Tag != "2.0.25" {
		t.Errorf("Resolve(pbspro@2.0.25) = %+v, %v", rel, err)
	}
	if rel, err := f.Resolve(context.Background(), mustRef(t, "pbspro")); err != nil || rel.Tag != "3.0.120" {
		t.Errorf("Resolve(pbspro) = %+v, %v; want the latest, 3.0.120", rel, err)
	}
	if _, err := f.Releases(context.Background(), "Azure", "nope"); !errors.Is(err, ErrUpstream) {
		t.Errorf("Releases of a missing repository: %v, want ErrUpstream", err)
	}
}

// Two versions of one project share their blobs folder: a blob both name
// is carried once.
func TestFetchTwoVersionsShareBlobs(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	f := newFetcher(t, testOptions(t, s))
	out := filepath.Join(t.TempDir(), "b.tar")
	if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.7.0"), mustRef(t, "slurm@2.7.4")}, out); err != nil {
		t.Fatal(err)
	}
	r, files := readBundle(t, out)
	m := r.Manifest()
	if len(m.Projects) != 2 {
		t.Fatalf("%d projects", len(m.Projects))
	}
	in270 := map[string]string{}
	for _, b := range m.Projects[0].Blobs {
		in270[b.Path] = b.SHA256
	}
	shared := 0
	for _, b := range m.Projects[1].Blobs {
		if sha, ok := in270[b.Path]; ok {
			shared++
			if sha != b.SHA256 {
				t.Errorf("shared blob %s with two hashes", b.Name)
			}
		}
	}
	if shared == 0 {
		t.Fatal("2.7.0 and 2.7.4 share no blob; the test proves nothing")
	}
	if len(files) != len(m.Files()) {
		t.Errorf("%d payload files, manifest lists %d", len(files), len(m.Files()))
	}
}

// The staging folder follows project.ini's version; a tag that differs is
// a warning, not an error.
func TestFetchVersionDiffersFromTag(t *testing.T) {
	fx := fixtureSubset(t, map[string][]string{"cyclecloud-gridengine": {"2.1.0"}}, func(repo, tag string, ini []byte) []byte {
		return bytes.Replace(ini, []byte("version = 2.1.0"), []byte("version = 2.1.0-hotfix"), 1)
	})
	s := newFake(t, githubtest.Options{Fixtures: fx})
	f := newFetcher(t, testOptions(t, s))
	out := filepath.Join(t.TempDir(), "b.tar")
	res, err := f.Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "2.1.0-hotfix") {
		t.Errorf("warnings %q, want one naming the project.ini version", res.Warnings)
	}
	r, files := readBundle(t, out)
	p := r.Manifest().Projects[0]
	if p.Version != "2.1.0-hotfix" || p.Tag != "2.1.0" {
		t.Errorf("version %q tag %q", p.Version, p.Tag)
	}
	if _, ok := files[manifest.SourcePath("gridengine", "2.1.0-hotfix")]; !ok {
		t.Error("source not under the project.ini version")
	}
}

// notFoundTransport answers 404 for the web host's tag archives, as GitHub
// does for a private repository without a browser session.
type notFoundTransport struct{ base http.RoundTripper }

func (n notFoundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/archive/refs/tags/") {
		return &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Header: http.Header{},
			Body: io.NopCloser(strings.NewReader("Not Found")), Request: req}, nil
	}
	return n.base.RoundTrip(req)
}

// When the web host refuses the archive, the API's tarball endpoint (which
// redirects to the content) is used instead.
func TestFetchArchiveFallsBackToAPITarball(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	o.Token = "secret"
	o.HTTPClient = &http.Client{Transport: notFoundTransport{http.DefaultTransport}}
	f := newFetcher(t, o)
	out := filepath.Join(t.TempDir(), "b.tar")
	if _, err := f.Fetch(context.Background(), []Ref{mustRef(t, "hpcpack@2.1.2")}, out); err != nil {
		t.Fatal(err)
	}
	r, files := readBundle(t, out)
	p := r.Manifest().Projects[0]
	if !strings.Contains(p.Source.URL, "/repos/Azure/cyclecloud-hpcpack/tarball/2.1.2") {
		t.Errorf("source URL %q, want the API tarball endpoint", p.Source.URL)
	}
	if len(files[p.Source.Path]) == 0 {
		t.Error("no source archive")
	}
	found := false
	for _, b := range p.Blobs {
		found = found || (b.Name == "vnet.json" && b.Origin == "source")
	}
	if !found {
		t.Error("blobs/vnet.json not read from the API tarball")
	}
}

// An unreachable GitHub is an upstream failure, after the retries.
func TestFetchNetworkDown(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	o.RetryMax = 2
	s.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	_, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "slurm@2.5.0")}, out)
	if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "fetch slurm@2.5.0") || !strings.Contains(err.Error(), "3 attempt(s)") {
		t.Fatalf("err = %v, want ErrUpstream after 3 attempts", err)
	}
	t.Logf("error: %v", err)
	assertNoLeftovers(t, dir, out)
}

// TestFetchReusedBundleStaysSound checks the bundle cache from the user's
// side: an unchanged re-fetch gives a bundle identical to the first, and a
// first bundle changed in place afterwards (the cache holds a hard link to
// it) is never handed out again.
func TestFetchReusedBundleStaysSound(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	ref := []Ref{mustRef(t, "gridengine@2.1.0")}
	dir := t.TempDir()
	first := filepath.Join(dir, "first.tar")
	if _, err := newFetcher(t, o).Fetch(context.Background(), ref, first); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again.tar")
	if _, err := newFetcher(t, o).Fetch(context.Background(), ref, again); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("re-fetch of an unchanged release gave different bytes")
	}

	// Damage both earlier outputs in place, as a careless copy tool might.
	for _, p := range []string{first, again} {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{'X'}, int64(len(a)-3000))
		f.Close()
	}
	third := filepath.Join(dir, "third.tar")
	if _, err := newFetcher(t, o).Fetch(context.Background(), ref, third); err != nil {
		t.Fatal(err)
	}
	readBundle(t, third) // fails the test on any hash mismatch
}

// partials maps each partial download in a cache to its size.
func partials(cacheDir string) map[string]int64 {
	m := map[string]int64{}
	entries, _ := os.ReadDir(filepath.Join(cacheDir, "partial"))
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && !strings.HasSuffix(e.Name(), ".json") {
			m[e.Name()] = fi.Size()
		}
	}
	return m
}
