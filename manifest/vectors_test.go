package manifest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Run `go test ./manifest -run TestVectors -update` after an intended
// format change: it rewrites testdata/bundle-v1 and the examples in
// FORMAT.md.
var update = flag.Bool("update", false, "rewrite testdata/bundle-v1 and the examples in manifest/FORMAT.md")

const vectorDir = "../testdata/bundle-v1"

// vectorSource is a small GitHub-style tag archive: pax global header with
// the commit, one top folder, project.ini and a cluster-init script.
// Stored (level 0) deflate keeps the gzip bytes stable across Go releases.
func vectorSource(t testing.TB, commit string) []byte {
	t.Helper()
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	top := "cyclecloud-example-1.0.0/"
	var tbuf bytes.Buffer
	tw := tar.NewWriter(&tbuf)
	must := func(err error) {
		if err != nil {
			t.Fatalf("vector source: %v", err)
		}
	}
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
		PAXRecords: map[string]string{"comment": commit}, Format: tar.FormatPAX}))
	files := []struct {
		name string
		mode int64
		body string
	}{
		{top, 0o775, ""},
		{top + "project.ini", 0o664, "[project]\nname = example\nlabel = Example\ntype = application\nversion = 1.0.0\n\n" +
			"[blobs]\nFiles = example-blob.txt\n\n[spec default]\nrun_list = recipe[example]\n"},
		{top + "specs/", 0o775, ""},
		{top + "specs/default/", 0o775, ""},
		{top + "specs/default/cluster-init/", 0o775, ""},
		{top + "specs/default/cluster-init/scripts/", 0o775, ""},
		{top + "specs/default/cluster-init/scripts/00-hello.sh", 0o775, "#!/bin/sh\necho hello from example\n"},
	}
	for _, f := range files {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.body)),
			ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		}
		must(tw.WriteHeader(h))
		_, err := tw.Write([]byte(f.body))
		must(err)
	}
	must(tw.Close())
	var gbuf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gbuf, gzip.NoCompression)
	must(err)
	_, err = zw.Write(tbuf.Bytes())
	must(err)
	must(zw.Close())
	return gbuf.Bytes()
}

// minimalVector is testdata/bundle-v1/minimal.tar: one project, one blob,
// unsigned.
func minimalVector(t testing.TB) *testBundle {
	commit := "0123456789abcdef0123456789abcdef01234567"
	tb := newTestBundle("example", "1.0.0", vectorSource(t, commit),
		map[string][]byte{"example-blob.txt": []byte("hello from ccmirror\n")})
	tb.m.Tool = "ccmirror test-vector"
	tb.m.Projects[0].Commit = commit
	return tb
}

// vectors returns every test vector file by its path under vectorDir.
func vectors(t testing.TB) (map[string][]byte, map[string]rejectCase) {
	good := minimalVector(t).write(t, nil)
	files := map[string][]byte{"minimal.tar": good}
	bad := map[string]rejectCase{}
	for _, c := range rejectCases {
		if c.vector == "" {
			continue
		}
		b, _ := applyReject(t, c, good)
		files["bad/"+c.vector] = b
		bad["bad/"+c.vector] = c
	}
	return files, bad
}

