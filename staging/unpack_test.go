package staging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ccmirror/ccmirror/manifest"
)

func gzipReader(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rawTar(t testing.TB, hdrs ...*tar.Header) []byte {
	t.Helper()
	var es []tarEntry
	for _, h := range hdrs {
		var body []byte
		if h.Typeflag == tar.TypeReg {
			body = bytes.Repeat([]byte("x"), int(h.Size))
		}
		es = append(es, tarEntry{h, body})
	}
	return gzipBytes(t, writeTar(t, es))
}

func reg(name string, mode int64) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: 3}
}

func TestUnpackSource(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		archive  []*tar.Header
		wantErr  string // substring; ErrVerify expected when set
		want     map[string]string
		warnings []string
	}{
		{
			// Modes are policy: 0755 if executable, else 0644, whatever
			// the header says (0600, 0664, 0777, 0711 here).
			name: "strips the top folder and applies the mode policy",
			archive: []*tar.Header{
				{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "abc"}},
				{Name: "repo-1.0/", Typeflag: tar.TypeDir, Mode: 0o775},
				reg("repo-1.0/a.sh", 0o755), reg("repo-1.0/b/c.txt", 0o644), reg("./repo-1.0/d.txt", 0o600),
				reg("repo-1.0/e.txt", 0o664), reg("repo-1.0/f.sh", 0o777), reg("repo-1.0/g", 0o711),
				{Name: "repo-1.0/w/", Typeflag: tar.TypeDir, Mode: 0o777},
			},
			want: map[string]string{"a.sh": "file 0755", "b/c.txt": "file 0644", "d.txt": "file 0644", "b": "dir 0755",
				"e.txt": "file 0644", "f.sh": "file 0755", "g": "file 0755", "w": "dir 0755"},
		},
		{
			name:    "setuid dropped with a warning",
			archive: []*tar.Header{reg("r/s", 0o4755)},
			want:    map[string]string{"s": "file 0755"}, warnings: []string{"setuid"},
		},
		{
			name: "links: inside kept, outside and absolute skipped",
			archive: []*tar.Header{
				reg("r/x/f", 0o644),
				{Name: "r/x/in", Typeflag: tar.TypeSymlink, Linkname: "f"},
				{Name: "r/x/up", Typeflag: tar.TypeSymlink, Linkname: "../x/f"},
				{Name: "r/x/out", Typeflag: tar.TypeSymlink, Linkname: "../../outside"},
				{Name: "r/abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
				{Name: "r/empty", Typeflag: tar.TypeSymlink, Linkname: ""},
			},
			want:     map[string]string{"x": "dir 0755", "x/f": "file 0644", "x/in": "symlink f", "x/up": "symlink ../x/f"},
			warnings: []string{"x/out -> ../../outside: points outside", "abs -> /etc/passwd: absolute", "empty"},
		},
		{
			name: "nothing is created through a symlink",
			archive: []*tar.Header{
				{Name: "r/d/", Typeflag: tar.TypeDir, Mode: 0o755},
				{Name: "r/d/l", Typeflag: tar.TypeSymlink, Linkname: "."},
				{Name: "r/d/l/esc", Typeflag: tar.TypeSymlink, Linkname: "../../x"},
				reg("r/d/l/f", 0o644),
			},
			want:     map[string]string{"d": "dir 0755", "d/l": "symlink ."},
			warnings: []string{"d/l/esc: inside symlink d/l", "d/l/f: inside symlink d/l"},
		},
		{
			// Each link is inside by itself, read lexically; through the
			// first, the second climbs out of the tree.
			name: "symlink chains that escape skipped",
			archive: []*tar.Header{
				{Name: "r/esc", Typeflag: tar.TypeSymlink, Linkname: "a/up/../.."},
				{Name: "r/a/up", Typeflag: tar.TypeSymlink, Linkname: ".."},
				{Name: "r/b/esc2", Typeflag: tar.TypeSymlink, Linkname: "../a/up/../x"},
				{Name: "r/a/ok", Typeflag: tar.TypeSymlink, Linkname: "up/a"},
			},
			want:     map[string]string{"a": "dir 0755", "b": "dir 0755", "a/up": "symlink ..", "a/ok": "symlink up/a"},
			warnings: []string{"esc -> a/up/../..: resolves outside", "b/esc2 -> ../a/up/../x: resolves outside"},
		},
		{
			name: "hard links, devices and fifos skipped",
			archive: []*tar.Header{
				reg("r/f", 0o644),
				{Name: "r/h", Typeflag: tar.TypeLink, Linkname: "r/f"},
				{Name: "r/dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
				{Name: "r/blk", Typeflag: tar.TypeBlock},
				{Name: "r/fifo", Typeflag: tar.TypeFifo},
			},
			want:     map[string]string{"f": "file 0644"},
			warnings: []string{"hard link h", "special file dev", "special file blk", "special file fifo"},
		},
		{name: "dot-dot", archive: []*tar.Header{reg("r/../../etc/x", 0o644)}, wantErr: "unsafe path"},
		{name: "dot-dot that cleans inside", archive: []*tar.Header{reg("r/a/../b", 0o644)}, wantErr: "unsafe path"},
		{name: "absolute", archive: []*tar.Header{reg("/etc/x", 0o644)}, wantErr: "absolute"},
		{name: "two top folders", archive: []*tar.Header{reg("r/a", 0o644), reg("s/b", 0o644)}, wantErr: "outside the top folder"},
		{name: "file at the top", archive: []*tar.Header{reg("README", 0o644)}, wantErr: "no top folder"},
		{name: "duplicate file", archive: []*tar.Header{reg("r/a", 0o644), reg("r/a", 0o644)}, wantErr: "duplicate"},
		{name: "file over a symlink", archive: []*tar.Header{{Name: "r/a", Typeflag: tar.TypeSymlink, Linkname: "b"}, reg("r/a", 0o644)}, wantErr: "duplicate"},
		{name: "empty", archive: nil, wantErr: "empty archive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			var warnings []string
			err = unpackSource(context.Background(), bytes.NewReader(rawTar(t, tc.archive...)), root, "src", "test", func(s string) { warnings = append(warnings, s) })
			if tc.wantErr != "" {
				if !errors.Is(err, manifest.ErrVerify) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want ErrVerify with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			_ = filepath.WalkDir(filepath.Join(dir, "src"), func(p string, d fs.DirEntry, err error) error {
				rel, _ := filepath.Rel(filepath.Join(dir, "src"), p)
				if rel == "." {
					return nil
				}
				info, _ := os.Lstat(p)
				switch {
				case info.Mode()&fs.ModeSymlink != 0:
					l, _ := os.Readlink(p)
					got[rel] = "symlink " + l
				case info.IsDir():
					got[rel] = "dir " + modeString(info.Mode())
				default:
					got[rel] = "file " + modeString(info.Mode())
				}
				return nil
			})
			if d := diffSnap(tc.want, got); d != "" {
				t.Errorf("tree differs:\n%s", d)
			}
			all := strings.Join(warnings, "\n")
			for _, w := range tc.warnings {
				if !strings.Contains(all, w) {
					t.Errorf("no warning with %q in:\n%s", w, all)
				}
			}
		})
	}
	t.Run("sparse file skipped", func(t *testing.T) {
		// GNU tar --sparse --format=pax of a 1 TiB hole and a small file.
		b, err := os.ReadFile("testdata/sparse-1TiB.tar.gz")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		root, _ := os.OpenRoot(dir)
		defer root.Close()
		var warnings []string
		if err := unpackSource(context.Background(), bytes.NewReader(b), root, "src", "test", func(s string) { warnings = append(warnings, s) }); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "src/sparse")); err == nil {
			t.Errorf("sparse file written")
		}
		if _, err := os.Stat(filepath.Join(dir, "src/f")); err != nil {
			t.Errorf("regular file beside it missing: %v", err)
		}
		if !strings.Contains(strings.Join(warnings, "\n"), "sparse file sparse") {
			t.Errorf("warnings %q", warnings)
		}
	})
	t.Run("not gzip", func(t *testing.T) {
		root, _ := os.OpenRoot(t.TempDir())
		defer root.Close()
		err := unpackSource(context.Background(), strings.NewReader("plain"), root, "src", "test", func(string) {})
		if !errors.Is(err, manifest.ErrVerify) {
			t.Errorf("err %v, want ErrVerify", err)
		}
	})
}

