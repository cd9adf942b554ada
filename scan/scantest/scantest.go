// Package scantest builds real-shaped CycleCloud projects for scan tests:
// source trees and blob archives whose scripts carry the network patterns
// of slurm 4, monitoring, healthagent and pbspro (written for these tests,
// not copied from the projects), as GitHub tag archives, bundles and
// staged trees.
package scantest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
)

//go:embed all:fixtures
var fixtures embed.FS

// Project is one synthetic project version.
type Project struct {
	Name, Version string
	Repo          string            // OWNER/REPO
	Source        map[string][]byte // files of the tag's tree, by path
	Links         map[string]string // symbolic links of the tag's tree: path -> target
	Blobs         map[string][]byte // carried blobs, by name
	// Required names blobs project.ini lists that a bundle does not carry
	// (the server is expected to hold them).
	Required []string
	// Archive, when set, is carried instead of TagArchive() (damage tests).
	Archive []byte
}

// files reads a fixture folder into a map, paths relative to it, under
// prefix.
func files(dir, prefix string) map[string][]byte {
	out := map[string][]byte{}
	err := fs.WalkDir(fixtures, "fixtures/"+dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fixtures.ReadFile(p)
		if err != nil {
			return err
		}
		out[path.Join(prefix, strings.TrimPrefix(p, "fixtures/"+dir+"/"))] = b
		return nil
	})
	if err != nil {
		panic("scantest: fixtures: " + err.Error()) // embedded at build time: cannot fail
	}
	return out
}

// Slurm4 is slurm 4.0.9: spec scripts that jetpack download the install
// package (carried), the exporter (carried) and a dashboards archive (not
// carried: a boot failure waiting to happen); the install package
// (tar.gz) holds rhel.sh, ubuntu.sh, install.sh and the repo files; the
// template includes healthagent and monitoring.
func Slurm4() *Project {
	return &Project{
		Name: "slurm", Version: "4.0.9", Repo: "Azure/cyclecloud-slurm",
		Source: files("slurm/source", ""),
		Links:  map[string]string{"specs/default/cluster-init/files/hosts": "/etc/hosts"},
		Blobs: map[string][]byte{
			"azure-slurm-install-pkg-4.0.9.tar.gz": TarGz(files("slurm/install-pkg", "azure-slurm-install"),
				map[string]string{"azure-slurm-install/current": "/etc/passwd"}),
			"azure-slurm-pkg-4.0.9.tar.gz":      TarGz(files("slurm/pkg", "azure-slurm"), nil),
			"azure_slurm_exporter-0.2.0.tar.gz": TarGz(files("slurm/exporter", "azure-slurm-exporter"), nil),
		},
	}
}

// Monitoring is monitoring 1.0.3: a zip blob whose script wgets
// Prometheus, node_exporter and yq from GitHub releases and runs the DCGM
// exporter container.
func Monitoring() *Project {
	return &Project{
		Name: "monitoring", Version: "1.0.3", Repo: "Azure/cyclecloud-monitoring",
		Source: files("monitoring/source", ""),
		Blobs:  map[string][]byte{"monitoring-exporters-1.0.3.zip": Zip(files("monitoring/scripts", "exporters"))},
	}
}

// Healthagent is healthagent 1.0.2: pip installs its sdist blob, whose
// dependencies come from PyPI.
func Healthagent() *Project {
	return &Project{
		Name: "healthagent", Version: "1.0.2", Repo: "Azure/cyclecloud-healthagent",
		Source: files("healthagent/source", ""),
		Blobs: map[string][]byte{"healthagent-1.0.2.tar.gz": TarGz(map[string][]byte{
			"healthagent-1.0.2/PKG-INFO": []byte("Metadata-Version: 2.1\nName: healthagent\nVersion: 1.0.2\nRequires-Dist: fastapi\n"),
		}, nil)},
	}
}

// PBSPro is pbspro 2.0.25: a chef recipe that jetpack_downloads its rpm
// and yum installs it from /tmp, pip install virtualenv and a git clone.
func PBSPro() *Project {
	return &Project{
		Name: "pbspro", Version: "2.0.25", Repo: "Azure/cyclecloud-pbspro",
		Source: files("pbspro/source", ""),
		Blobs:  map[string][]byte{"openpbs-server-22.05.11-0.x86_64.rpm": []byte("\xed\xab\xee\xdb not really an rpm")},
	}
}

// Top is the top folder of the project's GitHub tag archive.
func (p *Project) Top() string {
	_, repo, _ := strings.Cut(p.Repo, "/")
	return repo + "-" + p.Version
}

