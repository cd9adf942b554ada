package githubtest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"path"
	"strings"
	"testing"
)

type fixtureRelease struct{ repo, tag string }

func fixtureReleases(t *testing.T) []fixtureRelease {
	t.Helper()
	var out []fixtureRelease
	repos, err := fs.ReadDir(embedded, "fixtures/projects")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		tags, err := fs.ReadDir(embedded, "fixtures/projects/"+r.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range tags {
			out = append(out, fixtureRelease{r.Name(), tg.Name()})
		}
	}
	if len(out) != 9 {
		t.Fatalf("%d fixture releases, want 9", len(out))
	}
	return out
}

func fixtureFile(t *testing.T, repo, tag, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(embedded, path.Join("fixtures/projects", repo, tag, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarEntry is what a test needs from one tar member.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readTarGz(t *testing.T, b []byte) []tarEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw)%10240 != 0 {
		t.Errorf("tar stream is %d bytes, not whole 10240-byte records like git archive", len(raw))
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, data})
	}
}

func TestTagArchives(t *testing.T) {
	s := newTestServer(t, Options{})
	for _, fr := range fixtureReleases(t) {
		t.Run(fr.repo+"@"+fr.tag, func(t *testing.T) {
			commit := strings.TrimSpace(string(fixtureFile(t, fr.repo, fr.tag, "commit")))
			tree, err := parseTree(fixtureFile(t, fr.repo, fr.tag, "tree.tsv"))
			if err != nil {
				t.Fatal(err)
			}
			u := s.DownloadURL() + "Azure/" + fr.repo + "/archive/refs/tags/" + fr.tag + ".tar.gz"
			if got, _ := s.ArchiveURL(fr.repo, fr.tag); got != u {
				t.Errorf("ArchiveURL = %s, want %s", got, u)
			}
			resp, body := get(t, u)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-gzip" {
				t.Fatalf("GET: %s %s", resp.Status, resp.Header.Get("Content-Type"))
			}
			prefix := fr.repo + "-" + fr.tag + "/"
			if cd := resp.Header.Get("Content-Disposition"); cd != "attachment; filename="+fr.repo+"-"+fr.tag+".tar.gz" {
				t.Errorf("Content-Disposition %q", cd)
			}
			// As codeload sends them: streamed, so no length, no
			// ranges and no validator to resume or revalidate with.
			if resp.ContentLength != -1 || resp.Header.Get("ETag") != "" || resp.Header.Get("Accept-Ranges") != "" {
				t.Errorf("archive has Content-Length %d, ETag %q, Accept-Ranges %q; want none", resp.ContentLength, resp.Header.Get("ETag"), resp.Header.Get("Accept-Ranges"))
			}
			if r, ranged := get(t, u, "Range", "bytes=100-"); r.StatusCode != 200 || !bytes.Equal(ranged, body) {
				t.Errorf("Range on an archive: %d, %d bytes; want 200 and the whole archive", r.StatusCode, len(ranged))
			}
			// Deterministic: the same bytes on every request.
			if _, again := get(t, u); !bytes.Equal(again, body) {
				t.Fatal("archive bytes differ between requests")
			}
			if direct, _ := s.Archive(fr.repo, fr.tag); !bytes.Equal(direct, body) {
				t.Fatal("Archive() differs from the served bytes")
			}

			entries := readTarGz(t, body)
			g := entries[0].hdr
			if g.Typeflag != tar.TypeXGlobalHeader || g.Name != "pax_global_header" || g.PAXRecords["comment"] != commit {
				t.Fatalf("first entry %q type %c comment %q, want pax global header with comment %s", g.Name, g.Typeflag, g.PAXRecords["comment"], commit)
			}
			if h := entries[1].hdr; h.Name != prefix || h.Typeflag != tar.TypeDir || h.Mode != 0o775 {
				t.Fatalf("second entry %q type %c mode %o, want top folder %s 0775", h.Name, h.Typeflag, h.Mode, prefix)
			}
			byName := map[string]tarEntry{}
			mtime := entries[1].hdr.ModTime
			for _, e := range entries[1:] {
				if !strings.HasPrefix(e.hdr.Name, prefix) {
					t.Errorf("%s is outside %s", e.hdr.Name, prefix)
				}
				if !e.hdr.ModTime.Equal(mtime) || e.hdr.Uname != "root" || e.hdr.Uid != 0 {
					t.Errorf("%s: mtime %v owner %s/%d, want the commit time and root", e.hdr.Name, e.hdr.ModTime, e.hdr.Uname, e.hdr.Uid)
				}
				if _, dup := byName[e.hdr.Name]; dup {
					t.Errorf("duplicate entry %s", e.hdr.Name)
				}
				byName[e.hdr.Name] = e
			}
			files := 0
			for _, te := range tree {
				e, ok := byName[prefix+te.path]
				if !ok {
					t.Errorf("%s missing", te.path)
					continue
				}
				files++
				for d := path.Dir(te.path); d != "."; d = path.Dir(d) {
					if dh, ok := byName[prefix+d+"/"]; !ok || dh.hdr.Typeflag != tar.TypeDir {
						t.Errorf("no directory entry for %s/", d)
					}
				}
				switch te.mode {
				case modeSymlink:
					if e.hdr.Typeflag != tar.TypeSymlink || !strings.HasPrefix(e.hdr.Linkname, "/") || int64(len(e.hdr.Linkname)) != te.size || e.hdr.Mode != 0o777 {
						t.Errorf("%s: type %c -> %q mode %o, want an absolute symlink of %d bytes", te.path, e.hdr.Typeflag, e.hdr.Linkname, e.hdr.Mode, te.size)
					}
				case modeExec, modeFile:
					wantMode := int64(0o664)
					if te.mode == modeExec {
						wantMode = 0o775
					}
					want := te.size
					if te.path == "project.ini" {
						want = int64(len(fixtureFile(t, fr.repo, fr.tag, "project.ini")))
					}
					if e.hdr.Typeflag != tar.TypeReg || e.hdr.Mode != wantMode || int64(len(e.data)) != want || e.hdr.Size != want {
						t.Errorf("%s: type %c mode %o size %d, want regular %o size %d", te.path, e.hdr.Typeflag, e.hdr.Mode, len(e.data), wantMode, want)
					}
				}
			}
			if files != len(tree) {
				t.Errorf("%d of %d tree entries present", files, len(tree))
			}
			if ini := byName[prefix+"project.ini"]; !bytes.Equal(ini.data, fixtureFile(t, fr.repo, fr.tag, "project.ini")) {
				t.Error("project.ini in the archive is not the fixture's bytes")
			}
		})
	}
}

