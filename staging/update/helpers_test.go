package update

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ccmirror/ccmirror/manifest"
	"github.com/ccmirror/ccmirror/manifest/index"
	"github.com/ccmirror/ccmirror/manifest/trust"
	"github.com/ccmirror/ccmirror/manifest/trust/trusttest"
	"github.com/ccmirror/ccmirror/staging"
)

// mirrorDir is a sync output folder made by hand: signed bundles of
// project "demo" (and others) and a signed index over them.
type mirrorDir struct {
	t       *testing.T
	dir     string
	key     *trusttest.Key
	allowed *trust.AllowedSigners
	ix      *index.Index
}

func newMirror(t *testing.T) *mirrorDir {
	t.Helper()
	k := trusttest.NewKey(t, "mirror@example")
	m := &mirrorDir{t: t, dir: t.TempDir(), key: k, allowed: k.Allowed(t),
		ix: &index.Index{Schema: index.Schema, Updated: time.Now().UTC().Truncate(time.Second), Bundles: []index.Entry{}}}
	return m
}

// add writes a signed bundle of project name at version into the folder
// and lists it in the (not yet written) index.
func (m *mirrorDir) add(name, version string) index.Entry {
	m.t.Helper()
	b := bundleOf(m.t, name, version, m.key.Signer)
	file := name + "-" + version + ".tar"
	if err := os.WriteFile(filepath.Join(m.dir, file), b, 0o644); err != nil {
		m.t.Fatal(err)
	}
	e := index.Entry{Project: name, Version: version, Repository: "Azure/cyclecloud-" + name, Tag: version,
		Commit: strings.Repeat("ab", 20), File: file, Size: int64(len(b)), SHA256: sum(b),
		Created: time.Now().UTC().Truncate(time.Second), Revision: 1, Assets: []index.AssetPrint{}}
	e.Fingerprint = index.Fingerprint(e.Assets)
	m.ix.Bundles = append(m.ix.Bundles, e)
	return e
}

// publish writes index.json with sequence seq, signed by signer (the
// mirror's key when nil).
func (m *mirrorDir) publish(seq int64, signer manifest.Signer) []byte {
	m.t.Helper()
	m.ix.Sequence = seq
	b, err := m.ix.Marshal()
	if err != nil {
		m.t.Fatal(err)
	}
	if signer == nil {
		signer = m.key.Signer
	}
	sig, err := signer.Sign(b)
	if err != nil {
		m.t.Fatal(err)
	}
	m.write(index.Name, b)
	m.write(index.SigName, sig)
	return b
}

func (m *mirrorDir) write(name string, b []byte) {
	m.t.Helper()
	if err := os.WriteFile(filepath.Join(m.dir, name), b, 0o644); err != nil {
		m.t.Fatal(err)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// bundleOf makes a signed bundle of a tiny project: project.ini, one
// cluster-init script and one blob.
func bundleOf(t *testing.T, name, version string, signer manifest.Signer) []byte {
	t.Helper()
	top := "cyclecloud-" + name + "-" + version
	ini := fmt.Sprintf("[project]\nname = %s\ntype = application\nversion = %s\n\n[blobs]\nFiles = %s-%s.bin\n\n[spec default]\n", name, version, name, version)
	var src bytes.Buffer
	gz := gzip.NewWriter(&src)
	tw := tar.NewWriter(gz)
	files := []struct{ name, body string }{
		{"project.ini", ini},
		{"specs/default/cluster-init/scripts/10.sh", "#!/bin/sh\necho " + name + " " + version + "\n"},
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": strings.Repeat("ab", 20)}}))
	for _, d := range []string{"", "specs/", "specs/default/", "specs/default/cluster-init/", "specs/default/cluster-init/scripts/"} {
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top + "/" + d, Mode: 0o755}))
	}
	for _, f := range files {
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: top + "/" + f.name, Mode: 0o755, Size: int64(len(f.body))}))
		_, err := tw.Write([]byte(f.body))
		must(err)
	}
	must(tw.Close())
	must(gz.Close())
	blob := bytes.Repeat([]byte(name+version+"\n"), 4000)
	blobName := name + "-" + version + ".bin"
	mp := manifest.Project{Name: name, Version: version, Repository: "Azure/cyclecloud-" + name, Tag: version,
		Commit: strings.Repeat("ab", 20), ReleaseURL: "https://github.com/Azure/cyclecloud-" + name + "/releases/" + version,
		Source: manifest.File{Path: manifest.SourcePath(name, version), Size: int64(src.Len()), SHA256: sum(src.Bytes())},
		Blobs: []manifest.Blob{{Name: blobName, Path: manifest.BlobPath(name, blobName), Size: int64(len(blob)), SHA256: sum(blob),
			Origin: "release", Release: version}},
	}
	m := &manifest.Manifest{Schema: manifest.Schema, Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Tool: "ccmirror-test", Projects: []manifest.Project{mp}}
	content := map[string][]byte{mp.Source.Path: src.Bytes(), mp.Blobs[0].Path: blob}
	var entries []manifest.Entry
	for _, f := range m.Files() {
		b := content[f.Path]
		entries = append(entries, manifest.Entry{Path: f.Path, Size: f.Size, SHA256: f.SHA256,
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
	}
	var out bytes.Buffer
	if err := manifest.WriteBundle(context.Background(), &out, m, entries, signer); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// server is a CycleCloud root with a fake cycle_server knowing the given
// project versions ("name@version").
type server struct {
	root, cycle string
}

func newServer(t *testing.T, knows ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{root: filepath.Join(dir, "root"), cycle: filepath.Join(dir, "cycle_server")}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		t.Fatal(err)
	}
	s.knows(t, knows...)
	return s
}

// knows rewrites the fake cycle_server to report these records.
func (s *server) knows(t *testing.T, knows ...string) {
	t.Helper()
	var recs []string
	for _, k := range knows {
		name, version, _ := strings.Cut(k, "@")
		recs = append(recs, fmt.Sprintf(`{"AdType":"Cloud.Project","Name":%q,"Version":%q,"Url":"https://github.com/Azure/cyclecloud-%s/releases/%s"}`, name, version, name, version))
	}
	script := "#!/bin/sh\nif [ \"$2\" = -format ]; then\ncat <<'EOF'\n[" + strings.Join(recs, ",\n") + "]\nEOF\nexit 0\nfi\necho unexpected >&2; exit 64\n"
	if err := os.WriteFile(s.cycle, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func (s *server) opts(m *mirrorDir) Options {
	return Options{Source: Folder(m.dir), Allowed: m.allowed, Root: s.root, CyclePath: s.cycle,
		Owner: fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), Builder: "native", LockWait: -1}
}

func (s *server) staged(name, version string) bool {
	_, err := os.Stat(filepath.Join(staging.ProjectsDir(s.root), name, version, "project.ini"))
	return err == nil
}

// tree records path, content hash, mode, owner and mtime of everything
// under dir.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return nil
			}
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		h := ""
		if st.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h = sum(b)
		}
		sys := st.Sys().(*syscall.Stat_t)
		out[p] = fmt.Sprintf("%s %v %d:%d %d", h, st.Mode(), sys.Uid, sys.Gid, st.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k)
		}
	}
	sort.Strings(d)
	return d
}

func items(its []Item) []string {
	out := []string{}
	for _, it := range its {
		out = append(out, it.Project+"@"+it.Version)
	}
	return out
}
