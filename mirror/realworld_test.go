package mirror

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/mirror/githubtest"
)

// Tests of the world as GitHub serves the Azure CycleCloud projects: a
// backport marked latest, prerelease-only repositories, dated -bins
// releases, assets without digests, streamed archives.

// "latest" is the highest version, whatever GitHub marks latest, and the
// result says so in one line.
func TestFetchLatestByVersion(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	f := newFetcher(t, testOptions(t, s))
	for _, tc := range []struct{ ref, tag, note string }{
		{"slurm", "4.0.9", "slurm latest → 4.0.9 (highest version; GitHub marks 3.0.13 latest)"},
		{"pbspro@latest", "2.0.25", "pbspro latest → 2.0.25 (highest version; GitHub marks no release latest)"},
		{"gridengine", "2.1.0", "gridengine latest → 2.1.0 (highest version; GitHub marks no release latest)"},
		{"slurm@3.0.13", "3.0.13", ""},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			res, err := f.Fetch(context.Background(), []Ref{mustRef(t, tc.ref)}, filepath.Join(t.TempDir(), "b.tar"))
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Manifest.Projects[0].Tag; got != tc.tag {
				t.Errorf("fetched %s, want %s", got, tc.tag)
			}
			if len(res.Resolved) != 1 || res.Resolved[0].Tag != tc.tag || res.Resolved[0].Note != tc.note {
				t.Errorf("Resolved = %+v, want tag %s note %q", res.Resolved, tc.tag, tc.note)
			}
		})
	}
	rel, err := f.Resolve(context.Background(), mustRef(t, "hpcpack"))
	if err != nil || rel.Tag != "2.1.2" || !rel.Prerelease {
		t.Errorf("Resolve(hpcpack) = %+v, %v; want the prerelease 2.1.2", rel, err)
	}
}