func TestVectors(t *testing.T) {
	files, bad := vectors(t)
	br, err := NewReader(bytes.NewReader(files["minimal.tar"]))
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{
		"minimal.tar SHA256SUMS":    string(br.Sums()),
		"minimal.tar manifest.json": string(br.ManifestBytes()),
	}
	if *update {
		writeVectors(t, files, bad)
		updateFormatDoc(t, blocks)
	}

	// The committed files are what the writer produces today.
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatalf("%v (create with: go test ./manifest -run TestVectors -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what WriteBundle produces now; if the format change is intended, run: go test ./manifest -run TestVectors -update", name)
		}
	}
	onDisk, _ := filepath.Glob(filepath.Join(vectorDir, "bad", "*.tar"))
	for _, p := range onDisk {
		if _, ok := files["bad/"+filepath.Base(p)]; !ok {
			t.Errorf("stray vector %s", p)
		}
	}

	// minimal.tar, as committed, reads back to the manifest FORMAT.md shows.
	committed, err := os.ReadFile(filepath.Join(vectorDir, "minimal.tar"))
	if err != nil {
		t.Fatal(err)
	}
	br, err = NewReader(bytes.NewReader(committed))
	if err != nil {
		t.Fatalf("minimal.tar: %v", err)
	}
	if br.Signature() != nil {
		t.Error("minimal.tar should be unsigned")
	}
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"minimal.tar SHA256SUMS":    string(br.Sums()),
		"minimal.tar manifest.json": string(br.ManifestBytes()),
	} {
		if got, ok := docBlock(string(doc), name); !ok || got != want {
			t.Errorf("FORMAT.md block %q does not match minimal.tar (run with -update)", name)
		}
	}
	m := br.Manifest()
	if len(m.Projects) != 1 || m.Projects[0].Name != "example" || len(m.Projects[0].Blobs) != 1 {
		t.Errorf("minimal.tar manifest: %+v", m)
	}
	if err := readAll(bytes.NewReader(committed)); err != nil {
		t.Errorf("minimal.tar payload: %v", err)
	}

	// Every bad vector, as committed, is refused for the documented reason.
	for name, c := range bad {
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatal(err)
		}
		err = readAll(bytes.NewReader(b))
		if !isVerify(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrVerify saying %q", name, err, c.want)
		}
	}
}

func writeVectors(t *testing.T, files map[string][]byte, bad map[string]rejectCase) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(vectorDir, "bad")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(vectorDir, "bad"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(vectorDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var r strings.Builder
	r.WriteString("# Bundle format v1 test vectors\n\n")
	r.WriteString("Generated by `go test ./manifest -run TestVectors -update`; do not edit by hand.\n")
	r.WriteString("The format is specified in [manifest/FORMAT.md](../../manifest/FORMAT.md).\n\n")
	fmt.Fprintf(&r, "- `minimal.tar` (sha256 `%s`): a valid unsigned bundle with one project\n", hexSum(files["minimal.tar"]))
	r.WriteString("  (`example` 1.0.0: its tag archive and one blob). A reader must accept it and\n")
	r.WriteString("  produce the SHA256SUMS and manifest.json shown in FORMAT.md.\n")
	r.WriteString("- `bad/*.tar`: variants of `minimal.tar` a reader must refuse:\n\n")
	r.WriteString("| file | what is wrong | the error mentions |\n|---|---|---|\n")
	for _, name := range slices.Sorted(maps.Keys(bad)) {
		c := bad[name]
		fmt.Fprintf(&r, "| `%s` | %s | %s |\n", name, c.name, c.want)
	}
	if err := os.WriteFile(filepath.Join(vectorDir, "README.md"), []byte(r.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	blockBegin = "<!-- BEGIN %s -->\n```\n"
	blockEnd   = "```\n<!-- END %s -->"
)

// docBlock returns the fenced text between the BEGIN/END markers for name.
func docBlock(doc, name string) (string, bool) {
	begin, end := fmt.Sprintf(blockBegin, name), fmt.Sprintf(blockEnd, name)
	i := strings.Index(doc, begin)
	if i < 0 {
		return "", false
	}
	rest := doc[i+len(begin):]
	j := strings.Index(rest, end)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

func updateFormatDoc(t *testing.T, blocks map[string]string) {
	t.Helper()
	b, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for name, text := range blocks {
		old, ok := docBlock(doc, name)
		if !ok {
			t.Fatalf("FORMAT.md has no block %q", name)
		}
		begin := fmt.Sprintf(blockBegin, name)
		doc = strings.Replace(doc, begin+old, begin+text, 1)
	}
	if err := os.WriteFile("FORMAT.md", []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}