// FuzzUnpackSource feeds arbitrary tar streams (gzipped here) to the
// unpacker: it must not panic, and must create nothing outside its folder,
// and no symlink that points outside it.
func FuzzUnpackSource(f *testing.F) {
	seed := func(hdrs ...*tar.Header) {
		var es []tarEntry
		for _, h := range hdrs {
			var body []byte
			if h.Typeflag == tar.TypeReg {
				body = bytes.Repeat([]byte("y"), int(h.Size))
			}
			es = append(es, tarEntry{h, body})
		}
		f.Add(writeTar(f, es))
	}
	seed(reg("r/a", 0o644), &tar.Header{Name: "r/l", Typeflag: tar.TypeSymlink, Linkname: "a"})
	seed(&tar.Header{Name: "r/l", Typeflag: tar.TypeSymlink, Linkname: "."}, reg("r/l/x", 0o644))
	seed(&tar.Header{Name: "r/l", Typeflag: tar.TypeSymlink, Linkname: ".."}, reg("r/l/x", 0o644))
	seed(reg("r/../x", 0o644))
	seed(&tar.Header{Name: "r/d/", Typeflag: tar.TypeDir, Mode: 0o000}, reg("r/d/f", 0o000))
	seed(&tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "c"}}, reg("r/f", 0o755))
	if b, err := os.ReadFile("testdata/sparse-1TiB.tar.gz"); err == nil {
		if raw, err := gzipReader(b); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, tarBytes []byte) {
		base := t.TempDir()
		dir := filepath.Join(base, "in")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		_ = unpackSource(context.Background(), bytes.NewReader(gzipBytes(t, tarBytes)), root, "src", "fuzz", func(string) {})
		es, _ := os.ReadDir(base)
		if len(es) != 1 {
			t.Fatalf("unpack created %v beside its folder", es)
		}
		realDir, _ := filepath.EvalSymlinks(dir)
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			target, _ := os.Readlink(p)
			rel, _ := filepath.Rel(filepath.Join(dir, "src"), p)
			if filepath.IsAbs(target) {
				t.Errorf("absolute symlink %s -> %s", rel, target)
			}
			real, err := filepath.EvalSymlinks(p)
			if err == nil && !strings.HasPrefix(real+"/", realDir+"/") {
				t.Errorf("symlink %s -> %s resolves outside: %s", rel, target, real)
			}
			return nil
		})
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755) // so TempDir cleanup works as non-root
			}
			return nil
		})
	})
}

// TestSanitizeOutputChains: a built version folder keeps no symlink whose
// real resolution (through other symlinks) leaves the folder.
func TestSanitizeOutputChains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, d := range []string{"out/s/cluster-init/files/a"} {
		if err := root.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"out/s/cluster-init/files/a/up": "..",
		"out/s/cluster-init/files/esc":  "a/up/../../../../..", // lexically "."; really dir/
		"out/s/cluster-init/files/ok":   "a/up/a",
	}
	for l, target := range links {
		if err := root.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
	}
	var warnings []string
	if err := sanitizeOutput(root, "out", func(s string) { warnings = append(warnings, s) }); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Lstat("out/s/cluster-init/files/esc"); err == nil {
		t.Errorf("escaping symlink kept; warnings %q", warnings)
	}
	for _, l := range []string{"out/s/cluster-init/files/a/up", "out/s/cluster-init/files/ok"} {
		if _, err := root.Lstat(l); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
	out := filepath.Join(dir, "out")
	_ = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		real, err := filepath.EvalSymlinks(p)
		if err == nil && !strings.HasPrefix(real+"/", out+"/") {
			t.Errorf("symlink %s resolves outside the version folder: %s", p, real)
		}
		return nil
	})
}