// A repository without a version-tagged release fails with ErrUpstream
// (exit 3) in one line naming what it has.
func TestFetchNoVersionRelease(t *testing.T) {
	ini := []byte("[project]\nname = blobs\nversion = 1.0.0\n[blobs]\nFiles = a.tgz\n")
	tree := []byte("100644\t60\tproject.ini\n")
	commit := []byte("0123456789abcdef0123456789abcdef01234567\n")
	fsys := fstest.MapFS{}
	for _, tag := range []string{"2023-03-29-bins", "nightly"} {
		fsys["projects/blobs/"+tag+"/commit"] = &fstest.MapFile{Data: commit}
		fsys["projects/blobs/"+tag+"/project.ini"] = &fstest.MapFile{Data: ini}
		fsys["projects/blobs/"+tag+"/tree.tsv"] = &fstest.MapFile{Data: tree}
	}
	s := newFake(t, githubtest.Options{Fixtures: fsys, Owner: "Contoso"})
	f := newFetcher(t, testOptions(t, s))
	dir := t.TempDir()
	out := filepath.Join(dir, "b.tar")
	_, err := f.Fetch(context.Background(), []Ref{mustRef(t, "Contoso/blobs")}, out)
	if !errors.Is(err, ErrUpstream) {
		t.Fatalf("err = %v, want ErrUpstream", err)
	}
	msg := err.Error()
	for _, w := range []string{"Contoso/blobs@latest", "no release tagged with a version", "2023-03-29-bins", "nightly"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	assertNoLeftovers(t, dir, out)
}

// Blobs that live only on dated -bins releases (prereleases, in pbspro)
// are found there; their assets have no digest, next to assets that have.
func TestFetchBlobsOnBinsReleases(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	f := newFetcher(t, testOptions(t, s))
	out := filepath.Join(t.TempDir(), "b.tar")
	res, err := f.Fetch(context.Background(), []Ref{mustRef(t, "pbspro")}, out)
	if err != nil {
		t.Fatal(err)
	}
	readBundle(t, out)
	want := map[string]string{
		"pbspro-debuginfo-18.1.4-0.x86_64.rpm": "2023-03-29-bins",
		"pbspro-client-18.1.4-0.x86_64.rpm":    "2024-12-03-bins",
	}
	withDigest := 0
	for _, b := range res.Manifest.Projects[0].Blobs {
		if rel, ok := want[b.Name]; ok {
			if b.Release != rel || b.Origin != "release" || b.Digest != "" {
				t.Errorf("blob %s: release %q origin %q digest %q; want release %s, no digest", b.Name, b.Release, b.Origin, b.Digest, rel)
			}
			delete(want, b.Name)
		} else if b.Digest != "" {
			withDigest++
		}
	}
	if len(want) != 0 {
		t.Errorf("blobs not carried: %v", want)
	}
	if withDigest == 0 {
		t.Error("no blob of 2.0.25 carries a digest: the mix is not tested")
	}
}

// An asset replaced on GitHub (new id, size, updated_at) is downloaded
// again; the rest comes from the cache without a request.
func TestFetchChangedAsset(t *testing.T) {
	const asset = "cyclecloud-gridengine-pkg-2.1.0.tar.gz"
	for _, noDigests := range []bool{false, true} {
		t.Run(map[bool]string{false: "digests", true: "no digests"}[noDigests], func(t *testing.T) {
			s := newFake(t, githubtest.Options{NoDigests: noDigests, IgnoreIfNoneMatch: true})
			o := testOptions(t, s)
			ref := []Ref{mustRef(t, "gridengine@2.1.0")}
			if _, err := newFetcher(t, o).Fetch(context.Background(), ref, filepath.Join(t.TempDir(), "1.tar")); err != nil {
				t.Fatal(err)
			}
			content := []byte("a new build of the package, uploaded again")
			if err := s.ReplaceAsset("cyclecloud-gridengine", "2.1.0", asset, content); err != nil {
				t.Fatal(err)
			}
			s.ResetCounters()
			out := filepath.Join(t.TempDir(), "2.tar")
			res, err := newFetcher(t, o).Fetch(context.Background(), ref, out)
			if err != nil {
				t.Fatal(err)
			}
			if n := s.AssetBytesServed(); n != int64(len(content)) || res.Downloaded != n {
				t.Errorf("served %d bytes, Downloaded %d; want exactly the new asset's %d", n, res.Downloaded, len(content))
			}
			_, files := readBundle(t, out)
			if got := files[manifest.BlobPath("gridengine", asset)]; string(got) != string(content) {
				t.Errorf("bundle carries %q, want the new content", got)
			}
		})
	}
}

// A tag moved to another commit fetches its archive again and says so.
func TestFetchTagMoved(t *testing.T) {
	s := newFake(t, githubtest.Options{})
	o := testOptions(t, s)
	ref := []Ref{mustRef(t, "gridengine@2.1.0")}
	if _, err := newFetcher(t, o).Fetch(context.Background(), ref, filepath.Join(t.TempDir(), "1.tar")); err != nil {
		t.Fatal(err)
	}
	commit, err := s.MoveTag("cyclecloud-gridengine", "2.1.0")
	if err != nil {
		t.Fatal(err)
	}
	s.ResetCounters()
	res, err := newFetcher(t, o).Fetch(context.Background(), ref, filepath.Join(t.TempDir(), "2.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Manifest.Projects[0]; p.Commit != commit {
		t.Errorf("manifest commit %s, want the moved tag's %s", p.Commit, commit)
	}
	archives := 0
	for _, l := range s.Requests() {
		if l.Host == githubtest.HostDownload {
			if !strings.Contains(l.Path, "/archive/") {
				t.Errorf("asset downloaded again after a tag move: %s", l.Path)
			}
			archives++
		}
	}
	if archives != 1 {
		t.Errorf("%d archive downloads after the tag moved, want 1", archives)
	}
	said := false
	for _, w := range res.Warnings {
		said = said || (strings.Contains(w, "tag moved") && strings.Contains(w, commit[:12]))
	}
	if !said {
		t.Errorf("warnings %q do not say the tag moved to %s", res.Warnings, commit[:12])
	}
}

// An archive cut off mid-stream starts again from zero: the archive host
// has no ranges, so nothing is appended to what was received.
func TestFetchArchiveInterrupted(t *testing.T) {
	const archive = "cyclecloud-gridengine-2.1.0.tar.gz"
	s := newFake(t, githubtest.Options{})
	s.TruncateOnce(archive, 1000)
	o := testOptions(t, s)
	var logs logBuf
	o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	out := filepath.Join(t.TempDir(), "b.tar")
	if _, err := newFetcher(t, o).Fetch(context.Background(), []Ref{mustRef(t, "gridengine@2.1.0")}, out); err != nil {
		t.Fatal(err)
	}
	readBundle(t, out)
	var reqs []githubtest.RequestLog
	for _, l := range s.Requests() {
		if l.Host == githubtest.HostDownload && strings.HasSuffix(l.Path, "/archive/refs/tags/2.1.0.tar.gz") {
			reqs = append(reqs, l)
		}
	}
	if len(reqs) != 2 || reqs[0].Range != "" || reqs[1].Range != "" || reqs[0].Bytes != 1000 {
		t.Errorf("archive requests %+v; want two whole-file requests, the first cut at 1000 bytes", reqs)
	}
	if !strings.Contains(logs.String(), "restarting from zero") {
		t.Errorf("the restart is not logged at info level:\n%s", logs.String())
	}
}
