package githubtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/scan/scantest"
)

// archiveFiles reads a tag archive into path (top folder stripped) ->
// content.
func archiveFiles(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		c, _ := io.ReadAll(tr)
		_, rest, _ := strings.Cut(h.Name, "/")
		out[rest] = string(c)
	}
}

// TestScanWorld: the fake serves ScanWorld's scripts in the tag archives
// and its blob archives as the assets, keeps the fixtures' real
// project.ini and filler elsewhere, and adds the repositories the fixtures
// lack.
func TestScanWorld(t *testing.T) {
	s := newTestServer(t, Options{Content: ScanWorld()})
	slurm := scantest.Slurm4()
	arch, err := s.Archive("cyclecloud-slurm", "4.0.9")
	if err != nil {
		t.Fatal(err)
	}
	files := archiveFiles(t, arch)
	if got, want := files["templates/slurm.txt"], string(slurm.Source["templates/slurm.txt"]); got != want {
		t.Errorf("templates/slurm.txt served %q, want scantest's", got)
	}
	if !strings.Contains(files["project.ini"], "[config slurm.version]") {
		t.Errorf("project.ini is not the fixture's real one:\n%s", files["project.ini"])
	}
	if f := files["templates/slurm-cs.txt"]; !strings.Contains(f, "filler line") {
		t.Errorf("a file ScanWorld does not give is not filler: %.60q", f)
	}
	for name, want := range slurm.Blobs {
		r, err := s.OpenAsset("cyclecloud-slurm", "4.0.9", name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		if !bytes.Equal(got, want) {
			t.Errorf("asset %s: %d bytes served, want scantest's %d", name, len(got), len(want))
		}
	}
	assets, err := s.Assets("cyclecloud-slurm", "4.0.9")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range assets {
		if a.SHA256 != sha256Hex(slurm.Blobs[a.Name]) {
			t.Errorf("asset %s: digest %s does not match its bytes", a.Name, a.SHA256)
		}
	}
	for _, repo := range []string{"cyclecloud-monitoring", "cyclecloud-healthagent"} {
		tags, err := s.Tags(repo)
		if err != nil || len(tags) != 1 {
			t.Errorf("%s: tags %v, %v; want the one ScanWorld adds", repo, tags, err)
		}
	}
	if as, _ := s.Assets("cyclecloud-monitoring", "1.0.3"); len(as) != 1 || as[0].Name != "monitoring-exporters-1.0.3.zip" {
		t.Errorf("monitoring assets %+v", as)
	}
}

// TestContentErrors: content that cannot make a release fails NewServer.
func TestContentErrors(t *testing.T) {
	for name, c := range map[string]Content{
		"new release without project.ini": {Repo: "cyclecloud-new", Tag: "1.0.0", Files: map[string][]byte{"a.sh": nil}},
		"path outside the tree":           {Repo: "cyclecloud-slurm", Tag: "4.0.9", Files: map[string][]byte{"../x": nil}},
	} {
		if s, err := NewServer(Options{Content: []Content{c}}); err == nil {
			s.Close()
			t.Errorf("%s: NewServer succeeded", name)
		}
	}
}
