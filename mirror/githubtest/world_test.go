package githubtest

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ccmirror/ccmirror/manifest"
)

func TestBlobFiles(t *testing.T) {
	for _, tc := range []struct {
		name, ini string
		want      []string
	}{
		{"spaces", "[blobs]\nFiles = a.rpm, b.deb\n", []string{"a.rpm", "b.deb"}},
		{"no spaces (gridengine)", "[blobs]\nFiles=a.tgz,b.tgz, c.tgz\n", []string{"a.tgz", "b.tgz", "c.tgz"}},
		{"named section (hpcpack)", "[project]\nname = x\n\n[blobs hpcpack]\nFiles = pkg.zip\n", []string{"pkg.zip"}},
		{"several sections, deduped", "[blobs]\nFiles = a, b\n[blobs extra]\nfiles = b, c\n", []string{"a", "b", "c"}},
		{"other sections ignored", "[spec x]\nFiles = no\n[blobsx]\nFiles = no\n[blobs]\nLabel = y\n", nil},
		{"CRLF and comments", "[blobs]\r\n# Files = no\r\nFiles = a ,  b \r\n", []string{"a", "b"}},
		{"config list lines are not sections", "[blobs]\n    [[[[list Config.Entries]]]]\nFiles = a\n", []string{"a"}},
		{"config section ends blobs", "[blobs]\nFiles = a\n[config x]\nConfig.Entries := {[Value=\"1\"]}\nFiles = no\n", []string{"a"}},
		{"empty entries", "[blobs]\nFiles = , a,,\n", []string{"a"}},
		{"relative path entry", "[blobs]\nFiles = sub/a.tgz\n", []string{"sub/a.tgz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := blobFiles([]byte(tc.ini)); !slices.Equal(got, tc.want) {
				t.Fatalf("blobFiles = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzBlobFiles(f *testing.F) {
	for _, fr := range []string{"cyclecloud-slurm/2.5.0", "cyclecloud-gridengine/2.1.0", "cyclecloud-hpcpack/2.1.2"} {
		b, err := embedded.ReadFile("fixtures/projects/" + fr + "/project.ini")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[blobs\nFiles=a"))
	f.Fuzz(func(t *testing.T, ini []byte) {
		seen := map[string]bool{}
		for _, b := range blobFiles(ini) {
			if b == "" || strings.Contains(b, ",") || strings.TrimSpace(b) != b || seen[b] {
				t.Fatalf("bad entry %q", b)
			}
			seen[b] = true
		}
	})
}

func FuzzParseTree(f *testing.F) {
	b, err := embedded.ReadFile("fixtures/projects/cyclecloud-pbspro/2.0.25/tree.tsv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("100644\t1\ta\n100644\t1\ta\n"))
	f.Add([]byte("120000\t40\t../x\n"))
	f.Fuzz(func(t *testing.T, tsv []byte) {
		tree, err := parseTree(tsv)
		if err != nil {
			return
		}
		// Whatever parses must build an archive.
		rel := &release{repo: &repo{owner: "o", name: "r"}, tag: "1.0", commit: strings.Repeat("a", 40), tree: tree}
		var total int64
		for _, e := range tree {
			if total += e.size; e.size > 64<<10 || total > 256<<10 {
				return // keep the fuzzer fast; sizes do not change the code path
			}
		}
		if _, err := buildTarGz(rel, "r-1.0", archiveItems(tree), 0o002); err != nil {
			t.Fatalf("tree parsed but archive failed: %v", err)
		}
	})
}

func TestParseTreeRejects(t *testing.T) {
	for _, in := range []string{
		"100644\t1\n",
		"100600\t1\ta\n",
		"100644\t-1\ta\n",
		"100644\tx\ta\n",
		"100644\t1\t/abs\n",
		"100644\t1\t../up\n",
		"100644\t1\ta//b\n",
		"100644\t1\ta\n100755\t2\ta\n",
		"100644\t1\ta\n100644\t1\ta/b\n",
		"100644\t1\ta\x00b\n",
	} {
		if _, err := parseTree([]byte(in)); err == nil {
			t.Errorf("parseTree(%q) accepted", in)
		}
	}
}

func TestRetag(t *testing.T) {
	for _, tc := range []struct{ in, old, new, want string }{
		{"version = 4.0.9\n", "4.0.9", "4.0.10", "version = 4.0.10\n"},
		{"Files = azure-slurm-pkg-4.0.9.tar.gz, x-14.0.9.rpm, y-4.0.91.rpm, z-4.0.9.1.rpm", "4.0.9", "4.1.0",
			"Files = azure-slurm-pkg-4.1.0.tar.gz, x-14.0.9.rpm, y-4.0.91.rpm, z-4.0.9.1.rpm"},
		{"no match", "1.0", "2.0", "no match"},
	} {
		if got := string(retag([]byte(tc.in), tc.old, tc.new)); got != tc.want {
			t.Errorf("retag(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{"1.0.0-rc1", "1.0.0", "2.5.0", "2.6.1", "2.7.0", "2.7.4", "2.10.0", "3.0.12", "v4.0.9"}
	for i := range ordered {
		for j := range ordered {
			got := manifest.CompareVersions(ordered[i], ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got != want {
				t.Errorf("manifest.CompareVersions(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestAssetsFollowProjectINI(t *testing.T) {
	s := newTestServer(t, Options{})
	const whl = "cyclecloud_api-8.1.0-py2.py3-none-any.whl"
	for _, fr := range fixtureReleases(t) {
		t.Run(fr.repo+"@"+fr.tag, func(t *testing.T) {
			var want []string
			for _, b := range blobFiles(fixtureFile(t, fr.repo, fr.tag, "project.ini")) {
				// Blobs that live on one other release only (the wheel on
				// slurm 2.6.1, old PBS Pro RPMs on pbspro's -bins releases).
				if only, ok := onlyOn[fr.repo+"/"+b]; (ok && only != fr.tag) || (b == whl && fr.tag != "2.6.1") {
					continue
				}
				want = append(want, b)
			}
			as, err := s.Assets(fr.repo, fr.tag)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range as {
				got = append(got, a.Name)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("assets %q, want %q", got, want)
			}
		})
	}
}

func TestAddRelease(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s)
	ctx := testCtx(t)
	if err := s.AddRelease("Azure/cyclecloud-slurm", "4.0.10", "4.0.9"); err != nil {
		t.Fatal(err)
	}
	latest, _, err := c.Repositories.GetLatestRelease(ctx, "Azure", "cyclecloud-slurm")
	if err != nil || latest.GetTagName() != "4.0.10" {
		t.Fatalf("latest = %s, %v", latest.GetTagName(), err)
	}
	var names []string
	for _, a := range latest.Assets {
		names = append(names, a.GetName())
	}
	want := []string{"azure-slurm-pkg-4.0.10.tar.gz", "azure-slurm-install-pkg-4.0.10.tar.gz", "azure_slurm_exporter-0.2.0.tar.gz"}
	if !slices.Equal(names, want) {
		t.Fatalf("assets %q, want %q", names, want)
	}
	// Same asset name as on 4.0.9: same bytes.
	if a, b := assetInfo(t, s, "cyclecloud-slurm", "4.0.9", want[2]), assetInfo(t, s, "cyclecloud-slurm", "4.0.10", want[2]); a.SHA256 != b.SHA256 {
		t.Error("copied asset changed content")
	}
	old, _ := s.Commit("cyclecloud-slurm", "4.0.9")
	commit, _ := s.Commit("cyclecloud-slurm", "4.0.10")
	if len(commit) != 40 || commit == old {
		t.Errorf("new commit %q (old %s)", commit, old)
	}
	b, err := s.Archive("cyclecloud-slurm", "4.0.10")
	if err != nil {
		t.Fatal(err)
	}
	entries := readTarGz(t, b)
	if entries[0].hdr.PAXRecords["comment"] != commit {
		t.Error("archive comment is not the new commit")
	}
	for _, e := range entries {
		if e.hdr.Name == "cyclecloud-slurm-4.0.10/project.ini" && !bytes.Contains(e.data, []byte("version = 4.0.10\n")) {
			t.Errorf("project.ini not retagged:\n%s", e.data)
		}
	}
	rels, _, err := c.Repositories.ListReleases(ctx, "Azure", "cyclecloud-slurm", nil)
	if err != nil || rels[0].GetTagName() != "4.0.10" || len(rels) != 8 {
		t.Fatalf("list after AddRelease: %d, first %s, %v", len(rels), rels[0].GetTagName(), err)
	}
	// A release copied from 2.6.1 does not carry the wheel that only 2.6.1 has.
	if err := s.AddRelease("cyclecloud-slurm", "2.6.2", "2.6.1"); err != nil {
		t.Fatal(err)
	}
	as, _ := s.Assets("cyclecloud-slurm", "2.6.2")
	if len(as) != 61 {
		t.Errorf("2.6.2 has %d assets, want 61 (no wheel)", len(as))
	}

	for _, tc := range []struct{ repo, tag, from string }{
		{"cyclecloud-slurm", "4.0.10", "4.0.9"}, // exists
		{"cyclecloud-slurm", "5.0.0", "9.9.9"},  // no source
		{"cyclecloud-nope", "1.0", "2.5.0"},     // no repo
		{"cyclecloud-slurm", "a/b", "4.0.9"},    // bad tag
	} {
		if err := s.AddRelease(tc.repo, tc.tag, tc.from); err == nil {
			t.Errorf("AddRelease(%s, %s, %s) accepted", tc.repo, tc.tag, tc.from)
		}
	}
}

func TestReplaceAsset(t *testing.T) {
	s := newTestServer(t, Options{})
	const name = "sge-2011.11-64.tgz"
	before := assetInfo(t, s, "cyclecloud-gridengine", "2.1.0", name)
	content := []byte("a new build of the same file name")
	if err := s.ReplaceAsset("Azure/cyclecloud-gridengine", "2.1.0", name, content); err != nil {
		t.Fatal(err)
	}
	after := assetInfo(t, s, "cyclecloud-gridengine", "2.1.0", name)
	if after.ID == before.ID || after.SHA256 != hexSum(content) || after.Size != int64(len(content)) || after.URL != before.URL {
		t.Fatalf("before %+v after %+v", before, after)
	}
	resp, body := get(t, after.URL)
	if resp.StatusCode != 200 || !bytes.Equal(body, content) || resp.Header.Get("ETag") != `"`+hexSum(content)+`"` {
		t.Fatalf("served %q (%s), ETag %s", body, resp.Status, resp.Header.Get("ETag"))
	}
	// The API shows the new digest.
	_, js := get(t, s.URL()+"repos/Azure/cyclecloud-gridengine/releases/tags/2.1.0")
	if !strings.Contains(string(js), `"digest":"sha256:`+hexSum(content)+`"`) {
		t.Fatal("release JSON lacks the new digest")
	}
	// A name the release lacks is added, like an upload.
	if err := s.ReplaceAsset("cyclecloud-gridengine", "2.1.0", "extra.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if as, _ := s.Assets("cyclecloud-gridengine", "2.1.0"); len(as) != 4 {
		t.Fatalf("%d assets after adding one, want 4", len(as))
	}
	for _, tc := range []struct{ repo, tag, name string }{
		{"cyclecloud-nope", "2.1.0", "x"}, {"cyclecloud-gridengine", "9", "x"}, {"cyclecloud-gridengine", "2.1.0", "a/b"},
	} {
		if err := s.ReplaceAsset(tc.repo, tc.tag, tc.name, nil); err == nil {
			t.Errorf("ReplaceAsset(%v) accepted", tc)
		}
	}
}

func TestNoDigestsAndCustomFixtures(t *testing.T) {
	fsys := fstest.MapFS{
		"projects/demo/1.0.0/commit":      {Data: []byte("0123456789abcdef0123456789abcdef01234567\n")},
		"projects/demo/1.0.0/project.ini": {Data: []byte("[project]\nname = demo\nversion = 1.0.0\n[blobs]\nFiles = demo.tgz\n")},
		"projects/demo/1.0.0/tree.tsv":    {Data: []byte("100644\t54\tproject.ini\n100755\t20\tbin/run.sh\n")},
	}
	s := newTestServer(t, Options{Fixtures: fsys, Owner: "Contoso", NoDigests: true, BlobSize: 10})
	_, js := get(t, s.URL()+"repos/Contoso/demo/releases/latest")
	if !strings.Contains(string(js), `"digest":null`) || !strings.Contains(string(js), `"size":10`) {
		t.Fatalf("release JSON: %s", js)
	}
	r, err := s.OpenAsset("Contoso/demo", "1.0.0", "demo.tgz")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); len(b) != 10 {
		t.Fatalf("asset is %d bytes", len(b))
	}
	if _, err := NewServer(Options{Fixtures: fstest.MapFS{}}); err == nil {
		t.Fatal("empty fixtures accepted")
	}
	bad := fstest.MapFS{"projects/demo/1.0.0/commit": {Data: []byte("nope")}}
	if _, err := NewServer(Options{Fixtures: bad}); err == nil {
		t.Fatal("bad commit accepted")
	}
}