func TestArchiveQuirks(t *testing.T) {
	s := newTestServer(t, Options{})
	// pbspro's dangling, outward-pointing symlink.
	b, err := s.Archive("cyclecloud-pbspro", "2.0.25")
	if err != nil {
		t.Fatal(err)
	}
	var link *tar.Header
	for _, e := range readTarGz(t, b) {
		if e.hdr.Name == "cyclecloud-pbspro-2.0.25/modules/cyclecloud-scalelib" {
			link = e.hdr
		}
	}
	if link == nil || link.Typeflag != tar.TypeSymlink || !strings.HasPrefix(link.Linkname, "/Users/") || len(link.Linkname) != 40 {
		t.Fatalf("pbspro symlink = %+v", link)
	}
	// hpcpack commits blobs/vnet.json: it is in the source, not an asset.
	b, err = s.Archive("Azure/cyclecloud-hpcpack", "2.1.2")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range readTarGz(t, b) {
		found = found || (e.hdr.Name == "cyclecloud-hpcpack-2.1.2/blobs/vnet.json" && len(e.data) == 1591)
	}
	as, _ := s.Assets("cyclecloud-hpcpack", "2.1.2")
	if !found || len(as) != 1 || as[0].Name != "cyclecloud-hpcpack-pkg-2.1.2.zip" {
		t.Fatalf("vnet.json in source %v, assets %+v", found, as)
	}
}

func TestArchiveUmaskOption(t *testing.T) {
	s := newTestServer(t, Options{Umask: 0o022})
	b, err := s.Archive("cyclecloud-pbspro", "2.0.25")
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int64{}
	for _, e := range readTarGz(t, b) {
		modes[strings.TrimPrefix(e.hdr.Name, "cyclecloud-pbspro-2.0.25/")] = e.hdr.Mode
	}
	for p, want := range map[string]int64{"": 0o755, "install.sh": 0o755, "LICENSE": 0o644, "modules/": 0o755, "modules/cyclecloud-scalelib": 0o777} {
		if modes[p] != want {
			t.Errorf("%q mode %o, want %o", p, modes[p], want)
		}
	}
}

func TestZipAndLegacyArchives(t *testing.T) {
	s := newTestServer(t, Options{})
	const commit = "74028e879e3a5bfc6f6d41e72062d24069c9d621"
	resp, body := get(t, s.DownloadURL()+"Azure/cyclecloud-gridengine/archive/refs/tags/2.1.0.zip")
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Comment != commit {
		t.Errorf("zip comment %q, want the commit", zr.Comment)
	}
	var ini []byte
	for _, f := range zr.File {
		if f.Name == "cyclecloud-gridengine-2.1.0/project.ini" {
			rc, _ := f.Open()
			ini, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	if !bytes.Equal(ini, fixtureFile(t, "cyclecloud-gridengine", "2.1.0", "project.ini")) {
		t.Error("zip project.ini differs from the fixture")
	}

	// The API zipball redirects to codeload's legacy form.
	resp, _ = get(t, s.URL()+"repos/Azure/cyclecloud-gridengine/zipball/2.1.0")
	if resp.StatusCode != 302 {
		t.Fatalf("zipball: %s", resp.Status)
	}
	resp, body = get(t, resp.Header.Get("Location"))
	if resp.StatusCode != 200 {
		t.Fatalf("legacy zip: %s", resp.Status)
	}
	zr, err = zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil || zr.File[0].Name != "Azure-cyclecloud-gridengine-74028e8/" {
		t.Fatalf("legacy zip first entry %v, %v", zr.File[0].Name, err)
	}
}