// TagArchive is the project's GitHub tag archive: a pax global header
// with the commit, then every file and link under Top()/.
func (p *Project) TagArchive() []byte {
	src := map[string][]byte{}
	for k, v := range p.Source {
		src[p.Top()+"/"+k] = v
	}
	links := map[string]string{}
	for k, v := range p.Links {
		links[p.Top()+"/"+k] = v
	}
	return tarGz(src, links, true)
}

// TarGz is a gzip tar of files and symbolic links (path -> target), with
// their folders, sorted.
func TarGz(files map[string][]byte, links map[string]string) []byte {
	return tarGz(files, links, false)
}

func tarGz(files map[string][]byte, links map[string]string, paxGlobal bool) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mtime := time.Unix(1700000000, 0)
	if paxGlobal {
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
			PAXRecords: map[string]string{"comment": strings.Repeat("ab", 20)}, Format: tar.FormatPAX}))
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	for n := range links {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		for d := path.Dir(n); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var ds []string
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}))
	}
	for _, n := range names {
		if t, ok := links[n]; ok {
			must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: n, Linkname: t, Mode: 0o777, ModTime: mtime}))
			continue
		}
		b := files[n]
		mode := int64(0o644)
		if strings.HasSuffix(n, ".sh") {
			mode = 0o755
		}
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Size: int64(len(b)), Mode: mode, ModTime: mtime}))
		_, err := tw.Write(b)
		must(err)
	}
	must(tw.Close())
	must(zw.Close())
	return buf.Bytes()
}

// Zip is a zip archive of files, sorted.
func Zip(files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.Create(n)
		must(err)
		_, err = w.Write(files[n])
		must(err)
	}
	must(zw.Close())
	return buf.Bytes()
}

func must(err error) {
	if err != nil {
		panic("scantest: " + err.Error()) // writing to memory: cannot fail
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Manifest returns the bundle manifest and payload entries for ps.
func Manifest(ps ...*Project) (*manifest.Manifest, []manifest.Entry) {
	m := &manifest.Manifest{Schema: manifest.Schema, Created: time.Unix(1700000000, 0).UTC(), Tool: "scantest"}
	var entries []manifest.Entry
	entry := func(p string, b []byte) manifest.Entry {
		return manifest.Entry{Path: p, Size: int64(len(b)), SHA256: sha(b),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
	}
	for _, p := range ps {
		src := p.Archive
		if src == nil {
			src = p.TagArchive()
		}
		mp := manifest.Project{Name: p.Name, Version: p.Version, Repository: p.Repo, Tag: p.Version,
			Commit: strings.Repeat("ab", 20), ReleaseURL: "https://github.com/" + p.Repo + "/releases/tag/" + p.Version,
			Source: manifest.File{Path: manifest.SourcePath(p.Name, p.Version), Size: int64(len(src)), SHA256: sha(src)}}
		entries = append(entries, entry(mp.Source.Path, src))
		var names []string
		for n := range p.Blobs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			b := p.Blobs[n]
			mp.Blobs = append(mp.Blobs, manifest.Blob{Name: n, Path: manifest.BlobPath(p.Name, n), Size: int64(len(b)), SHA256: sha(b), Origin: "release", Release: p.Version})
			entries = append(entries, entry(manifest.BlobPath(p.Name, n), b))
		}
		for _, n := range p.Required {
			mp.Required = append(mp.Required, manifest.Blob{Name: n, Size: 1, SHA256: sha([]byte(n))})
		}
		m.Projects = append(m.Projects, mp)
	}
	return m, entries
}

// WriteBundle writes a bundle of ps to file, signed when signer is not nil.
func WriteBundle(t testing.TB, file string, signer manifest.Signer, ps ...*Project) {
	t.Helper()
	m, entries := Manifest(ps...)
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := manifest.WriteBundle(context.Background(), f, m, entries, signer); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// Stage writes ps into root's staging tree in the built layout:
// projects/<name>/<version>/<spec>/{cluster-init,chef}/…, project.ini,
// and projects/<name>/blobs/<blob> (Required blobs included, as a server
// that already held them).
func Stage(t testing.TB, root string, ps ...*Project) {
	t.Helper()
	for _, p := range ps {
		base := filepath.Join(root, "work", "staging", "projects", p.Name)
		write := func(rel string, b []byte) {
			f := filepath.Join(base, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for rel, b := range p.Source {
			switch {
			case rel == "project.ini":
				write(p.Version+"/project.ini", b)
			case strings.HasPrefix(rel, "specs/"):
				write(p.Version+"/"+strings.TrimPrefix(rel, "specs/"), b)
			}
		}
		for n, b := range p.Blobs {
			write("blobs/"+n, b)
		}
		for _, n := range p.Required {
			write("blobs/"+n, []byte(n))
		}
	}
}
